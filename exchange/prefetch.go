package exchange

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ipfs/boxo/blockstore"
	bsexchange "github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
)

// maxSeen bounds the CIDs one prefetching session remembers; past it the
// session stops prefetching (the walker still fetches what it asks for).
const maxSeen = 1 << 20

// PrefetchStats counts what the prefetcher did.
type PrefetchStats struct {
	// Width is the most prefetch wants in flight per session.
	Width int `json:"width"`
	// Requested counts CIDs asked for ahead of the caller.
	Requested uint64 `json:"requested"`
	// Stored counts prefetched blocks written to the blockstore.
	Stored uint64 `json:"stored"`
	// Failed counts prefetch wants that ended without a block.
	Failed uint64 `json:"failed"`
}

// PrefetchExchange wraps a session exchange (Kubo's Bitswap) so that each
// session, as blocks arrive, asks for the dag-pb links they name before the
// caller does, keeping up to width wants in flight, and stores what arrives
// in the blockstore, where the caller's next Get finds it. The caller walks
// a DAG a few blocks at a time (`pin add` 32, `dag export` 1); Bitswap's
// client sends a session's new wants at most every 20 ms, so the width of
// the walk, not bandwidth, bounds small-block fetches. Prefetching ends with
// the session's context.
type PrefetchExchange struct {
	bsexchange.SessionExchange
	bs    blockstore.Blockstore
	width int

	requested, stored, failed atomic.Uint64
}

var _ bsexchange.SessionExchange = (*PrefetchExchange)(nil)

// NewPrefetchExchange wraps inner; width <= 0 returns inner unchanged.
func NewPrefetchExchange(inner bsexchange.SessionExchange, bs blockstore.Blockstore, width int) bsexchange.SessionExchange {
	if width <= 0 || inner == nil || bs == nil {
		return inner
	}
	return &PrefetchExchange{SessionExchange: inner, bs: bs, width: width}
}

// Stats returns the prefetcher's counters.
func (p *PrefetchExchange) Stats() PrefetchStats {
	return PrefetchStats{Width: p.width, Requested: p.requested.Load(), Stored: p.stored.Load(), Failed: p.failed.Load()}
}

// NewSession returns a prefetching session over the inner exchange's.
func (p *PrefetchExchange) NewSession(ctx context.Context) bsexchange.Fetcher {
	s := &prefetchSession{p: p, inner: p.SessionExchange.NewSession(ctx), ctx: ctx,
		signal: make(chan struct{}, 1), slots: make(chan struct{}, p.width), seen: map[cid.Cid]struct{}{}}
	go s.run()
	return s
}

type prefetchSession struct {
	p      *PrefetchExchange
	inner  bsexchange.Fetcher
	ctx    context.Context
	signal chan struct{} // links were queued
	slots  chan struct{} // one token per prefetch want in flight

	mu      sync.Mutex // guards seen and pending
	seen    map[cid.Cid]struct{}
	pending []cid.Cid
}

// GetBlock fetches c and queues its links.
func (s *prefetchSession) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	s.mark(c)
	b, err := s.inner.GetBlock(ctx, c)
	if err == nil {
		s.links(b)
	}
	return b, err
}

// GetBlocks fetches cs and queues the links of each block as it arrives.
func (s *prefetchSession) GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error) {
	for _, c := range cs {
		s.mark(c)
	}
	in, err := s.inner.GetBlocks(ctx, cs)
	if err != nil {
		return nil, err
	}
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		for b := range in {
			s.links(b)
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// mark records c as asked for; false when it was already.
func (s *prefetchSession) mark(c cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[c]; ok || len(s.seen) >= maxSeen {
		return false
	}
	s.seen[c] = struct{}{}
	return true
}

// links queues the unseen dag-pb links of b, without blocking.
func (s *prefetchSession) links(b blocks.Block) {
	if b.Cid().Type() != cid.DagProtobuf {
		return
	}
	nd, err := merkledag.DecodeProtobuf(b.RawData())
	if err != nil {
		return
	}
	added := false
	for _, l := range nd.Links() {
		if !s.mark(l.Cid) {
			continue
		}
		s.mu.Lock()
		s.pending = append(s.pending, l.Cid)
		s.mu.Unlock()
		added = true
	}
	if added {
		select {
		case s.signal <- struct{}{}:
		default:
		}
	}
}

// take removes up to n queued links, oldest first (a level-by-level walk).
func (s *prefetchSession) take(n int) []cid.Cid {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = min(n, len(s.pending))
	out := append([]cid.Cid(nil), s.pending[:n]...)
	s.pending = s.pending[n:]
	return out
}

// run sends queued links as batches of prefetch wants, up to width in
// flight, until the session's context ends.
func (s *prefetchSession) run() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.signal:
		}
		for {
			// Wait for one free slot, then take as many as are free.
			select {
			case s.slots <- struct{}{}:
			case <-s.ctx.Done():
				return
			}
			free := 1
			for free < cap(s.slots) {
				select {
				case s.slots <- struct{}{}:
					free++
					continue
				default:
				}
				break
			}
			batch := s.take(free)
			for range free - len(batch) {
				<-s.slots
			}
			if len(batch) == 0 {
				break
			}
			s.fetch(batch)
		}
	}
}

// fetch skips CIDs the blockstore holds, asks for the rest, stores what
// arrives and queues its links; each CID's slot is freed when it is done.
func (s *prefetchSession) fetch(batch []cid.Cid) {
	want := batch[:0]
	for _, c := range batch {
		if has, err := s.p.bs.Has(s.ctx, c); err == nil && has {
			<-s.slots
			continue
		}
		want = append(want, c)
	}
	if len(want) == 0 {
		return
	}
	s.p.requested.Add(uint64(len(want)))
	ch, err := s.inner.GetBlocks(s.ctx, want)
	if err != nil {
		s.p.failed.Add(uint64(len(want)))
		for range want {
			<-s.slots
		}
		return
	}
	go s.store(ch, len(want))
}

// putBatch is the most blocks stored with one PutMany.
const putBatch = 64

// store writes arriving blocks with PutMany, in batches of what has
// arrived (a flatfs Put with sync costs a file, a rename and fsyncs; a
// batch shares the directory syncs), announces them to the exchange, queues
// their links and frees their slots. n is the number of CIDs asked for.
func (s *prefetchSession) store(ch <-chan blocks.Block, n int) {
	buf := make([]blocks.Block, 0, putBatch)
	flush := func() {
		if len(buf) == 0 {
			return
		}
		if err := s.p.bs.PutMany(s.ctx, buf); err == nil {
			s.p.stored.Add(uint64(len(buf)))
			// A walker that asked for a block between its arrival and
			// the Put waits on the exchange, not the blockstore: tell
			// the exchange, as blockservice does after its own Puts.
			// Without this, fetches stalled.
			_ = s.p.SessionExchange.NotifyNewBlocks(s.ctx, buf...)
		}
		for _, b := range buf {
			s.links(b)
			<-s.slots
		}
		n -= len(buf)
		buf = buf[:0]
	}
	for b := range ch {
		buf = append(buf, b)
	drain:
		for len(buf) < putBatch {
			select {
			case b2, ok := <-ch:
				if !ok {
					break drain
				}
				buf = append(buf, b2)
			default:
				break drain
			}
		}
		flush()
	}
	flush()
	s.p.failed.Add(uint64(n))
	for ; n > 0; n-- {
		<-s.slots
	}
}
