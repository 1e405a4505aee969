package tiered

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// rebuild fills the location index from every durable tier's key listing,
// fastest tier first, and resolves keys found in two tiers (see Open).
func (d *Datastore) rebuild(ctx context.Context) error {
	type dup struct {
		key        ds.Key
		fast, slow int
	}
	var dups []dup
	for _, t := range d.tiers {
		if p, ok := t.Child.(ds.PersistentDatastore); ok {
			n, err := p.DiskUsage(ctx)
			if err != nil {
				return fmt.Errorf("tiered: disk usage of tier %s: %w", t.Name, err)
			}
			t.reportsUsage = n > 0
		}
		persistent := t.reportsUsage
		res, err := t.Child.Query(ctx, query.Query{KeysOnly: true, ReturnsSizes: !persistent})
		if err != nil {
			return fmt.Errorf("tiered: list tier %s: %w", t.Name, err)
		}
		for r := range res.Next() {
			if r.Error != nil {
				res.Close()
				return fmt.Errorf("tiered: list tier %s: %w", t.Name, r.Error)
			}
			k := ds.RawKey(r.Key)
			h := hashKey(k)
			if e, ok := d.idx.get(h); ok {
				dups = append(dups, dup{key: k, fast: e.tier(), slow: t.n})
				continue
			}
			d.idx.place(h, t.n, stateUnknown)
			if !persistent && r.Size > 0 {
				t.tracked.Add(int64(r.Size))
			}
		}
		res.Close()
	}
	for _, p := range dups {
		if err := d.resolve(ctx, p.key, d.tiers[p.fast], d.tiers[p.slow]); err != nil {
			return err
		}
	}
	return nil
}

// resolve keeps one copy of a key listed by two tiers (see Open for the
// rule) and deletes the other.
func (d *Datastore) resolve(ctx context.Context, key ds.Key, fast, slow *durable) error {
	fv, ferr := fast.Child.Get(ctx, key)
	sv, serr := slow.Child.Get(ctx, key)
	h := hashKey(key)
	switch {
	case errors.Is(ferr, ds.ErrNotFound) && serr == nil:
		// A 64-bit hash collision with another key in the fast tier, not a
		// duplicate: the index can only name one tier; reads fall back to
		// probing, so leave both keys be.
		return nil
	case ferr != nil:
		return fmt.Errorf("tiered: resolve %s in tier %s: %w", key, fast.Name, ferr)
	case serr != nil:
		return fmt.Errorf("tiered: resolve %s in tier %s: %w", key, slow.Name, serr)
	}
	keepFast := bytes.Equal(fv, sv)
	if !keepFast && d.opts.Verify != nil {
		if v, err := d.codec.decode(fv); err == nil && d.opts.Verify(key, v) {
			keepFast = true
		}
	}
	drop := fast
	if keepFast {
		drop = slow
	}
	if err := drop.Child.Delete(ctx, key); err != nil {
		return fmt.Errorf("tiered: resolve %s: delete the copy in tier %s: %w", key, drop.Name, err)
	}
	if err := drop.Child.Sync(ctx, key); err != nil {
		return fmt.Errorf("tiered: resolve %s: sync tier %s: %w", key, drop.Name, err)
	}
	if !keepFast {
		d.idx.place(h, slow.n, stateUnknown)
	}
	d.resolved.Add(1)
	return nil
}
