package tiered

import (
	"context"
	"fmt"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// Query lists the durable tiers one after another, yielding each key once:
// a tier's entry is yielded only if the location index names that tier as
// the key's home, so a key caught mid-move (or left in two tiers by a crash
// before the next open) appears once. The prefix goes down to the children;
// filters, orders, offset and limit are applied over the merged stream with
// go-datastore's query helpers. Values are decoded; sizes are raw sizes.
func (d *Datastore) Query(ctx context.Context, q query.Query) (query.Results, error) {
	if !d.enter() {
		return nil, ErrClosed
	}
	defer d.leave()
	childQ := query.Query{Prefix: q.Prefix, KeysOnly: q.KeysOnly, ReturnsSizes: q.ReturnsSizes}
	// Filters and orders may read values or sizes.
	needValues := !q.KeysOnly
	if q.KeysOnly && (len(q.Filters) > 0 || len(q.Orders) > 0) {
		childQ.ReturnsSizes = true
	}
	tiers := d.tiers
	merged := query.ResultsWithContext(childQ, func(qctx context.Context, out chan<- query.Result) {
		for _, t := range tiers {
			res, err := t.Child.Query(ctx, childQ)
			if err != nil {
				sendResult(qctx, out, query.Result{Error: fmt.Errorf("tiered: query tier %s: %w", t.Name, err)})
				return
			}
			if !d.pump(ctx, qctx, t, res, out, needValues, childQ.ReturnsSizes) {
				res.Close()
				return
			}
			res.Close()
		}
	})
	naive := q
	naive.Prefix = "" // the children applied it
	return query.ResultsReplaceQuery(query.NaiveQueryApply(naive, merged), q), nil
}

// pump forwards one tier's results, skipping keys whose home is another
// tier. It returns false when the consumer went away or on an error.
func (d *Datastore) pump(ctx, qctx context.Context, t *durable, res query.Results, out chan<- query.Result,
	values, sizes bool) bool {
	for {
		r, ok := res.NextSync()
		if !ok {
			return true
		}
		if r.Error != nil {
			sendResult(qctx, out, query.Result{Error: fmt.Errorf("tiered: query tier %s: %w", t.Name, r.Error)})
			return false
		}
		k := ds.RawKey(r.Key)
		h := hashKey(k)
		e, ok := d.idx.get(h)
		if !ok || e.tier() != t.n {
			continue
		}
		if values {
			v, err := d.codec.decode(r.Value)
			if err != nil {
				sendResult(qctx, out, query.Result{Error: fmt.Errorf("tiered: query tier %s: %s: %w", t.Name, r.Key, err)})
				return false
			}
			r.Value, r.Size = v, len(v)
		} else if sizes && e.state() != stateRaw {
			n, err := d.GetSize(ctx, k)
			if err != nil {
				continue // deleted meanwhile
			}
			r.Size = n
		}
		if !sendResult(qctx, out, r) {
			return false
		}
	}
}

func sendResult(ctx context.Context, out chan<- query.Result, r query.Result) bool {
	select {
	case out <- r:
		return true
	case <-ctx.Done():
		return false
	}
}
