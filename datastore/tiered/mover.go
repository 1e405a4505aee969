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
// source, sync the source, under the keys' write locks; a crash in between
// leaves a key in two tiers, which Open resolves. Keys move in batches of up
// to 32 keys or 4 MiB (moveMany): read from the source in one pass, one
// child batch and one sync per side. Moved bytes go through a token bucket
// of MoverRate bytes per second.

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
	// Drain the queue (each key once), grouped by the tier the key is in.
	bySource := make([][]ds.Key, len(d.tiers))
	seen := map[ds.Key]bool{}
drain:
	for {
		select {
		case key := <-d.promote:
			e, ok := d.idx.get(hashKey(key))
			if ok && e.tier() > 0 && !seen[key] {
				seen[key] = true
				bySource[e.tier()] = append(bySource[e.tier()], key)
			}
		default:
			break drain
		}
	}
	for ti, queued := range bySource {
		if len(queued) == 0 {
			continue
		}
		from, to := d.tiers[ti], d.tiers[ti-1]
		for len(queued) > 0 && ctx.Err() == nil {
			var used uint64
			if to.Capacity > 0 {
				var err error
				if used, err = to.used(ctx); err != nil {
					return err
				}
			}
			var keys []ds.Key
			var size int64
			for len(queued) > 0 && len(keys) < moveBatchKeys && size < moveBatchBytes {
				key := queued[0]
				queued = queued[1:]
				n, err := from.Child.GetSize(ctx, key)
				if err != nil {
					continue
				}
				if to.Capacity > 0 && float64(used)+float64(size+int64(n)) > d.opts.HighWatermark*float64(to.Capacity) {
					continue // no room: leave it where it is
				}
				keys = append(keys, key)
				size += int64(n)
			}
			moved, _, err := d.moveMany(ctx, lim, keys, from, to)
			d.promotions.Add(uint64(moved))
			to.promoted.Add(uint64(moved))
			if err != nil {
				return err
			}
		}
	}
	return nil
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
	for i := 0; i < len(order) && need > 0 && ctx.Err() == nil; {
		// The next batch: coldest first, until it covers what is left to
		// free or holds moveBatchKeys keys or moveBatchBytes.
		var keys []ds.Key
		var size int64
		for ; i < len(order) && len(keys) < moveBatchKeys && size < min(need, moveBatchBytes); i++ {
			n, err := from.Child.GetSize(ctx, order[i].key)
			if err != nil {
				continue
			}
			keys = append(keys, order[i].key)
			size += int64(n)
		}
		moved, bytes, err := d.moveMany(ctx, lim, keys, from, to)
		need -= bytes
		d.demotions.Add(uint64(moved))
		from.demoted.Add(uint64(moved))
		if err != nil {
			return err
		}
	}
	return nil
}

// A move batch: at most moveBatchKeys keys and about moveBatchBytes.
// moveBatchKeys is a variable so that BenchmarkMoverDemote can compare
// batches of one key (the mover before batching).
var moveBatchKeys = 32

const moveBatchBytes = 4 << 20

// moveMany moves keys from one tier to another as one batch, under the
// keys' write locks: it reads them from the source tier in one pass
// (readTier: blocklog reads them in disk order), writes them to the
// destination in one child batch and syncs it once, points the index at
// the destination, then deletes them from the source in one batch and
// syncs it once. The order is that of move, so a crash leaves each key
// whole in at least one tier, and Open resolves a key left in two; but the
// two syncs are paid once per batch, not once per key. It returns how many
// keys and stored bytes it moved; keys no longer in from are skipped.
func (d *Datastore) moveMany(ctx context.Context, lim *rate.Limiter, keys []ds.Key, from, to *durable) (int, int64, error) {
	if len(keys) == 0 {
		return 0, 0, nil
	}
	hs := make([]uint64, len(keys))
	for i, k := range keys {
		hs[i] = hashKey(k)
	}
	unlock := d.lockStripes(hs)
	defer unlock()
	var idxs []int
	for i, h := range hs {
		if e, ok := d.idx.get(h); ok && e.tier() == from.n {
			idxs = append(idxs, i)
		}
	}
	vals := make([][]byte, len(keys))
	var readErr error
	err := d.readTier(ctx, from, keys, idxs, func(i int, v []byte, err error) {
		if err != nil && !errors.Is(err, ds.ErrNotFound) && readErr == nil {
			readErr = fmt.Errorf("tiered: mover: %w", err)
		}
		vals[i] = v
	})
	if err == nil {
		err = readErr
	}
	if err != nil {
		return 0, 0, err
	}
	var batch []int
	var total int64
	for _, i := range idxs {
		if vals[i] != nil {
			batch = append(batch, i)
			total += int64(len(vals[i]))
		}
	}
	if len(batch) == 0 {
		return 0, 0, nil
	}
	if lim != nil {
		for left := total; left > 0; {
			n := min(left, int64(lim.Burst()))
			if err := lim.WaitN(ctx, int(n)); err != nil {
				return 0, 0, err
			}
			left -= n
		}
	}
	root := ds.NewKey("/")
	if err := writeBatch(ctx, to.Child, func(put func(ds.Key, []byte) error) error {
		for _, i := range batch {
			if err := put(keys[i], vals[i]); err != nil {
				return err
			}
		}
		return nil
	}, nil); err != nil {
		return 0, 0, fmt.Errorf("tiered: mover: write %d blocks to tier %s: %w", len(batch), to.Name, err)
	}
	if err := to.Child.Sync(ctx, root); err != nil {
		return 0, 0, fmt.Errorf("tiered: mover: sync tier %s: %w", to.Name, err)
	}
	for _, i := range batch {
		e, _ := d.idx.get(hs[i])
		d.idx.place(hs[i], to.n, e.state())
		to.tracked.Add(int64(len(vals[i])))
	}
	if err := writeBatch(ctx, from.Child, nil, func(del func(ds.Key) error) error {
		for _, i := range batch {
			if err := del(keys[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return len(batch), total, fmt.Errorf("tiered: mover: delete %d blocks from tier %s: %w", len(batch), from.Name, err)
	}
	from.tracked.Add(-total)
	if err := from.Child.Sync(ctx, root); err != nil {
		return len(batch), total, fmt.Errorf("tiered: mover: sync tier %s: %w", from.Name, err)
	}
	return len(batch), total, nil
}

// writeBatch runs puts or deletes against child in one batch if it is
// Batching, else one call at a time.
func writeBatch(ctx context.Context, child ds.Datastore,
	puts func(put func(ds.Key, []byte) error) error, dels func(del func(ds.Key) error) error) error {
	put := func(k ds.Key, v []byte) error { return child.Put(ctx, k, v) }
	del := func(k ds.Key) error { return child.Delete(ctx, k) }
	var b ds.Batch
	if bc, ok := child.(ds.Batching); ok {
		var err error
		if b, err = bc.Batch(ctx); err != nil {
			return err
		}
		put = func(k ds.Key, v []byte) error { return b.Put(ctx, k, v) }
		del = func(k ds.Key) error { return b.Delete(ctx, k) }
	}
	var err error
	if puts != nil {
		err = puts(put)
	} else {
		err = dels(del)
	}
	if err != nil || b == nil {
		return err
	}
	return b.Commit(ctx)
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
