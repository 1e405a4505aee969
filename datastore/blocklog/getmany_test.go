package blocklog

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// TestGetMany reads keys spread over several segments, with overwritten,
// deleted and never-stored keys among them, before and after a compaction
// moved records: each key gets exactly one call with its newest value or
// ds.ErrNotFound.
func TestGetMany(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{SegmentSize: 1 << 20, CompactRatio: 0.3})
	defer d.Close()
	want := map[int][]byte{}
	for i := range 600 {
		n := 100 + (i*131)%9000 // sizes vary; records of 1-9 KiB, several segments
		d.Put(ctx, key(i), val(i, n))
		want[i] = val(i, n)
	}
	for i := 0; i < 600; i += 3 {
		d.Put(ctx, key(i), val(i+1, 50)) // overwritten: the old record is garbage
		want[i] = val(i+1, 50)
	}
	for i := 1; i < 600; i += 5 {
		d.Delete(ctx, key(i))
		delete(want, i)
	}
	check := func(stage string) {
		t.Helper()
		var keys []ds.Key
		for i := 599; i >= -50; i-- { // reverse order, and 50 keys never stored
			keys = append(keys, key(i+1000*btoi(i < 0)))
		}
		calls := make([]int, len(keys))
		err := d.GetMany(ctx, keys, func(j int, v []byte, err error) {
			calls[j]++
			i := 599 - j
			w, ok := want[i]
			if i < 0 {
				ok = false
			}
			switch {
			case !ok && !errors.Is(err, ds.ErrNotFound):
				t.Fatalf("%s: key %s: want not found, got %d bytes, %v", stage, keys[j], len(v), err)
			case ok && (err != nil || !bytes.Equal(v, w)):
				t.Fatalf("%s: key %s: %d bytes, %v; want %d bytes", stage, keys[j], len(v), err, len(w))
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		for j, c := range calls {
			if c != 1 {
				t.Fatalf("%s: key %s got %d calls", stage, keys[j], c)
			}
		}
	}
	if d.Stats().Segments < 3 {
		t.Fatalf("only %d segments", d.Stats().Segments)
	}
	check("before compaction")
	if n, err := d.Compact(ctx); err != nil || n == 0 {
		t.Fatalf("compaction: %d segments, %v", n, err)
	}
	check("after compaction")
	// Query with values reads through GetMany, in disk order.
	res, _ := d.Query(ctx, query.Query{})
	got := 0
	for r := range res.Next() {
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		var i int
		if _, err := fmt.Sscanf(r.Key, "/blk/%d", &i); err != nil || !bytes.Equal(r.Value, want[i]) {
			t.Fatalf("query: %s: %d bytes, want %d", r.Key, len(r.Value), len(want[i]))
		}
		got++
	}
	if got != len(want) {
		t.Fatalf("query returned %d entries, want %d", got, len(want))
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
