package blocklog

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// Query lists a snapshot of the index's keys under q.Prefix, reading values
// lazily unless q.KeysOnly; a key deleted after the snapshot is skipped.
// With values, the snapshot is sorted by segment and offset and read
// queryChunk keys at a time with GetMany, so a full listing reads the log
// front to back instead of one random read per key. Filters, orders,
// offset and limit are applied with go-datastore's query helpers.
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
	var where []entry
	if !q.KeysOnly {
		where = make([]entry, 0, len(d.index))
	}
	for k, e := range d.index {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
			if !q.KeysOnly {
				where = append(where, e)
			}
		}
	}
	d.mu.RUnlock()
	if !q.KeysOnly {
		return d.queryValues(ctx, q, keys, where), nil
	}
	needSize := q.ReturnsSizes || (len(q.Filters) > 0 || len(q.Orders) > 0)
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
				e := query.Entry{Key: k, Size: -1}
				if needSize {
					n, err := d.GetSize(ctx, ds.RawKey(k))
					if err == ds.ErrNotFound {
						continue
					}
					e.Size = n
				}
				return query.Result{Entry: e}, true
			}
			return query.Result{}, false
		},
		Close: func() error { return nil },
	}
	naive := q
	naive.Prefix = "" // applied above
	return query.ResultsReplaceQuery(query.NaiveQueryApply(naive, query.ResultsFromIterator(q, it)), q), nil
}

// queryChunk is how many keys a Query with values reads per GetMany.
const queryChunk = 128

// queryValues yields keys' values, read in disk order (where holds each
// key's location in the snapshot) queryChunk at a time.
func (d *Datastore) queryValues(ctx context.Context, q query.Query, keys []string, where []entry) query.Results {
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		ea, eb := where[order[a]], where[order[b]]
		if ea.seg != eb.seg {
			return ea.seg < eb.seg
		}
		return ea.off < eb.off
	})
	next := 0
	var ready []query.Result
	chunk := make([]ds.Key, 0, queryChunk)
	it := query.Iterator{
		Next: func() (query.Result, bool) {
			for len(ready) == 0 {
				if next >= len(order) {
					return query.Result{}, false
				}
				chunk = chunk[:0]
				for ; next < len(order) && len(chunk) < queryChunk; next++ {
					chunk = append(chunk, ds.RawKey(keys[order[next]]))
				}
				err := d.GetMany(ctx, chunk, func(i int, v []byte, err error) {
					switch {
					case err == ds.ErrNotFound: // deleted after the snapshot
					case err != nil:
						ready = append(ready, query.Result{Error: err})
					default:
						ready = append(ready, query.Result{Entry: query.Entry{Key: chunk[i].String(), Value: v, Size: len(v)}})
					}
				})
				if err != nil {
					next = len(order)
					ready = append(ready, query.Result{Error: err})
				}
			}
			r := ready[0]
			ready = ready[1:]
			return r, true
		},
		Close: func() error { return nil },
	}
	naive := q
	naive.Prefix = "" // applied by the snapshot
	return query.ResultsReplaceQuery(query.NaiveQueryApply(naive, query.ResultsFromIterator(q, it)), q)
}

// batch collects writes until Commit, which writes them as one atomic group.
type batch struct {
	d   *Datastore
	ops []op
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
