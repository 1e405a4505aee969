package blocklog

import (
	"context"
	"fmt"
	"path"
	"strings"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// Query lists a snapshot of the index's keys under q.Prefix, reading values
// lazily unless q.KeysOnly; a key deleted after the snapshot is skipped.
// Filters, orders, offset and limit are applied with go-datastore's query
// helpers.
func (d *Datastore) Query(ctx context.Context, q query.Query) (query.Results, error) {
	// The prefix as go-datastore's NaiveQueryApply reads it: cleaned as a
	// path, matching whole path segments.
	prefix := ""
	if q.Prefix != "" {
		p := q.Prefix
		if p[0] != '/' {
			p = "/" + p
		}
		if p = path.Clean(p); p != "/" {
			prefix = p + "/"
		}
	}
	d.mu.RLock()
	keys := make([]string, 0, len(d.index))
	for k := range d.index {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	d.mu.RUnlock()
	needSize := q.ReturnsSizes || (q.KeysOnly && (len(q.Filters) > 0 || len(q.Orders) > 0))
	i := 0
	it := query.Iterator{
		Next: func() (query.Result, bool) {
			for i < len(keys) {
				if err := ctx.Err(); err != nil {
					i = len(keys)
					return query.Result{Error: err}, true
				}
				k := keys[i]
				i++
				key := ds.RawKey(k)
				if q.KeysOnly {
					e := query.Entry{Key: k, Size: -1}
					if needSize {
						n, err := d.GetSize(ctx, key)
						if err == ds.ErrNotFound {
							continue
						}
						e.Size = n
					}
					return query.Result{Entry: e}, true
				}
				v, err := d.Get(ctx, key)
				if err == ds.ErrNotFound {
					continue
				}
				if err != nil {
					return query.Result{Error: err}, true
				}
				return query.Result{Entry: query.Entry{Key: k, Value: v, Size: len(v)}}, true
			}
			return query.Result{}, false
		},
		Close: func() error { return nil },
	}
	naive := q
	naive.Prefix = "" // applied above
	return query.ResultsReplaceQuery(query.NaiveQueryApply(naive, query.ResultsFromIterator(q, it)), q), nil
}

// batch collects writes until Commit, which writes them as one atomic group.
type batch struct {
	d   *Datastore
	ops []op
	err error
}

// Batch returns a batch whose Commit is atomic: after a crash either all of
// its writes are visible or none.
func (d *Datastore) Batch(context.Context) (ds.Batch, error) { return &batch{d: d}, nil }

func (b *batch) Put(_ context.Context, key ds.Key, value []byte) error {
	k, err := b.d.checkKey(key)
	if err != nil {
		return err
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("blocklog: value of %d bytes above the maximum %d", len(value), MaxValueLen)
	}
	b.ops = append(b.ops, op{kind: kindPut, key: k, val: value})
	return nil
}

func (b *batch) Delete(_ context.Context, key ds.Key) error {
	k, err := b.d.checkKey(key)
	if err != nil {
		return err
	}
	b.ops = append(b.ops, op{kind: kindDelete, key: k})
	return nil
}

func (b *batch) Commit(context.Context) error {
	ops := b.ops
	b.ops = nil
	if len(ops) == 0 {
		return nil
	}
	return b.d.submit(ops)
}
