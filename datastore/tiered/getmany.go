package tiered

import (
	"context"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"
)

// Reads of many keys, grouped per tier. The location index says which tier
// holds each key, so a caller with many keys (the mover, a bulk export)
// gets them tier by tier: each tier's keys in one call to the child's
// GetMany where the child has one (blocklog reads them in disk order,
// neighbouring records with one preadv), else one Get after another.

// ManyGetter is implemented by a child that reads many keys faster
// together than one at a time. GetMany calls fn once per key with its
// position in keys and its value, or ds.ErrNotFound, or another error; in
// any order, from the calling goroutine. Its error is one that ended the
// reads early (some keys then got no call).
type ManyGetter interface {
	GetMany(ctx context.Context, keys []ds.Key, fn func(i int, value []byte, err error)) error
}

// GetMany reads the values of keys and calls fn once per key with its
// position in keys and its value, or ds.ErrNotFound for a key that is not
// stored. Keys the memory tier holds are answered from it; the others are
// looked up in the location index and read tier by tier, each tier's keys
// in one pass (ManyGetter). Calls come in no particular order, from the
// calling goroutine. Each read counts as a Get does (hits, access counts,
// memory-tier admission, promotion). A key that moved to another tier
// since the index was read is found by Get's fallback. The error returned
// is ctx's or one that ended a tier's reads early; keys not answered then
// got no call.
func (d *Datastore) GetMany(ctx context.Context, keys []ds.Key, fn func(i int, value []byte, err error)) error {
	if !d.enter() {
		return ErrClosed
	}
	defer d.leave()
	perTier := make([][]int, len(d.tiers))
	for i, key := range keys {
		h := hashKey(key)
		if d.mem != nil {
			if v, ok := d.mem.cache.GetIfPresent(key.String()); ok {
				d.mem.hits.Add(1)
				d.idx.touch(h, d.now())
				fn(i, v, nil)
				continue
			}
		}
		e, ok := d.idx.get(h)
		if !ok {
			d.absent.Add(1)
			fn(i, nil, ds.ErrNotFound)
			continue
		}
		perTier[e.tier()] = append(perTier[e.tier()], i)
	}
	for ti, idxs := range perTier {
		if len(idxs) == 0 {
			continue
		}
		t := d.tiers[ti]
		err := d.readTier(ctx, t, keys, idxs, func(i int, stored []byte, err error) {
			key := keys[i]
			h := hashKey(key)
			from := t
			if errors.Is(err, ds.ErrNotFound) {
				// Moved since the lookup (or a hash collision): the
				// single-key path re-reads the index, then probes.
				stored, from, err = d.getStored(ctx, key, h)
			} else if err == nil {
				t.hits.Add(1)
			}
			if err != nil {
				fn(i, nil, err)
				return
			}
			v, err := d.finishGet(key, key.String(), h, stored, from)
			fn(i, v, err)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// readTier reads the stored bytes of keys[idxs...] from tier t, calling fn
// with each key's position in keys: with the child's GetMany if it has
// one, else one Get per key. Errors other than ds.ErrNotFound name the
// tier.
func (d *Datastore) readTier(ctx context.Context, t *durable, keys []ds.Key, idxs []int,
	fn func(i int, stored []byte, err error)) error {
	wrap := func(key ds.Key, err error) error {
		if err == nil || errors.Is(err, ds.ErrNotFound) {
			return err
		}
		return fmt.Errorf("tiered: get %s from tier %s: %w", key, t.Name, err)
	}
	if mg, ok := t.Child.(ManyGetter); ok {
		sub := make([]ds.Key, len(idxs))
		for j, i := range idxs {
			sub[j] = keys[i]
		}
		err := mg.GetMany(ctx, sub, func(j int, v []byte, err error) {
			fn(idxs[j], v, wrap(sub[j], err))
		})
		if err != nil {
			return fmt.Errorf("tiered: read tier %s: %w", t.Name, err)
		}
		return nil
	}
	for _, i := range idxs {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := t.Child.Get(ctx, keys[i])
		fn(i, v, wrap(keys[i], err))
	}
	return nil
}
