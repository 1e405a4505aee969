package plugin

import (
	"bytes"
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
//   - writes are what is judged: every write error (Put, Delete, Sync,
//     batch commits) counts as a failure; a write that changed the disk (a
//     Put, a commit, a Delete of a key that was there) after a failure
//     counts as a recovery; Threshold failures in a row isolate the tier.
//     A Sync's or a no-op Delete's success is no evidence: a read-only
//     disk gives both;
//   - while it is isolated, writes (Put, Delete, batch commits) fail at
//     once with errTierIsolated
//     instead of going to a disk that keeps failing, so the mover and
//     callers are not retried hot (the tiered store puts a new key in the
//     next tier); after the backoff one write is let through as the probe;
//   - reads always go through and are not judged: the data may well be
//     there, a failed read costs nothing a refusal would save, and a disk
//     that went read-only still serves reads, so a read's success says
//     nothing about writes (judging reads made such a tier flap between
//     isolated and healthy at every read);
//   - a refused or failed Put (or a batch of puts) of a value the tier
//     already holds byte for byte succeeds: nothing needed writing. A
//     block re-added while its tier is read-only is stored, not an error.
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

// report records a write's outcome; nil and ds.ErrNotFound are successes.
// Only a write that changed the disk may report a success (Put, a batch
// commit, a Delete of a key that was there): that is the evidence the tier
// takes writes again.
func (t *isolatedTier) report(err error) error {
	if err != nil && !errors.Is(err, ds.ErrNotFound) {
		t.fail(err)
		return err
	}
	if t.suspect.Load() {
		t.iso.Report(t.name, nil)
		t.suspect.Store(false)
	}
	return err
}

// fail records a failure.
func (t *isolatedTier) fail(err error) {
	t.suspect.Store(true)
	t.iso.Report(t.name, err)
}

// write runs a write unless the tier is isolated.
func (t *isolatedTier) write(op func() error) error {
	if t.suspect.Load() && !t.iso.Allow(t.name) {
		return fmt.Errorf("%s: %w", t.name, errTierIsolated)
	}
	return t.report(op())
}

// holds reports whether the tier already stores exactly v under k (a read,
// so it goes through while the tier is isolated).
func (t *isolatedTier) holds(ctx context.Context, k ds.Key, v []byte) bool {
	got, err := t.child.Get(ctx, k)
	return err == nil && bytes.Equal(got, v)
}

// Get implements ds.Datastore.
func (t *isolatedTier) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	return t.child.Get(ctx, k)
}

// Has implements ds.Datastore.
func (t *isolatedTier) Has(ctx context.Context, k ds.Key) (bool, error) {
	return t.child.Has(ctx, k)
}

// GetSize implements ds.Datastore.
func (t *isolatedTier) GetSize(ctx context.Context, k ds.Key) (int, error) {
	return t.child.GetSize(ctx, k)
}

// Query implements ds.Datastore.
func (t *isolatedTier) Query(ctx context.Context, q dsq.Query) (dsq.Results, error) {
	return t.child.Query(ctx, q)
}

// Put implements ds.Datastore.
func (t *isolatedTier) Put(ctx context.Context, k ds.Key, v []byte) error {
	err := t.write(func() error { return t.child.Put(ctx, k, v) })
	if err != nil && t.holds(ctx, k, v) {
		return nil
	}
	return err
}

// Delete implements ds.Datastore. While the tier is suspect, a key it does
// not hold is not deleted, judged or refused: the tiered store deletes a key
// from every tier but its home after a write spills, and flatfs answers such
// a delete with success even on a read-only disk, which must not readmit it.
func (t *isolatedTier) Delete(ctx context.Context, k ds.Key) error {
	if t.suspect.Load() {
		if ok, err := t.child.Has(ctx, k); err == nil && !ok {
			return nil
		}
	}
	return t.write(func() error { return t.child.Delete(ctx, k) })
}

// Sync implements ds.Datastore. It always reaches the child (what was
// written before the isolation may still need it); a failure counts, but a
// success readmits nothing: syncing a read-only disk succeeds.
func (t *isolatedTier) Sync(ctx context.Context, prefix ds.Key) error {
	err := t.child.Sync(ctx, prefix)
	if err != nil {
		t.fail(err)
	}
	return err
}

// Close implements io.Closer.
func (t *isolatedTier) Close() error { return t.child.Close() }

// Batch implements ds.Batching; the commit is the write that may be
// refused. Opening a batch writes nothing and is not judged.
func (t *isolatedTier) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := t.child.Batch(ctx)
	if err != nil {
		return nil, err
	}
	return &isolatedBatch{Batch: b, t: t}, nil
}

type isolatedBatch struct {
	ds.Batch
	t       *isolatedTier
	puts    []batchPut // to tell a rewrite of held values from a write
	deletes bool
}

type batchPut struct {
	k ds.Key
	v []byte
}

// Put implements ds.Batch.
func (b *isolatedBatch) Put(ctx context.Context, k ds.Key, v []byte) error {
	b.puts = append(b.puts, batchPut{k, v})
	return b.Batch.Put(ctx, k, v)
}

// Delete implements ds.Batch.
func (b *isolatedBatch) Delete(ctx context.Context, k ds.Key) error {
	b.deletes = true
	return b.Batch.Delete(ctx, k)
}

// Commit implements ds.Batch. A refused or failed commit of puts only,
// every one of a value the tier already holds, succeeds.
func (b *isolatedBatch) Commit(ctx context.Context) error {
	err := b.t.write(func() error { return b.Batch.Commit(ctx) })
	if err == nil || b.deletes || len(b.puts) == 0 {
		return err
	}
	for _, p := range b.puts {
		if !b.t.holds(ctx, p.k, p.v) {
			return err
		}
	}
	return nil
}

var (
	_ ds.Batching            = (*isolatedTier)(nil)
	_ ds.PersistentDatastore = isolatedPersistentTier{}
	_ tiered.ManyGetter      = isolatedLiveTier{}
)
