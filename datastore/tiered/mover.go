package tiered

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	logging "github.com/ipfs/go-log/v2"
	"golang.org/x/time/rate"
)

var log = logging.Logger("highload/tiered")

// The mover. Every MoverInterval it:
//
//  1. promotes the blocks that reads queued as hot (PromoteHits decayed
//     reads while in a slower tier) into the next faster tier, if the block
//     fits there under its high watermark;
//  2. for each tier but the last that is past its high watermark, lists the
//     tier, keeps the coldest keys (lowest decayed frequency, see
//     entry.score) and demotes them to the next slower tier until the tier
//     is under its low watermark.
//
// Every move is copy, sync the destination, update the index, delete the
// source, sync the source, under the key's write lock; a crash in between
// leaves the key in two tiers, which Open resolves. Moved bytes go through
// a token bucket of MoverRate bytes per second.

const (
	// demoteCandidates bounds the keys one demotion pass ranks.
	demoteCandidates = 4096
	// scoreHalfLife: a block's frequency halves for every this many seconds
	// without an access.
	scoreHalfLife = 600
)

func (d *Datastore) moverLoop() {
	defer d.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-d.closeCh
		cancel()
	}()
	lim := rate.NewLimiter(rate.Limit(d.opts.MoverRate), int(min(d.opts.MoverRate, 64<<20)))
	tick := time.NewTicker(d.opts.MoverInterval)
	defer tick.Stop()
	lastDecay := d.opts.Clock()
	for {
		select {
		case <-d.closeCh:
			return
		case <-tick.C:
		}
		if now := d.opts.Clock(); now.Sub(lastDecay) >= d.opts.DecayPeriod {
			d.idx.decay()
			lastDecay = now
		}
		if err := d.moverPass(ctx, lim); err != nil && ctx.Err() == nil {
			log.Warnw("mover pass failed", "err", err)
		}
	}
}

// moverPass runs one round of promotions and demotions. lim may be nil
// (no rate limit; for tests).
func (d *Datastore) moverPass(ctx context.Context, lim *rate.Limiter) error {
	var errs []error
	errs = append(errs, d.promotePass(ctx, lim))
	for i := 0; i < len(d.tiers)-1; i++ {
		errs = append(errs, d.demotePass(ctx, lim, d.tiers[i], d.tiers[i+1]))
	}
	return errors.Join(errs...)
}

func (d *Datastore) promotePass(ctx context.Context, lim *rate.Limiter) error {
	for {
		var key ds.Key
		select {
		case key = <-d.promote:
		default:
			return nil
		}
		h := hashKey(key)
		e, ok := d.idx.get(h)
		if !ok || e.tier() == 0 {
			continue
		}
		from, to := d.tiers[e.tier()], d.tiers[e.tier()-1]
		if to.Capacity > 0 {
			used, err := to.used(ctx)
			if err != nil {
				return err
			}
			n, err := from.Child.GetSize(ctx, key)
			if err != nil {
				continue
			}
			if float64(used)+float64(n) > d.opts.HighWatermark*float64(to.Capacity) {
				continue // no room: leave it where it is
			}
		}
		moved, err := d.move(ctx, lim, key, from, to)
		if err != nil {
			return err
		}
		if moved {
			d.promotions.Add(1)
			to.promoted.Add(1)
		}
	}
}

// candidate is a key ranked for demotion.
type candidate struct {
	key   ds.Key
	score float64
}

// coldHeap is a max-heap on score: its top is the warmest of the coldest
// kept so far, the one to drop when a colder key comes.
type coldHeap []candidate

func (h coldHeap) Len() int           { return len(h) }
func (h coldHeap) Less(i, j int) bool { return h[i].score > h[j].score }
func (h coldHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *coldHeap) Push(x any)        { *h = append(*h, x.(candidate)) }
func (h *coldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (d *Datastore) demotePass(ctx context.Context, lim *rate.Limiter, from, to *durable) error {
	if from.Capacity == 0 {
		return nil
	}
	used, err := from.used(ctx)
	if err != nil {
		return err
	}
	if float64(used) <= d.opts.HighWatermark*float64(from.Capacity) {
		return nil
	}
	need := int64(used) - int64(d.opts.LowWatermark*float64(from.Capacity))
	now := d.now()
	res, err := from.Child.Query(ctx, query.Query{KeysOnly: true})
	if err != nil {
		return fmt.Errorf("tiered: mover: list tier %s: %w", from.Name, err)
	}
	cold := &coldHeap{}
	for r := range res.Next() {
		if r.Error != nil {
			res.Close()
			return fmt.Errorf("tiered: mover: list tier %s: %w", from.Name, r.Error)
		}
		k := ds.RawKey(r.Key)
		e, ok := d.idx.get(hashKey(k))
		if !ok || e.tier() != from.n {
			continue
		}
		c := candidate{key: k, score: e.score(now, scoreHalfLife)}
		if cold.Len() < demoteCandidates {
			heap.Push(cold, c)
		} else if c.score < (*cold)[0].score {
			(*cold)[0] = c
			heap.Fix(cold, 0)
		}
	}
	res.Close()
	// Coldest first.
	order := make([]candidate, cold.Len())
	for i := len(order) - 1; i >= 0; i-- {
		order[i] = heap.Pop(cold).(candidate)
	}
	for _, c := range order {
		if need <= 0 || ctx.Err() != nil {
			break
		}
		n, err := from.Child.GetSize(ctx, c.key)
		if err != nil {
			continue
		}
		moved, err := d.move(ctx, lim, c.key, from, to)
		if err != nil {
			return err
		}
		if moved {
			need -= int64(n)
			d.demotions.Add(1)
			from.demoted.Add(1)
		}
	}
	return nil
}

// move copies key's stored bytes from one tier to another, syncs, points
// the index at the destination, then deletes and syncs the source. It
// returns false if the key is no longer in from.
func (d *Datastore) move(ctx context.Context, lim *rate.Limiter, key ds.Key, from, to *durable) (bool, error) {
	h := hashKey(key)
	mu := d.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	e, ok := d.idx.get(h)
	if !ok || e.tier() != from.n {
		return false, nil
	}
	v, err := from.Child.Get(ctx, key)
	if errors.Is(err, ds.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tiered: mover: read %s from tier %s: %w", key, from.Name, err)
	}
	if lim != nil {
		if err := lim.WaitN(ctx, min(len(v), lim.Burst())); err != nil {
			return false, err
		}
	}
	if err := to.Child.Put(ctx, key, v); err != nil {
		return false, fmt.Errorf("tiered: mover: write %s to tier %s: %w", key, to.Name, err)
	}
	if err := to.Child.Sync(ctx, key); err != nil {
		return false, fmt.Errorf("tiered: mover: sync %s in tier %s: %w", key, to.Name, err)
	}
	d.idx.place(h, to.n, e.state())
	to.tracked.Add(int64(len(v)))
	if err := from.Child.Delete(ctx, key); err != nil {
		return true, fmt.Errorf("tiered: mover: delete %s from tier %s: %w", key, from.Name, err)
	}
	from.tracked.Add(-int64(len(v)))
	if err := from.Child.Sync(ctx, key); err != nil {
		return true, fmt.Errorf("tiered: mover: sync %s in tier %s: %w", key, from.Name, err)
	}
	return true, nil
}

// Settle runs mover passes, without the rate limit, until nothing moves or
// ctx ends. Tests and the admin use it to reach a steady placement.
func (d *Datastore) Settle(ctx context.Context) error {
	if !d.enter() {
		return ErrClosed
	}
	defer d.leave()
	for i := 0; i < 64; i++ {
		before := d.promotions.Load() + d.demotions.Load()
		if err := d.moverPass(ctx, nil); err != nil {
			return err
		}
		if d.promotions.Load()+d.demotions.Load() == before {
			return nil
		}
	}
	return nil
}
