package tiered

import (
	"context"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"
)

// Group commit. Each durable tier has CommitConcurrency committer
// goroutines (default 8) reading one queue. Puts hand them a request and
// wait; while child batches commit, the next requests queue, and a free
// committer takes all of them (up to MaxBatchBytes) into the next batch. A
// lone put goes to the child's Put, without a batch. Under load a batch holds as many puts as arrived during one
// commit, so the per-commit cost (an fsync with flatfs sync=true, a WAL
// write with pebble) is shared. A request's keys are in one child batch, so
// a datastore Batch is as atomic per tier as the child's batches are.

// kv is one value to write, already encoded.
type kv struct {
	key    ds.Key
	h      uint64
	stored []byte
	framed bool
}

type commitReq struct {
	kvs  []kv
	done chan error
}

// submit queues kvs on t's committer and waits for the commit.
func (d *Datastore) submit(ctx context.Context, t *durable, kvs []kv) error {
	req := &commitReq{kvs: kvs, done: make(chan error, 1)}
	select {
	case t.commits <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.closeCh:
		return ErrClosed
	}
	// Once queued the request is committed even if ctx ends: wait for it,
	// so the caller's view matches the disk.
	return <-req.done
}

// committer runs t's group commits until Close, then drains the queue.
func (d *Datastore) committer(t *durable) {
	defer d.wg.Done()
	for {
		var first *commitReq
		select {
		case first = <-t.commits:
		case <-d.closeCh:
			for {
				select {
				case r := <-t.commits:
					d.commitGroup(t, []*commitReq{r})
				default:
					return
				}
			}
		}
		group := []*commitReq{first}
		bytes := reqBytes(first)
	drain:
		for bytes < d.opts.MaxBatchBytes {
			select {
			case r := <-t.commits:
				group = append(group, r)
				bytes += reqBytes(r)
			default:
				break drain
			}
		}
		d.commitGroup(t, group)
	}
}

func reqBytes(r *commitReq) int {
	n := 0
	for _, p := range r.kvs {
		n += len(p.stored)
	}
	return n
}

// commitGroup writes the group in one child batch (or one by one if the
// child does not batch) and answers every request.
//
// If a group of several requests fails, each request is retried alone, so
// one request's bad key or value does not fail the puts it was grouped with.
func (d *Datastore) commitGroup(t *durable, group []*commitReq) {
	err := d.writeGroup(t, group)
	t.batches.Add(1)
	if err != nil && len(group) > 1 {
		for _, r := range group {
			d.commitGroup(t, []*commitReq{r})
		}
		return
	}
	if err != nil {
		err = fmt.Errorf("tiered: write to tier %s: %w", t.Name, err)
	}
	for _, r := range group {
		t.batched.Add(uint64(len(r.kvs)))
		r.done <- err
	}
}

func (d *Datastore) writeGroup(t *durable, group []*commitReq) error {
	ctx := context.Background()
	b, ok := t.Child.(ds.Batching)
	if len(group) == 1 && len(group[0].kvs) == 1 {
		// Alone: a plain Put costs less than a one-entry batch (flatfs
		// makes and removes a temporary directory per batch).
		p := group[0].kvs[0]
		return t.Child.Put(ctx, p.key, p.stored)
	}
	if !ok {
		var errs []error
		for _, r := range group {
			for _, p := range r.kvs {
				errs = append(errs, t.Child.Put(ctx, p.key, p.stored))
			}
		}
		return errors.Join(errs...)
	}
	batch, err := b.Batch(ctx)
	if err != nil {
		return err
	}
	for _, r := range group {
		for _, p := range r.kvs {
			if err := batch.Put(ctx, p.key, p.stored); err != nil {
				return err
			}
		}
	}
	return batch.Commit(ctx)
}

// batch is a ds.Batch: puts and deletes buffered until Commit, whose puts
// go to each tier in one group-commit request.
type batch struct {
	d       *Datastore
	puts    map[ds.Key][]byte
	deletes map[ds.Key]struct{}
}

// Batch returns a new batch.
func (d *Datastore) Batch(_ context.Context) (ds.Batch, error) {
	if !d.enter() {
		return nil, ErrClosed
	}
	defer d.leave()
	return &batch{d: d, puts: map[ds.Key][]byte{}, deletes: map[ds.Key]struct{}{}}, nil
}

// Put buffers a put; a later Delete of the same key in the batch wins.
func (b *batch) Put(_ context.Context, key ds.Key, value []byte) error {
	delete(b.deletes, key)
	b.puts[key] = value
	return nil
}

// Delete buffers a delete.
func (b *batch) Delete(_ context.Context, key ds.Key) error {
	delete(b.puts, key)
	b.deletes[key] = struct{}{}
	return nil
}

// Commit writes the batch: puts first, then deletes.
func (b *batch) Commit(ctx context.Context) error {
	d := b.d
	if !d.enter() {
		return ErrClosed
	}
	defer d.leave()
	kvs := make([]kv, 0, len(b.puts))
	hs := make([]uint64, 0, len(b.puts)+len(b.deletes))
	for k, v := range b.puts {
		stored, framed := d.encode(v)
		h := hashKey(k)
		kvs = append(kvs, kv{key: k, h: h, stored: stored, framed: framed})
		hs = append(hs, h)
	}
	dels := make([]ds.Key, 0, len(b.deletes))
	for k := range b.deletes {
		dels = append(dels, k)
		hs = append(hs, hashKey(k))
	}
	unlock := d.lockStripes(hs)
	defer unlock()
	var errs []error
	if len(kvs) > 0 {
		errs = append(errs, d.putLocked(ctx, kvs))
	}
	for _, k := range dels {
		errs = append(errs, d.deleteLocked(ctx, k, hashKey(k)))
	}
	b.puts, b.deletes = map[ds.Key][]byte{}, map[ds.Key]struct{}{}
	return errors.Join(errs...)
}
