package plugin

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/kubo-highload/highload/autoscale"
	"github.com/kubo-highload/highload/datastore/tiered"
)

// errTierIsolated is returned, without touching the disk, by writes to a
// durable tier the isolator has isolated after repeated errors.
var errTierIsolated = errors.New("tier isolated after repeated errors")

// isolatedTier wraps a durable tier's child for the process-wide isolator
// (plugin/isolation.go), under the name "tiered/<tier>":
//
//   - every error other than ds.ErrNotFound counts as a failure, every
//     success after a failure as a recovery; Threshold failures in a row
//     isolate the tier;
//   - while it is isolated, writes (Put, Delete, Sync, batch commits) fail
//     at once with errTierIsolated instead of going to a disk that keeps
//     failing, so the mover and callers are not retried hot; after the
//     backoff one write is let through as the probe;
//   - reads always go through: the data may well be there, and a failed
//     read costs nothing a refusal would save.
//
// The fast path (no failure seen since the last success) is one atomic
// load; the isolator's lock is taken only while the tier is suspect.
type isolatedTier struct {
	child   ds.Batching
	name    string
	iso     *autoscale.Isolator
	suspect atomic.Bool
}

// isolatedPersistentTier is an isolatedTier over a child that reports its
// disk usage (the tiered store uses it when present).
type isolatedPersistentTier struct{ *isolatedTier }

// DiskUsage implements ds.PersistentDatastore.
func (t isolatedPersistentTier) DiskUsage(ctx context.Context) (uint64, error) {
	return t.child.(ds.PersistentDatastore).DiskUsage(ctx)
}

// isolatedLiveTier is an isolatedPersistentTier over a child that also
// reports its live bytes (blocklog): the tiered mover sizes the tier by them,
// and a wrapper that hid them would make it demote the whole log.
type isolatedLiveTier struct{ isolatedPersistentTier }

// LiveUsage implements tiered.LiveUsage.
func (t isolatedLiveTier) LiveUsage(ctx context.Context) (uint64, error) {
	return t.child.(tiered.LiveUsage).LiveUsage(ctx)
}

// GetMany implements tiered.ManyGetter: blocklog reads many keys in disk
// order, and the tiered store's mover reads its batches through it. Errors
// count as Get's do.
func (t isolatedLiveTier) GetMany(ctx context.Context, keys []ds.Key, fn func(int, []byte, error)) error {
	mg, ok := t.child.(tiered.ManyGetter)
	if !ok {
		for i, k := range keys {
			v, err := t.Get(ctx, k)
			fn(i, v, err)
		}
		return nil
	}
	return t.report(mg.GetMany(ctx, keys, func(i int, v []byte, err error) { fn(i, v, t.report(err)) }))
}

// isolateTier wraps child when it is batching (as flatfs, levelds and
// pebble are); any other child is returned unchanged.
func isolateTier(name string, child ds.Datastore, iso *autoscale.Isolator) ds.Datastore {
	b, ok := child.(ds.Batching)
	if !ok {
		return child
	}
	t := &isolatedTier{child: b, name: "tiered/" + name, iso: iso}
	if _, ok := child.(ds.PersistentDatastore); ok {
		if _, ok := child.(tiered.LiveUsage); ok {
			return isolatedLiveTier{isolatedPersistentTier{t}}
		}
		return isolatedPersistentTier{t}
	}
	return t
}

// report records an outcome; nil and ds.ErrNotFound are successes.
func (t *isolatedTier) report(err error) error {
	if err != nil && !errors.Is(err, ds.ErrNotFound) {
		t.suspect.Store(true)
		t.iso.Report(t.name, err)
		return err
	}
	if t.suspect.Load() {
		t.iso.Report(t.name, nil)
		t.suspect.Store(false)
	}
	return err
}

// write runs a write unless the tier is isolated.
func (t *isolatedTier) write(op func() error) error {
	if t.suspect.Load() && !t.iso.Allow(t.name) {
		return fmt.Errorf("%s: %w", t.name, errTierIsolated)
	}
	return t.report(op())
}

// Get implements ds.Datastore.
func (t *isolatedTier) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	v, err := t.child.Get(ctx, k)
	return v, t.report(err)
}

// Has implements ds.Datastore.
func (t *isolatedTier) Has(ctx context.Context, k ds.Key) (bool, error) {
	v, err := t.child.Has(ctx, k)
	return v, t.report(err)
}

// GetSize implements ds.Datastore.
func (t *isolatedTier) GetSize(ctx context.Context, k ds.Key) (int, error) {
	v, err := t.child.GetSize(ctx, k)
	return v, t.report(err)
}

// Query implements ds.Datastore.
func (t *isolatedTier) Query(ctx context.Context, q dsq.Query) (dsq.Results, error) {
	r, err := t.child.Query(ctx, q)
	return r, t.report(err)
}

// Put implements ds.Datastore.
func (t *isolatedTier) Put(ctx context.Context, k ds.Key, v []byte) error {
	return t.write(func() error { return t.child.Put(ctx, k, v) })
}

// Delete implements ds.Datastore.
func (t *isolatedTier) Delete(ctx context.Context, k ds.Key) error {
	return t.write(func() error { return t.child.Delete(ctx, k) })
}

// Sync implements ds.Datastore.
func (t *isolatedTier) Sync(ctx context.Context, prefix ds.Key) error {
	return t.write(func() error { return t.child.Sync(ctx, prefix) })
}

// Close implements io.Closer.
func (t *isolatedTier) Close() error { return t.child.Close() }

// Batch implements ds.Batching; the commit is the write that may be
// refused.
func (t *isolatedTier) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := t.child.Batch(ctx)
	if err != nil {
		return nil, t.report(err)
	}
	return &isolatedBatch{Batch: b, t: t}, nil
}

type isolatedBatch struct {
	ds.Batch
	t *isolatedTier
}

// Commit implements ds.Batch.
func (b *isolatedBatch) Commit(ctx context.Context) error {
	return b.t.write(func() error { return b.Batch.Commit(ctx) })
}

var (
	_ ds.Batching            = (*isolatedTier)(nil)
	_ ds.PersistentDatastore = isolatedPersistentTier{}
	_ tiered.ManyGetter      = isolatedLiveTier{}
)
