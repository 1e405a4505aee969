package tiered

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

func keysIn(t *testing.T, c ds.Datastore) map[string]bool {
	t.Helper()
	res, err := c.Query(context.Background(), query.Query{KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	es, err := res.Rest()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, e := range es {
		m[e.Key] = true
	}
	return m
}

func TestMoverDemotesColdestAndPromotesHot(t *testing.T) {
	ctx := context.Background()
	fast, slow := memChild(), memChild()
	// 100 blocks of 10 KiB in a 600 KiB fast tier: past the 90% watermark.
	d := openT(t, Options{
		Tiers:         []Tier{{Name: "fast", Child: fast, Capacity: 600 << 10}, {Name: "slow", Child: slow}},
		MoverInterval: time.Hour, CompressThreshold: -1, PromoteHits: 3,
	})
	for i := 0; i < 100; i++ {
		if err := d.Put(ctx, ds.NewKey(fmt.Sprintf("/b%03d", i)), randBytes(10<<10)); err != nil {
			t.Fatal(err)
		}
	}
	// Blocks 0-19 are hot.
	for r := 0; r < 5; r++ {
		for i := 0; i < 20; i++ {
			if _, err := d.Get(ctx, ds.NewKey(fmt.Sprintf("/b%03d", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	used, _ := d.tiers[0].used(ctx)
	if used > 480<<10 {
		t.Fatalf("fast tier holds %d bytes after settling, low watermark is %d", used, 480<<10)
	}
	fk, sk := keysIn(t, fast), keysIn(t, slow)
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("/b%03d", i)
		if !fk[k] {
			t.Fatalf("hot block %s was demoted", k)
		}
	}
	for k := range fk {
		if sk[k] {
			t.Fatalf("%s is in two tiers", k)
		}
	}
	if len(fk)+len(sk) != 100 {
		t.Fatalf("%d+%d blocks after moves, want 100", len(fk), len(sk))
	}
	// Make a demoted block hot: reads promote it once the fast tier has room.
	var cold string
	for k := range sk {
		cold = k
		break
	}
	for i := 0; i < 5; i++ {
		if _, err := d.Get(ctx, ds.NewKey(cold)); err != nil {
			t.Logf("cold %q fast %v slow %v", cold, fk[cold], sk[cold])
			t.Fatal(err)
		}
	}
	if err := d.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if !keysIn(t, fast)[cold] || keysIn(t, slow)[cold] {
		t.Fatalf("hot block %s not promoted to the fast tier alone", cold)
	}
	st := d.Stats(ctx)
	if st.Demotions == 0 || st.Promotions == 0 {
		t.Fatalf("stats: %d demotions %d promotions", st.Demotions, st.Promotions)
	}
	// Query still yields every key once.
	res, _ := d.Query(ctx, query.Query{KeysOnly: true})
	es, _ := res.Rest()
	if len(es) != 100 {
		t.Fatalf("query yields %d keys, want 100", len(es))
	}
}

// TestOpenResolvesDuplicates covers a crash between a move's copy and its
// delete: the key is in two tiers at open.
func TestOpenResolvesDuplicates(t *testing.T) {
	ctx := context.Background()
	fast, slow := memChild(), memChild()
	good := []byte("the block")
	bad := []byte("the blocc")
	verify := func(_ ds.Key, v []byte) bool { return bytes.Equal(v, good) }
	put := func(c ds.Datastore, k string, v []byte) {
		if err := c.Put(ctx, ds.NewKey(k), v); err != nil {
			t.Fatal(err)
		}
	}
	put(fast, "/equal", good)
	put(slow, "/equal", good) // equal copies: the fast one stays
	put(fast, "/fastbad", bad)
	put(slow, "/fastbad", good) // fast copy fails Verify: the slow one stays
	put(fast, "/fastgood", good)
	put(slow, "/fastgood", bad) // differ, fast verifies: the fast one stays
	d := openT(t, Options{Tiers: []Tier{{Child: nopClose{fast}}, {Child: nopClose{slow}}}, Verify: verify})
	fk, sk := keysIn(t, fast), keysIn(t, slow)
	want := map[string]string{"/equal": "fast", "/fastbad": "slow", "/fastgood": "fast"}
	for k, where := range want {
		if fk[k] == sk[k] {
			t.Fatalf("%s: in fast %v, in slow %v: want exactly one", k, fk[k], sk[k])
		}
		if (where == "fast") != fk[k] {
			t.Fatalf("%s kept in the wrong tier, want %s", k, where)
		}
		v, err := d.Get(ctx, ds.NewKey(k))
		if err != nil || !bytes.Equal(v, good) {
			t.Fatalf("%s reads %q %v", k, v, err)
		}
	}
	if d.Stats(ctx).ResolvedDuplicates != 3 {
		t.Fatalf("resolved %d", d.Stats(ctx).ResolvedDuplicates)
	}
	// Without a verifier, differing copies keep the slower one.
	fast2, slow2 := memChild(), memChild()
	put(fast2, "/k", bad)
	put(slow2, "/k", good)
	d2 := openT(t, Options{Tiers: []Tier{{Child: fast2}, {Child: slow2}}})
	if v, _ := d2.Get(ctx, ds.NewKey("/k")); !bytes.Equal(v, good) {
		t.Fatalf("without a verifier the slower copy must win, got %q", v)
	}
}

// TestHeapFlatUnderSoak: a long put/get loop over a fixed key set keeps the
// heap bounded by the memory budget plus the children's data.
func TestHeapFlatUnderSoak(t *testing.T) {
	ctx := context.Background()
	d := openT(t, Options{MemoryCapacity: 4 << 20, Tiers: []Tier{{Child: memChild()}}, CompressThreshold: -1})
	val := randBytes(16 << 10)
	round := func() {
		for i := 0; i < 5000; i++ {
			k := ds.NewKey(fmt.Sprintf("/k%d", i%1000))
			v := append([]byte{}, val...)
			v[0] = byte(i)
			if err := d.Put(ctx, k, v); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Get(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
	}
	heapAfter := func() uint64 {
		round()
		d.mem.cache.CleanUp()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	first := heapAfter()
	var last uint64
	for i := 0; i < 4; i++ {
		last = heapAfter()
	}
	t.Logf("heap after first round %d, after five %d", first, last)
	if last > first+4<<20 {
		t.Fatalf("heap grew from %d to %d over the soak", first, last)
	}
}
