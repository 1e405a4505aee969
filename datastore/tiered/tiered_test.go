package tiered

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	dstest "github.com/ipfs/go-datastore/test"
	flatfs "github.com/ipfs/go-ds-flatfs"
	pebbleds "github.com/ipfs/go-ds-pebble"
)

func memChild() ds.Datastore { return dssync.MutexWrap(ds.NewMapDatastore()) }

func openT(t *testing.T, o Options) *Datastore {
	t.Helper()
	d, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func flatfsChild(t *testing.T, dir string) ds.Datastore {
	t.Helper()
	f, err := flatfs.CreateOrOpen(dir, flatfs.NextToLast(2), false)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func pebbleChild(t *testing.T, dir string) ds.Datastore {
	t.Helper()
	p, err := pebbleds.NewDatastore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSuiteMapChildren(t *testing.T) {
	d := openT(t, Options{MemoryCapacity: 8 << 20, Tiers: []Tier{{Child: memChild()}, {Child: memChild()}}, CompressThreshold: 64})
	dstest.SubtestAll(t, d)
}

func TestSuiteFlatfsPebble(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, Options{MemoryCapacity: 8 << 20, Tiers: []Tier{
		{Name: "pebble", Child: pebbleChild(t, filepath.Join(dir, "p"))},
		{Name: "flatfs", Child: flatfsChild(t, filepath.Join(dir, "f"))},
	}})
	// flatfs takes only upper-case base32-like keys; pebble takes any. Run
	// the suite with the pebble tier first, where writes land.
	dstest.SubtestAll(t, d)
}

// TestSuiteFlatfs runs the suite's basic subtests on flatfs alone as the
// durable tier, with keys flatfs accepts.
func TestFlatfsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, Options{MemoryCapacity: 8 << 20, Tiers: []Tier{{Child: flatfsChild(t, dir)}}})
	ctx := context.Background()
	vals := map[ds.Key][]byte{}
	for i := 0; i < 50; i++ {
		k := ds.NewKey(fmt.Sprintf("CIQA%04dXYZ", i))
		v := bytes.Repeat([]byte{byte(i)}, 40<<10) // compressible
		if i%2 == 0 {
			v = randBytes(40 << 10)
		}
		vals[k] = v
		if err := d.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range vals {
		got, err := d.Get(ctx, k)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("get %s: %v, equal %v", k, err, bytes.Equal(got, v))
		}
		n, err := d.GetSize(ctx, k)
		if err != nil || n != len(v) {
			t.Fatalf("size %s: %d %v", k, n, err)
		}
	}
	st := d.Stats(ctx)
	if st.CompressedValues != 25 || st.CompressionSavedBytes == 0 {
		t.Fatalf("compressed %d saved %d, want 25 and > 0", st.CompressedValues, st.CompressionSavedBytes)
	}
	du, err := d.DiskUsage(ctx)
	if err != nil || du == 0 || du > 25*(40<<10)+25*(4<<10)+1<<20 {
		t.Fatalf("disk usage %d %v", du, err)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestReopenRebuildsIndexAndSizes(t *testing.T) {
	ctx := context.Background()
	a, b := memChild(), memChild()
	d := openT(t, Options{Tiers: []Tier{{Child: nopClose{a}}, {Child: nopClose{b}}}})
	big := bytes.Repeat([]byte("abc"), 30000)
	if err := d.Put(ctx, ds.NewKey("/big"), big); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, ds.NewKey("/small"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d2 := openT(t, Options{Tiers: []Tier{{Child: nopClose{a}}, {Child: nopClose{b}}}})
	if n, err := d2.GetSize(ctx, ds.NewKey("/big")); err != nil || n != len(big) {
		t.Fatalf("size after reopen %d %v", n, err)
	}
	if ok, _ := d2.Has(ctx, ds.NewKey("/small")); !ok {
		t.Fatal("small lost")
	}
	if ok, _ := d2.Has(ctx, ds.NewKey("/nope")); ok {
		t.Fatal("phantom key")
	}
}

// nopClose lets a test reopen a store over the same in-memory children.
type nopClose struct{ ds.Datastore }

func (nopClose) Close() error { return nil }

// countingBatching counts child batch commits.
type countingBatching struct {
	ds.Batching
	mu      sync.Mutex
	commits int
}

func (c *countingBatching) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := c.Batching.Batch(ctx)
	return &countingBatch{Batch: b, c: c}, err
}

type countingBatch struct {
	ds.Batch
	c *countingBatching
}

func (b *countingBatch) Commit(ctx context.Context) error {
	b.c.mu.Lock()
	b.c.commits++
	b.c.mu.Unlock()
	return b.Batch.Commit(ctx)
}

func TestGroupCommitCoalesces(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f, err := flatfs.CreateOrOpen(dir, flatfs.NextToLast(2), true)
	if err != nil {
		t.Fatal(err)
	}
	child := &countingBatching{Batching: f}
	d := openT(t, Options{Tiers: []Tier{{Child: child}}})
	const writers, each = 16, 20
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				k := ds.NewKey(fmt.Sprintf("K%02dX%04d", w, i))
				if err := d.Put(ctx, k, randBytes(1024)); err != nil {
					t.Error(err)
					return
				}
				// Put returned: the value is committed in the child.
				if ok, err := f.Has(ctx, k); !ok || err != nil {
					t.Errorf("put %s returned before its commit", k)
				}
			}
		}()
	}
	wg.Wait()
	child.mu.Lock()
	commits := child.commits
	child.mu.Unlock()
	if commits >= writers*each {
		t.Fatalf("%d commits for %d puts: nothing coalesced", commits, writers*each)
	}
	t.Logf("%d puts in %d commits", writers*each, commits)
}

func TestMemoryTierBudget(t *testing.T) {
	ctx := context.Background()
	const budget = 2 << 20
	d := openT(t, Options{MemoryCapacity: budget, Tiers: []Tier{{Child: memChild()}}, CompressThreshold: -1})
	for i := 0; i < 400; i++ {
		k := ds.NewKey(fmt.Sprintf("/k%d", i))
		if err := d.Put(ctx, k, randBytes(32<<10)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
		d.mem.cache.CleanUp()
		if w := d.mem.cache.WeightedSize(); w > budget {
			t.Fatalf("memory tier holds %d bytes, budget %d", w, budget)
		}
	}
	if got := d.Shrink(0.5); got != budget/2 {
		t.Fatalf("shrink gave budget %d", got)
	}
	d.mem.cache.CleanUp()
	if w := d.mem.cache.WeightedSize(); w > budget/2 {
		t.Fatalf("after shrink the tier holds %d > %d", w, budget/2)
	}
	if got := d.SetMemoryBudget(1 << 40); got != budget {
		t.Fatalf("budget not clamped to capacity: %d", got)
	}
	st := d.Stats(ctx)
	if st.Tiers[0].Hits == 0 && st.Tiers[0].Misses == 0 {
		t.Fatal("memory tier counted nothing")
	}
}

func TestOptionsRefused(t *testing.T) {
	if _, err := Open(context.Background(), Options{}); err != ErrNoTiers {
		t.Fatalf("no tiers: %v", err)
	}
	_, err := Open(context.Background(), Options{Tiers: []Tier{{Child: memChild()}}, HighWatermark: 0.5, LowWatermark: 0.7})
	if err == nil {
		t.Fatal("bad watermarks accepted")
	}
}

func TestClosedCallsFail(t *testing.T) {
	d := openT(t, Options{Tiers: []Tier{{Child: memChild()}}})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if err := d.Put(context.Background(), ds.NewKey("/a"), nil); err != ErrClosed {
		t.Fatalf("put after close: %v", err)
	}
}

func TestEmptyValueAndOverwrite(t *testing.T) {
	ctx := context.Background()
	d := openT(t, Options{MemoryCapacity: 4 << 20, Tiers: []Tier{{Child: memChild()}}})
	k := ds.NewKey("/empty")
	if err := d.Put(ctx, k, []byte{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // second read from the memory tier
		v, err := d.Get(ctx, k)
		if err != nil || len(v) != 0 {
			t.Fatalf("empty value: %q %v", v, err)
		}
	}
	if err := d.Put(ctx, k, []byte("now full")); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Get(ctx, k); string(v) != "now full" {
		t.Fatalf("overwrite not seen through the memory tier: %q", v)
	}
}

// failingPuts refuses keys under /bad, to check that one bad put in a
// group commit does not fail the others.
type failingPuts struct{ ds.Batching }

func (f failingPuts) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := f.Batching.Batch(ctx)
	return failingBatch{b}, err
}

func (f failingPuts) Put(ctx context.Context, k ds.Key, v []byte) error {
	if strings.HasPrefix(k.String(), "/bad") {
		return errors.New("refused")
	}
	return f.Batching.Put(ctx, k, v)
}

type failingBatch struct{ ds.Batch }

func (b failingBatch) Put(ctx context.Context, k ds.Key, v []byte) error {
	if strings.HasPrefix(k.String(), "/bad") {
		return errors.New("refused")
	}
	return b.Batch.Put(ctx, k, v)
}

func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	child := failingPuts{dssync.MutexWrap(ds.NewMapDatastore())}
	d := openT(t, Options{Tiers: []Tier{{Child: child}}})
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprintf("/good%d", i)
			if i%10 == 0 {
				k = fmt.Sprintf("/bad%d", i)
			}
			errs[i] = d.Put(ctx, ds.NewKey(k), []byte("v"))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%10 == 0) != (err != nil) {
			t.Fatalf("put %d: err %v", i, err)
		}
	}
}

// fullDisk refuses every put with ENOSPC once full is set.
type fullDisk struct {
	ds.Batching
	full *atomic.Bool
}

func (f fullDisk) Put(ctx context.Context, k ds.Key, v []byte) error {
	if f.full.Load() {
		return fmt.Errorf("write %s: %w", k, syscall.ENOSPC)
	}
	return f.Batching.Put(ctx, k, v)
}

func (f fullDisk) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := f.Batching.Batch(ctx)
	return fullBatch{b, f.full}, err
}

type fullBatch struct {
	ds.Batch
	full *atomic.Bool
}

func (b fullBatch) Commit(ctx context.Context) error {
	if b.full.Load() {
		return fmt.Errorf("commit: %w", syscall.ENOSPC)
	}
	return b.Batch.Commit(ctx)
}

// TestFullTierSpills: when the first tier's disk is full, new writes land in
// the next tier, and what was stored stays readable; when every tier is
// full, Put fails with an error that says so.
func TestFullTierSpills(t *testing.T) {
	ctx := context.Background()
	var full0, full1 atomic.Bool
	t0 := fullDisk{dssync.MutexWrap(ds.NewMapDatastore()), &full0}
	t1 := fullDisk{dssync.MutexWrap(ds.NewMapDatastore()), &full1}
	d := openT(t, Options{Tiers: []Tier{{Name: "fast", Child: t0}, {Name: "slow", Child: t1}}})
	if err := d.Put(ctx, ds.NewKey("/before"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	full0.Store(true)
	if err := d.Put(ctx, ds.NewKey("/after"), []byte("new")); err != nil {
		t.Fatalf("put with the first tier full: %v", err)
	}
	if ok, _ := t1.Has(ctx, ds.NewKey("/after")); !ok {
		t.Fatal("the write did not spill to the next tier")
	}
	if ok, _ := t0.Has(ctx, ds.NewKey("/after")); ok {
		t.Fatal("the spilled key is also in the full tier")
	}
	for k, want := range map[string]string{"/before": "old", "/after": "new"} {
		if v, err := d.Get(ctx, ds.NewKey(k)); err != nil || string(v) != want {
			t.Fatalf("%s: %q %v", k, v, err)
		}
	}
	full1.Store(true)
	err := d.Put(ctx, ds.NewKey("/nowhere"), []byte("x"))
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "tier fast") || !strings.Contains(err.Error(), "tier slow") {
		t.Fatalf("every tier full: err %v", err)
	}
	if v, _ := d.Get(ctx, ds.NewKey("/before")); string(v) != "old" {
		t.Fatal("stored data damaged by failed writes")
	}
}

// A block read once (a bulk fetch) does not enter the memory tier; its
// second read caches it and the third is a memory hit. MemoryAdmitReads 1
// caches on the first read.
func TestMemoryTierAdmitsOnSecondRead(t *testing.T) {
	ctx := context.Background()
	for _, admit := range []int{0, 1} { // 0: the default, 2
		d := openT(t, Options{MemoryCapacity: 8 << 20, MemoryAdmitReads: admit, Tiers: []Tier{{Child: memChild()}}})
		k := ds.NewKey("/CIQBLOCK")
		if err := d.Put(ctx, k, bytes.Repeat([]byte{7}, 4096)); err != nil {
			t.Fatal(err)
		}
		mem := func() TierStats { return d.Stats(ctx).Tiers[0] }
		if _, err := d.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
		if admit == 1 {
			if mem().Blocks != 1 || d.Stats(ctx).AdmissionsDeferred != 0 {
				t.Fatalf("admit 1: first read not cached: %+v", mem())
			}
			continue
		}
		if mem().Blocks != 0 || d.Stats(ctx).AdmissionsDeferred != 1 {
			t.Fatalf("first read cached: %+v deferred %d", mem(), d.Stats(ctx).AdmissionsDeferred)
		}
		if _, err := d.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
		if mem().Blocks != 1 {
			t.Fatalf("second read not cached: %+v", mem())
		}
		v, err := d.Get(ctx, k)
		if err != nil || len(v) != 4096 {
			t.Fatal(v, err)
		}
		if st := mem(); st.Hits != 1 || st.Misses != 2 {
			t.Fatalf("want 1 memory hit after 2 misses: %+v", st)
		}
	}
}

// A 256 KiB block needs MemoryAdmitReads + 4 reads before it is cached.
func TestMemoryTierLargeBlocksNeedMoreReads(t *testing.T) {
	ctx := context.Background()
	d := openT(t, Options{MemoryCapacity: 64 << 20, Tiers: []Tier{{Child: memChild()}}})
	k := ds.NewKey("/CIQLARGE")
	if err := d.Put(ctx, k, bytes.Repeat([]byte{1}, 256<<10)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		if _, err := d.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
		cached := d.Stats(ctx).Tiers[0].Blocks == 1
		if cached != (i == 6) {
			t.Fatalf("after read %d: cached %v (want cached only from read 6)", i, cached)
		}
	}
}
