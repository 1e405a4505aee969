package blocklog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

var ctx = context.Background()

func open(t *testing.T, dir string, o Options) *Datastore {
	t.Helper()
	if o.CompactInterval == 0 {
		o.CompactInterval = -1
	}
	d, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func val(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*7 + j*13 + j>>8)
	}
	return b
}

func key(i int) ds.Key { return ds.NewKey(fmt.Sprintf("/blk/%08d", i)) }

func mustGet(t *testing.T, d *Datastore, k ds.Key, want []byte) {
	t.Helper()
	v, err := d.Get(ctx, k)
	if err != nil {
		t.Fatalf("get %s: %v", k, err)
	}
	if !bytes.Equal(v, want) {
		t.Fatalf("get %s: %d bytes, want %d (content differs)", k, len(v), len(want))
	}
}

func TestPutGetDeleteReopen(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{SegmentSize: 1 << 20})
	for i := range 300 {
		if err := d.Put(ctx, key(i), val(i, 10_000)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 300; i += 3 {
		if err := d.Delete(ctx, key(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Put(ctx, key(1), val(999, 50)); err != nil { // overwrite
		t.Fatal(err)
	}
	check := func(d *Datastore) {
		t.Helper()
		for i := range 300 {
			switch {
			case i%3 == 0:
				if _, err := d.Get(ctx, key(i)); !errors.Is(err, ds.ErrNotFound) {
					t.Fatalf("deleted key %d: %v", i, err)
				}
				if has, _ := d.Has(ctx, key(i)); has {
					t.Fatalf("deleted key %d: Has true", i)
				}
			case i == 1:
				mustGet(t, d, key(i), val(999, 50))
			default:
				mustGet(t, d, key(i), val(i, 10_000))
				if n, err := d.GetSize(ctx, key(i)); err != nil || n != 10_000 {
					t.Fatalf("GetSize %d = %d, %v", i, n, err)
				}
			}
		}
	}
	check(d)
	st := d.Stats()
	if st.Segments < 3 || st.Keys != 200 || st.GarbageBytes <= 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, key(1), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close: %v", err)
	}
	d = open(t, dir, Options{SegmentSize: 1 << 20})
	defer d.Close()
	check(d)
	if d.Stats().Keys != 200 {
		t.Fatalf("keys after reopen %d", d.Stats().Keys)
	}
}

func TestHintFilesUsedAndStale(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{SegmentSize: 1 << 20})
	for i := range 400 {
		if err := d.Put(ctx, key(i), val(i, 8000)); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	hints, _ := filepath.Glob(filepath.Join(dir, "*.hint"))
	if len(hints) < 2 {
		t.Fatalf("expected hint files for sealed segments, got %v", hints)
	}
	// A damaged hint is ignored: the segment is scanned instead.
	os.WriteFile(hints[0], []byte("BLKH garbage"), 0o644)
	d = open(t, dir, Options{SegmentSize: 1 << 20})
	defer d.Close()
	for i := range 400 {
		mustGet(t, d, key(i), val(i, 8000))
	}
}

func TestBatchAtomicAndQuery(t *testing.T) {
	d := open(t, t.TempDir(), Options{})
	defer d.Close()
	b, _ := d.Batch(ctx)
	for i := range 50 {
		b.Put(ctx, key(i), val(i, 100))
	}
	b.Delete(ctx, key(7))
	if has, _ := d.Has(ctx, key(1)); has {
		t.Fatal("batch visible before commit")
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	d.Put(ctx, ds.NewKey("/other/x"), []byte("x"))
	res, err := d.Query(ctx, query.Query{Prefix: "/blk", KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	all, _ := res.Rest()
	if len(all) != 49 {
		t.Fatalf("prefix query: %d keys, want 49", len(all))
	}
	for _, e := range all {
		if !strings.HasPrefix(e.Key, "/blk/") || e.Value != nil {
			t.Fatalf("bad entry %+v", e)
		}
	}
	res, _ = d.Query(ctx, query.Query{Prefix: "/blk", Orders: []query.Order{query.OrderByKey{}}, Offset: 5, Limit: 10})
	all, _ = res.Rest()
	if len(all) != 10 || all[0].Key != key(5).String() || !bytes.Equal(all[0].Value, val(5, 100)) {
		t.Fatalf("offset/limit query: %d entries, first %v", len(all), all[0].Key)
	}
	res, _ = d.Query(ctx, query.Query{Prefix: "/bl", KeysOnly: true})
	if all, _ = res.Rest(); len(all) != 0 {
		t.Fatalf("prefix /bl matched %d keys of /blk", len(all))
	}
	res, _ = d.Query(ctx, query.Query{})
	if all, _ = res.Rest(); len(all) != 50 {
		t.Fatalf("full query %d", len(all))
	}
}

func TestGroupCommitConcurrent(t *testing.T) {
	for _, syncOn := range []bool{false, true} {
		d := open(t, t.TempDir(), Options{Sync: syncOn, SegmentSize: 4 << 20})
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 200 {
					n := w*1000 + i
					if err := d.Put(ctx, key(n), val(n, 4096)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		st := d.Stats()
		if st.GroupedOps != 1600 || st.Groups == 0 || st.Groups > st.GroupedOps {
			t.Fatalf("sync=%v stats %+v", syncOn, st)
		}
		if syncOn && st.Syncs != st.Groups {
			t.Fatalf("sync=true: %d fsyncs for %d groups", st.Syncs, st.Groups)
		}
		for w := range 8 {
			for i := range 200 {
				mustGet(t, d, key(w*1000+i), val(w*1000+i, 4096))
			}
		}
		d.Close()
	}
}

func TestTornTailTruncated(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{})
	for i := range 10 {
		d.Put(ctx, key(i), val(i, 1000))
	}
	b, _ := d.Batch(ctx)
	b.Put(ctx, key(100), val(100, 1000))
	b.Put(ctx, key(101), val(101, 1000))
	b.Commit(ctx)
	d.Close()
	seg := filepath.Join(dir, segName(1))
	fi, _ := os.Stat(seg)
	full := fi.Size()
	rec := int64(recordLen(len(key(0).String()), 1000))
	commit := int64(recordLen(0, 4))
	cases := []struct {
		name    string
		mutate  func() error
		present int // keys 0..present-1 of the 10, and the batch iff batch
		batch   bool
	}{
		{"commit record cut", func() error { return os.Truncate(seg, full-2) }, 10, false},
		{"batch body cut", func() error { return os.Truncate(seg, full-commit-rec-5) }, 10, false},
		{"last put cut", func() error { return os.Truncate(seg, full-commit-2*rec-3) }, 9, false},
		{"bit flip in put 8", func() error { return flip(seg, segHeaderSize+8*rec+40) }, 8, false},
		{"garbage appended", func() error { return appendBytes(seg, []byte("not a record at all, just junk")) }, 10, true},
	}
	orig, _ := os.ReadFile(seg)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.WriteFile(seg, orig, 0o644)
			if err := c.mutate(); err != nil {
				t.Fatal(err)
			}
			d := open(t, dir, Options{})
			defer d.Close()
			for i := range 10 {
				has, _ := d.Has(ctx, key(i))
				if has != (i < c.present) {
					t.Fatalf("key %d present=%v", i, has)
				}
				if has {
					mustGet(t, d, key(i), val(i, 1000))
				}
			}
			h1, _ := d.Has(ctx, key(100))
			h2, _ := d.Has(ctx, key(101))
			if h1 != c.batch || h2 != c.batch {
				t.Fatalf("batch keys present %v %v, want both %v", h1, h2, c.batch)
			}
			if d.Stats().TruncatedBytes == 0 {
				t.Fatal("nothing truncated")
			}
			// The log stays writable after the truncation.
			if err := d.Put(ctx, key(200), val(200, 10)); err != nil {
				t.Fatal(err)
			}
			mustGet(t, d, key(200), val(200, 10))
		})
	}
}

func flip(p string, off int64) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := []byte{0}
	f.ReadAt(b, off)
	b[0] ^= 0x40
	_, err = f.WriteAt(b, off)
	return err
}

func appendBytes(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(b)
	return err
}

func TestBadInputErrors(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{SegmentSize: 1000}, "SegmentSize"},
		{Options{SegmentSize: 2 << 30}, "SegmentSize"},
		{Options{CompactRatio: 1.5}, "CompactRatio"},
		{Options{CompactRatio: -1}, "CompactRatio"},
		{Options{CompactRate: 10}, "CompactRate"},
		{Options{MaxGroupBytes: 10}, "MaxGroupBytes"},
	} {
		if _, err := Open(t.TempDir(), c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", c.o, err, c.want)
		}
	}
	// A corrupt sealed segment is an error naming the file and offset.
	dir := t.TempDir()
	d := open(t, dir, Options{SegmentSize: 1 << 20})
	for i := range 300 {
		d.Put(ctx, key(i), val(i, 10_000))
	}
	d.Close()
	os.Remove(filepath.Join(dir, hintName(1)))
	flip(filepath.Join(dir, segName(1)), 5000)
	_, err := Open(dir, Options{SegmentSize: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "00000001.log") || !strings.Contains(err.Error(), "damaged at offset") {
		t.Fatalf("corrupt sealed segment: %v", err)
	}
	// Not a segment at all.
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "00000001.log"), []byte("hello, this is not a blocklog segment"), 0o644)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "bad magic") {
		t.Fatalf("foreign file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "stray.log"), nil, 0o644)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "stray.log") {
		t.Fatalf("stray file: %v", err)
	}
	// A second open of a directory in use is refused.
	dir = t.TempDir()
	d = open(t, dir, Options{})
	defer d.Close()
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
	if err := d.Put(ctx, ds.NewKey("/"+strings.Repeat("k", MaxKeyLen)), nil); err == nil {
		t.Fatal("oversized key accepted")
	}
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	o := Options{SegmentSize: 1 << 20, CompactRatio: 0.3}
	d := open(t, dir, o)
	const n = 1000
	for i := range n {
		d.Put(ctx, key(i), val(i, 4000))
	}
	// Delete most of the older blocks and overwrite a few, as the tiered
	// mover does when it demotes.
	for i := range n {
		if i%4 != 0 {
			d.Delete(ctx, key(i))
		} else if i%8 == 0 {
			d.Put(ctx, key(i), val(i+1, 3000))
		}
	}
	before := d.Stats()
	done, err := d.Compact(ctx)
	if err != nil || done == 0 {
		t.Fatalf("compact: %d, %v", done, err)
	}
	after := d.Stats()
	if after.DiskBytes >= before.DiskBytes || after.Compactions == 0 || after.LiveBytes != before.LiveBytes {
		t.Fatalf("before %+v after %+v", before, after)
	}
	check := func(d *Datastore) {
		t.Helper()
		for i := range n {
			has, _ := d.Has(ctx, key(i))
			if has != (i%4 == 0) {
				t.Fatalf("key %d present=%v", i, has)
			}
			switch {
			case i%8 == 0:
				mustGet(t, d, key(i), val(i+1, 3000))
			case i%4 == 0:
				mustGet(t, d, key(i), val(i, 4000))
			}
		}
	}
	check(d)
	d.Close()
	d = open(t, dir, o)
	check(d)
	// A compaction a crash interrupted leaves a .tmp file: removed at open.
	os.WriteFile(filepath.Join(dir, segName(2)+".tmp"), []byte("partial"), 0o644)
	d.Close()
	d = open(t, dir, o)
	defer d.Close()
	check(d)
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
		t.Fatalf("leftovers %v", m)
	}
}

// TestCompactionConcurrent compacts while writers overwrite and delete and
// readers read, then checks the final state against a model.
func TestCompactionConcurrent(t *testing.T) {
	dir := t.TempDir()
	o := Options{SegmentSize: 1 << 20, CompactRatio: 0.2}
	d := open(t, dir, o)
	const n = 600
	for i := range n {
		d.Put(ctx, key(i), val(i, 3000))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := d.Compact(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := 0; i < n; i += 5 {
				if v, err := d.Get(ctx, key(i)); err == nil && len(v) != 3000 && len(v) != 2000 {
					t.Errorf("get %d: %d bytes", i, len(v))
				} else if err != nil && !errors.Is(err, ds.ErrNotFound) {
					t.Error(err)
				}
			}
		}
	}()
	for round := range 4 {
		for i := range n {
			switch (i + round) % 3 {
			case 0:
				d.Delete(ctx, key(i))
			case 1:
				d.Put(ctx, key(i), val(i+round, 2000))
			}
		}
	}
	close(stop)
	wg.Wait()
	final := func(d *Datastore) {
		t.Helper()
		for i := range n {
			// Round 3 decides: (i+3)%3 == 0 deleted, 1 rewritten, 2 as round 2 left it.
			switch (i + 3) % 3 {
			case 0:
				if has, _ := d.Has(ctx, key(i)); has {
					t.Fatalf("key %d should be deleted", i)
				}
			case 1:
				mustGet(t, d, key(i), val(i+3, 2000))
			case 2:
				// round 2: (i+2)%3 == 1 -> rewritten with i+2
				mustGet(t, d, key(i), val(i+2, 2000))
			}
		}
	}
	final(d)
	d.Compact(ctx)
	d.Close()
	d = open(t, dir, o)
	defer d.Close()
	final(d)
}

func TestSyncFsyncs(t *testing.T) {
	d := open(t, t.TempDir(), Options{})
	defer d.Close()
	d.Put(ctx, key(1), val(1, 100))
	if err := d.Sync(ctx, ds.NewKey("/")); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(ctx, ds.NewKey("/")); err != nil { // nothing new written: still an fsync
		t.Fatal(err)
	}
	if st := d.Stats(); st.Syncs != 2 {
		t.Fatalf("%d fsyncs for 2 Syncs", st.Syncs)
	}
}

// With Sync, a put that is written but not yet fsynced is not reported by
// Has until its fsync returns: boxo's blockstore skips its own put of a key
// Has reports, and would acknowledge a block the disk does not hold yet.
func TestHasWaitsForAPendingFsync(t *testing.T) {
	d := open(t, t.TempDir(), Options{Sync: true, NoPreallocate: true})
	defer d.Close()
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	defer release() // before Close, which waits for the held fsync
	var held, released atomic.Bool
	reached := make(chan struct{}) // closed when the first fsync is held
	d.syncGate = func() {
		if held.CompareAndSwap(false, true) {
			close(reached)
			<-gate
			released.Store(true)
		}
	}
	putDone := make(chan error, 1)
	go func() { putDone <- d.Put(ctx, key(1), val(1, 1000)) }()
	// The put's fsync is held; its group was written and applied to the
	// index before the fsync began.
	select {
	case <-reached:
	case err := <-putDone:
		t.Fatalf("the put returned (%v) without an fsync", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the put's fsync did not start")
	}
	d.mu.RLock()
	_, written := d.index[key(1).String()]
	d.mu.RUnlock()
	if !written {
		t.Fatal("the put is not in the index while its fsync is held")
	}
	type answer struct {
		ok, afterFsync bool
		err            error
	}
	hasDone := make(chan answer, 1)
	go func() {
		ok, err := d.Has(ctx, key(1))
		hasDone <- answer{ok, released.Load(), err}
	}()
	// A Has that does not wait answers at once: give it the chance.
	select {
	case a := <-hasDone:
		t.Fatalf("Has answered %v before the put's fsync returned", a.ok)
	case <-time.After(100 * time.Millisecond):
	}
	// Has of another key, and with a context that ends, do not wait for it.
	if ok, err := d.Has(ctx, key(2)); ok || err != nil {
		t.Fatalf("Has of a missing key: %v, %v", ok, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Has(cctx, key(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Has with an ended context while the fsync is held: %v", err)
	}
	release()
	a := <-hasDone
	if !a.ok || a.err != nil || !a.afterFsync {
		t.Fatalf("Has: %v, %v, after the fsync %v; want true once the fsync returned", a.ok, a.err, a.afterFsync)
	}
	if err := <-putDone; err != nil {
		t.Fatal(err)
	}
	d.mu.RLock()
	left := len(d.unsynced)
	d.mu.RUnlock()
	if left != 0 {
		t.Fatalf("%d keys still marked unsynced after their fsync", left)
	}
}

// TestHintFromCommitsMatchesScan writes puts, deletes and batches across
// several seals, then checks that every hint file the committer wrote from
// its own records equals, byte for byte, the hint a scan of the sealed
// segment gives; and that a segment of many records, past
// maxHintBuffer, still gets its hint (by the scan). Halfway it reopens the
// store, so one segment's entries start from recovery's scan of the active
// segment and go on from the committer's. Reopening through the hints at
// the end gives back every key.
func TestHintFromCommitsMatchesScan(t *testing.T) {
	for _, tc := range []struct {
		name  string
		vsize int
		n     int
		limit int // maxHintBuffer
	}{{"large records", 9000, 1200, 2 << 20}, {"many records past the buffer", 200, 24000, 64 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(old int) { maxHintBuffer = old }(maxHintBuffer)
			maxHintBuffer = tc.limit
			dir := t.TempDir()
			d := open(t, dir, Options{SegmentSize: 1 << 20})
			present := map[int]bool{}
			var resumed uint32 // the active segment at the reopen
			for i := range tc.n {
				if i == tc.n/2 {
					d.Close()
					d = open(t, dir, Options{SegmentSize: 1 << 20})
					resumed = d.active.id
					if d.active.size.Load() == segHeaderSize {
						t.Fatal("the active segment is empty at the reopen; the test needs records in it")
					}
				}
				present[i] = true
				if i%10 == 9 {
					delete(present, i-3)
					b, _ := d.Batch(ctx)
					b.Put(ctx, key(i), val(i, tc.vsize))
					b.Delete(ctx, key(i-3))
					if err := b.Commit(ctx); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := d.Put(ctx, key(i), val(i, tc.vsize)); err != nil {
					t.Fatal(err)
				}
				if i%7 == 6 {
					delete(present, i-1)
					if err := d.Delete(ctx, key(i-1)); err != nil {
						t.Fatal(err)
					}
				}
			}
			d.mu.RLock()
			var sealed []*segment
			for _, s := range d.segs {
				if s != d.active {
					sealed = append(sealed, s)
				}
			}
			live, after := 0, 0
			for _, s := range sealed {
				if s.id >= resumed {
					after++
					if s.hintLive {
						live++
					}
				}
			}
			d.mu.RUnlock()
			d.Close()
			if after < 2 {
				t.Fatalf("%d segments sealed since the reopen; the test needs at least 2", after)
			}
			if tc.vsize > 1000 && live != after {
				t.Fatalf("%d of %d segments sealed since the reopen kept their hint entries", live, after)
			}
			if tc.vsize < 1000 && live != 0 {
				t.Fatalf("%d segments of many records kept hint entries past maxHintBuffer", live)
			}
			for _, s := range sealed {
				got, err := os.ReadFile(filepath.Join(dir, hintName(s.id)))
				if err != nil {
					t.Fatal(err)
				}
				f, err := os.Open(s.path)
				if err != nil {
					t.Fatal(err)
				}
				scanned := &segment{id: s.id, gen: s.gen, path: s.path, f: f}
				scanned.size.Store(s.size.Load())
				sdir := t.TempDir()
				err = writeHint(sdir, scanned)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				want, _ := os.ReadFile(filepath.Join(sdir, hintName(s.id)))
				if !bytes.Equal(got, want) {
					t.Fatalf("segment %d: hint from commits (%d bytes) differs from the scan's (%d bytes)", s.id, len(got), len(want))
				}
			}
			// Reopen through the hints: every key as written, no deleted one.
			d = open(t, dir, Options{SegmentSize: 1 << 20})
			defer d.Close()
			if k := d.Stats().Keys; k != len(present) {
				t.Fatalf("%d keys after reopen, want %d", k, len(present))
			}
			for i := range tc.n {
				if present[i] {
					mustGet(t, d, key(i), val(i, tc.vsize))
				} else if has, _ := d.Has(ctx, key(i)); has {
					t.Fatalf("deleted key %d back after reopen", i)
				}
			}
		})
	}
}

// TestReopenRepairsACutSegmentHeader: a crash between creating the next
// segment and writing its header leaves a last segment shorter than a
// header. Reopening rewrites the header, keeps every key of the segments
// before it, takes new writes into the repaired segment, and opens again.
func TestReopenRepairsACutSegmentHeader(t *testing.T) {
	for _, cut := range []int{0, 3, segHeaderSize - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := t.TempDir()
			d := open(t, dir, Options{SegmentSize: 1 << 20})
			for i := range 50 {
				if err := d.Put(ctx, key(i), val(i, 5000)); err != nil {
					t.Fatal(err)
				}
			}
			last := d.active.id
			d.Close()
			hdr := segHeader(7)
			if err := os.WriteFile(filepath.Join(dir, segName(last+1)), hdr[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			d = open(t, dir, Options{SegmentSize: 1 << 20})
			if d.active.id != last+1 || d.active.size.Load() != segHeaderSize {
				t.Fatalf("active segment %d of %d bytes, want the repaired %d with a header of %d bytes",
					d.active.id, d.active.size.Load(), last+1, segHeaderSize)
			}
			for i := range 50 {
				mustGet(t, d, key(i), val(i, 5000))
			}
			if err := d.Put(ctx, key(50), val(50, 5000)); err != nil {
				t.Fatal(err)
			}
			d.Close()
			d = open(t, dir, Options{SegmentSize: 1 << 20})
			defer d.Close()
			for i := range 51 {
				mustGet(t, d, key(i), val(i, 5000))
			}
		})
	}
}

// TestRewriteSegHeaderReportsErrors: a header that cannot be rewritten
// fails recovery instead of leaving a segment without one.
func TestRewriteSegHeaderReportsErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), segName(1))
	if err := os.WriteFile(p, []byte{1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p) // read-only: neither the truncate nor the write can succeed
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := rewriteSegHeader(f, 9); err == nil {
		t.Fatal("rewriteSegHeader on a read-only file returned nil")
	}
	f2, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if err := rewriteSegHeader(f2, 9); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if gen, err := parseSegHeader(b); err != nil || gen != 9 {
		t.Fatalf("rewritten header: generation %d, %v; want 9", gen, err)
	}
}
