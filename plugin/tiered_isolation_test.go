package plugin

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/kubo-highload/highload/autoscale"
	"github.com/kubo-highload/highload/datastore/blocklog"
	"github.com/kubo-highload/highload/datastore/tiered"
)

// flakyStore is a map datastore whose writes fail while broken is set, and
// that counts the writes that reached it.
type flakyStore struct {
	*ds.MapDatastore
	mu     sync.Mutex
	broken bool
	writes int
}

var errDisk = errors.New("disk I/O error")

func (f *flakyStore) Put(ctx context.Context, k ds.Key, v []byte) error {
	f.mu.Lock()
	f.writes++
	broken := f.broken
	f.mu.Unlock()
	if broken {
		return errDisk
	}
	return f.MapDatastore.Put(ctx, k, v)
}

func (f *flakyStore) Batch(ctx context.Context) (ds.Batch, error) { return ds.NewBasicBatch(f), nil }

func TestIsolatedTierFailsFastAndRecovers(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	iso := autoscale.NewIsolator(autoscale.IsolatorConfig{Threshold: 3, Backoff: 5 * time.Second, MaxBackoff: time.Minute, Now: clock})
	child := &flakyStore{MapDatastore: ds.NewMapDatastore()}
	tier := isolateTier("fast", child, iso).(ds.Batching)
	k := ds.NewKey("/blocks/A")

	if err := tier.Put(ctx, k, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Get(ctx, ds.NewKey("/blocks/missing")); !errors.Is(err, ds.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if st := iso.Statuses(); len(st) != 0 {
		t.Fatalf("a healthy tier and a not-found read were reported: %+v", st)
	}

	child.broken = true
	for i := 0; i < 3; i++ {
		if err := tier.Put(ctx, k, []byte("new")); !errors.Is(err, errDisk) {
			t.Fatalf("put %d on a broken disk: %v", i, err)
		}
	}
	st := iso.Statuses()
	if len(st) != 1 || st[0].Name != "tiered/fast" || st[0].State != autoscale.Isolated {
		t.Fatalf("after 3 failures: %+v", st)
	}
	// Isolated: writes fail without reaching the disk; reads go through,
	// and their success does not readmit the tier (a read-only disk still
	// reads).
	before := child.writes
	b, _ := tier.Batch(ctx)
	_ = b.Put(ctx, k, []byte("w"))
	for _, err := range []error{tier.Put(ctx, k, []byte("w")), tier.Delete(ctx, k), b.Commit(ctx)} {
		if !errors.Is(err, errTierIsolated) {
			t.Fatalf("write to an isolated tier: %v", err)
		}
	}
	for i := 0; i < 10; i++ {
		if v, err := tier.Get(ctx, k); err != nil || string(v) != "v" {
			t.Fatalf("read from an isolated tier: %q, %v", v, err)
		}
		if _, err := tier.Get(ctx, ds.NewKey("/blocks/missing")); !errors.Is(err, ds.ErrNotFound) {
			t.Fatal(err)
		}
	}
	// Rewriting the value it holds is no write: it succeeds, isolated or
	// not, alone or in a batch of such rewrites.
	if err := tier.Put(ctx, k, []byte("v")); err != nil {
		t.Fatalf("rewrite of the held value on an isolated tier: %v", err)
	}
	same, _ := tier.Batch(ctx)
	_ = same.Put(ctx, k, []byte("v"))
	if err := same.Commit(ctx); err != nil {
		t.Fatalf("batch rewrite of the held value on an isolated tier: %v", err)
	}
	// Neither a delete of a key the tier does not hold (the tiered store's
	// clean-up after a spill) nor a sync is evidence the disk takes writes
	// again (a read-only disk gives both): they succeed and readmit nothing.
	if err := tier.Delete(ctx, ds.NewKey("/blocks/absent")); err != nil {
		t.Fatalf("delete of an absent key on an isolated tier: %v", err)
	}
	if err := tier.Sync(ctx, ds.NewKey("/")); err != nil {
		t.Fatalf("sync on an isolated tier: %v", err)
	}
	if child.writes != before {
		t.Fatalf("%d writes reached the isolated disk", child.writes-before)
	}
	st = iso.Statuses()
	if st[0].State != autoscale.Isolated || st[0].TotalFailures != 3 || st[0].Refused != 5 {
		t.Fatalf("after reads and refused writes: %+v; want isolated, 3 failures, 5 refusals", st)
	}

	// After the backoff one probe goes through; the disk works again, so
	// the tier is healthy and writes flow.
	child.broken = false
	mu.Lock()
	now = now.Add(6 * time.Second)
	mu.Unlock()
	if err := tier.Put(ctx, k, []byte("x")); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if st := iso.Statuses(); st[0].State != autoscale.Healthy {
		t.Fatalf("after a good probe: %+v", st)
	}
	if err := tier.Put(ctx, ds.NewKey("/blocks/B"), []byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, ok := isolateTier("p", child, iso).(ds.PersistentDatastore); ok {
		t.Fatal("a child without DiskUsage must not gain one")
	}
}

// The wrapper keeps the optional interfaces the tiered store looks for: a
// blocklog child must still report its live bytes through it, or the mover
// sizes the log by its garbage and demotes all of it.
func TestIsolatedTierKeepsUsageInterfaces(t *testing.T) {
	iso := autoscale.NewIsolator(autoscale.IsolatorConfig{})
	dir := t.TempDir()
	log, err := blocklog.Open(dir, blocklog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	w := isolateTier("log", log, iso)
	if _, ok := w.(tiered.LiveUsage); !ok {
		t.Fatal("wrapped blocklog lost tiered.LiveUsage")
	}
	if _, ok := w.(ds.PersistentDatastore); !ok {
		t.Fatal("wrapped blocklog lost ds.PersistentDatastore")
	}
	plain := isolateTier("map", &flakyStore{MapDatastore: ds.NewMapDatastore()}, iso)
	if _, ok := plain.(tiered.LiveUsage); ok {
		t.Fatal("a child without live usage must not gain it")
	}
}
