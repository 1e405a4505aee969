package exchange

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/blockstore"
	bsexchange "github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// maxSeen bounds the CIDs one prefetching session remembers; past it the
// session stops prefetching (the walker still fetches what it asks for).
const maxSeen = 1 << 20

// PrefetchBytes bounds what one session holds ahead of its caller: blocks
// that arrived and were not asked for yet, plus the wants in flight at
// their expected size (see [prefetchSession.guessLocked]). With 256 KiB
// blocks that is 32 wants, with 16 KiB blocks 512 (the width caps it
// first). 16 MiB until the sixth pass: 8 MiB kept most of W2's gain (2,387
// against 2,493 blocks/s) with the fetcher's peak RSS 1.22x stock's instead
// of 1.42x.
const PrefetchBytes = 8 << 20

// PrefetchMaxBlock is the largest block the prefetcher asks for ahead: a
// link naming more (a raw leaf or dag-pb leaf larger than this, or a dag-pb
// node whose subtree is) is left to the caller, unless the caller reads
// such siblings in runs (see prefetchSession.readAhead). Only small blocks gain: the
// caller's own wants bound a walk at about wants / 20 ms (boxo's send
// delay), which `pin add`'s 32 walkers reach at 1,600 blocks/s, the wall
// for 16 KiB blocks (25 MiB/s) but far above what the daemons' CPU moves
// in 256 KiB blocks (400 MiB/s). Prefetching 256 KiB blocks measured slower
// and cost 30 MB of fetcher RSS (W1 0.88x of no prefetch, 1.31x stock's
// RSS); 16 KiB blocks 1.37x faster (W2; docs/bitswap.md, "Sixth pass").
// The slack over 64 KiB covers the few bytes of dag-pb framing around a
// 64 KiB chunk.
const PrefetchMaxBlock = 64<<10 + 1<<10

// PrefetchTotalBytes bounds what all sessions of one node hold and have in
// flight together, so that a gateway with many readers at once does not
// hold [PrefetchBytes] for each: past it, sessions ask for nothing more
// ahead until blocks are claimed.
const PrefetchTotalBytes = 64 << 20

// prefetchStartWidth is the width a session starts with; it grows by one
// for each block that comes through the session, up to the configured
// width. A provider ranks a peer it has sent few blocks as unknown and may
// queue fewer of its wants (ours: UnknownPeerPending 512, down to a
// quarter, 128, under load) than once it has served it (GoodPeerPending,
// after 16 blocks); a want past that gets a DONT_HAVE, and boxo's client
// asks again only after 30 s. 128 is that quarter. It was 32 until the
// fourteenth pass: each doubling of the width costs a round of boxo's
// 20 ms message cadence, and from 32 a W2 fetch took about 100 ms to
// reach full speed (docs/bitswap.md, "Fourteenth pass").
const prefetchStartWidth = 128

// maxBlockGuess caps the size expected of a block whose link gives a larger
// Tsize: a dag-pb link's Tsize covers its whole subtree, and Kubo does not
// make blocks past 1 MiB by default.
const maxBlockGuess = 1 << 20

// PrefetchStats counts what the prefetcher did.
type PrefetchStats struct {
	// Width is the most prefetch wants in flight per session.
	Width int `json:"width"`
	// Requested counts CIDs asked for ahead of the caller.
	Requested uint64 `json:"requested"`
	// Served counts prefetched blocks handed to the caller.
	Served uint64 `json:"served"`
	// Failed counts prefetch wants that ended without a block.
	Failed uint64 `json:"failed"`
	// Unused counts prefetched blocks the caller never asked for before
	// its session ended, still held then (a leaf written ahead is not
	// held: it stays in the blockstore).
	Unused uint64 `json:"unused"`
	// LookedAhead counts the nodes whose links the look-ahead asked for
	// before the caller descended into them.
	LookedAhead uint64 `json:"lookedAhead"`
	// Stored counts prefetched leaves written to the blockstore as they
	// arrived, before the caller asked for them (see storeLeaves).
	Stored uint64 `json:"stored"`
	// Direct counts the wants sent past boxo's session (see [DirectWants]).
	Direct DirectStats `json:"direct"`
	// Bytes is what all sessions hold and have in flight now.
	Bytes int64 `json:"bytes"`
	// MaxBytes is the bound on Bytes ([PrefetchTotalBytes]).
	MaxBytes int64 `json:"maxBytes"`
}

// link is a dag-pb link queued for prefetching, with the Tsize it names (0
// when unknown).
type link struct {
	c    cid.Cid
	size uint64
	from peer.ID // the peer that sent the link's node, when known (see DirectWants)
}

// PrefetchExchange wraps a session exchange (Kubo's Bitswap) so that each
// session, once the caller asks for one of a node's links (it descends into
// the node), asks for the node's other small links before the caller does,
// keeping up to width wants in flight (starting at 32 and growing with each
// block, and at most [PrefetchBytes] ahead, [PrefetchTotalBytes] for the
// node). An inner node that arrives is handed to the caller's GetBlock
// from memory, and the caller (blockservice) stores it and tells the
// exchange, as it does for any fetched block. A leaf is written to the
// blockstore as it arrives, with the others that arrived meanwhile (see
// storeLeaves), and blockservice then finds it there. Either way every
// block is fetched once, written once, and announced once.
//
// The caller walks a DAG a few blocks at a time (`pin add` 32, `dag export`
// 1); Bitswap's client sends a session's new wants at most every 20 ms, so
// the width of the walk, not bandwidth, bounds small-block fetches.
// Prefetching ends with the session's context; blocks it holds then are
// dropped.
type PrefetchExchange struct {
	bsexchange.SessionExchange
	bs    blockstore.Blockstore
	width int
	// direct sends wants to the peer that sent their parent, past boxo's
	// session (nil: every want goes through the inner session).
	direct *DirectWants

	requested, served, failed, unused, lookedAhead, stored atomic.Uint64
	// bytes is what all sessions hold and have in flight (their cached
	// plus flightBytes), bounded by [PrefetchTotalBytes].
	bytes atomic.Int64
	// flight is the prefetch wants all sessions have in flight, bounded by
	// the width: one session may use all of it, several share it. A stock
	// provider sends each 16 KiB block on a stream of its own, and the
	// streams past the connection's muxer backlog are reset and their
	// blocks lost: 8 sessions of 256 each from one stock provider stalled
	// 6 of 8 `pin add`s (docs/bitswap.md, "The stall against stock
	// providers").
	flight atomic.Int64
	// recent holds the nodes the sessions' callers fetched lately, for
	// other sessions that descend into them (see prefetchSession.adopt).
	recent recentNodes
	// sessions numbers the sessions (prefetchSession.id).
	sessions atomic.Uint64
	// parents maps the CID of a node whose small links a session parked
	// (cid.Cid to *prefetchSession) until the node is stored: see
	// NotifyNewBlocks.
	parents sync.Map
}

// NotifyNewBlocks tells the sessions that parked the links of any of blks
// that the node is stored, then passes blks on to the inner exchange.
// Kubo's blockservice calls it right after it stores a fetched block,
// just before the walker that fetched it queues the node's links; so the
// order of these calls is the order in which a walk such as `pin add`'s
// will get to the nodes' links, which is what the look-ahead follows
// (lookAheadLocked).
func (p *PrefetchExchange) NotifyNewBlocks(ctx context.Context, blks ...blocks.Block) error {
	for _, b := range blks {
		if v, ok := p.parents.LoadAndDelete(b.Cid()); ok {
			v.(*prefetchSession).stored(b.Cid())
		}
	}
	return p.SessionExchange.NotifyNewBlocks(ctx, blks...)
}

var _ bsexchange.SessionExchange = (*PrefetchExchange)(nil)

// GetBlock fetches c outside any session, as Kubo resolves a path's root
// before `pin add` walks from it in a session. boxo's client broadcasts
// a want-have for it; the first peer to answer HAVE is asked for the
// block directly at once (see DirectWants.watchHave). A dag-pb node
// fetched so is noted for the sessions that descend into it next (see
// prefetchSession.adopt).
func (p *PrefetchExchange) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	unwatch := p.direct.watchHave(c)
	b, err := p.SessionExchange.GetBlock(ctx, c)
	unwatch()
	if err == nil && p.direct != nil {
		if leaf, small, large := splitLinks(b, p.direct, 16<<10); !leaf {
			p.recent.note(b.Cid(), 0, small, large)
		}
	}
	return b, err
}

// NewPrefetchExchange wraps inner; width <= 0 returns inner unchanged. bs
// is consulted (Has) so that blocks already stored are not asked for, and
// prefetched leaves are written to it; it must be the blockstore the
// caller's blockservice reads.
//
// direct, when set, carries the wants whose parent node's sender is known
// (see [DirectWants]); it must be the tracer of the inner exchange's
// Bitswap, or its wants never end but by timing out.
func NewPrefetchExchange(inner bsexchange.SessionExchange, bs blockstore.Blockstore, width int, direct *DirectWants) bsexchange.SessionExchange {
	if width <= 0 || inner == nil || bs == nil {
		return inner
	}
	return &PrefetchExchange{SessionExchange: inner, bs: bs, width: width, direct: direct}
}

// Stats returns the prefetcher's counters.
func (p *PrefetchExchange) Stats() PrefetchStats {
	return PrefetchStats{Width: p.width, Requested: p.requested.Load(), Served: p.served.Load(),
		Failed: p.failed.Load(), Unused: p.unused.Load(), LookedAhead: p.lookedAhead.Load(), Stored: p.stored.Load(), Direct: p.direct.Stats(), Bytes: p.bytes.Load(), MaxBytes: PrefetchTotalBytes}
}

// NewSession returns a prefetching session over the inner exchange's.
func (p *PrefetchExchange) NewSession(ctx context.Context) bsexchange.Fetcher {
	s := &prefetchSession{p: p, id: p.sessions.Add(1), inner: p.SessionExchange.NewSession(ctx), ctx: ctx,
		signal: make(chan struct{}, 1), room: make(chan struct{}, 1),
		seen: map[cid.Cid]bool{}, ahead: map[cid.Cid]*ahead{}}
	go s.run()
	return s
}

// ahead is one CID asked for ahead of the caller.
type ahead struct {
	c       cid.Cid
	from    peer.ID       // the peer to ask directly (see DirectWants), if known
	look    bool          // asked for by the look-ahead, not claimed yet
	guess   int64         // bytes expected, counted in flightBytes until it arrives
	done    chan struct{} // closed when blk is set or the want ended without it
	blk     blocks.Block
	arrived bool // blk is set (or the want failed)
	taken   bool // the caller claimed it
	// wrote is closed once the leaf's write to the blockstore ended (nil:
	// not written ahead); set before done is closed. An entry nobody
	// claimed is dropped once written (see storeLeaves).
	wrote chan struct{}
}

type prefetchSession struct {
	p      *PrefetchExchange
	id     uint64 // unique among p's sessions
	inner  bsexchange.Fetcher
	ctx    context.Context
	signal chan struct{} // links were queued
	room   chan struct{} // an entry was released

	mu      sync.Mutex         // guards everything below
	seen    map[cid.Cid]bool   // true: the caller asked for it itself
	pending []link             // links not asked for yet, oldest first
	ahead   map[cid.Cid]*ahead // asked for, not claimed by the caller
	live    int                // entries alive: in flight, or arrived and unclaimed
	own     int                // the caller's own wants in flight on the inner session
	flight  int                // entries in flight (not arrived)
	// flightBytes is the expected size of the entries in flight. Each
	// entry is counted at its own link's size: counting every want at
	// the average of the blocks seen so far let the first leaves of a
	// UnixFS DAG (256 KiB) go out at the size of the small nodes above
	// them, 200+ wants and 4x PrefetchBytes at once (docs/bitswap.md,
	// "Fourth pass: W3").
	flightBytes int64
	cached      int64 // bytes of arrived, unclaimed blocks
	nBlocks     int64 // blocks arrived (for the average size)
	nBytes      int64 // their bytes
	closed      bool  // the session ended: blocks arriving now are not held
	// sibs places each large link (left to the caller, see
	// [PrefetchMaxBlock]) among its parent's large links, for the
	// read-ahead of a caller that asks for runs of them (see readAhead).
	sibs map[cid.Cid]sibling
	// parked holds each small link's group until the caller asks for one
	// of the group (see links and claim).
	parked map[cid.Cid]*linkGroup
	// got counts the blocks that came through the session, for the slow
	// start of the width (see budgetLocked).
	got int
	// groups lists the parked groups whose node is stored, in the order
	// the nodes were stored, for the look-ahead (see lookAheadLocked);
	// released groups are dropped from its front as it goes. unstored
	// holds the other parked groups by their node's CID (see
	// PrefetchExchange.NotifyNewBlocks), and descents counts the groups
	// the caller descended into.
	groups   []*linkGroup
	unstored map[cid.Cid]*linkGroup
	descents int
	// lookPending holds the links the look-ahead queued, sent only when
	// pending is empty; lookLive counts its entries alive and not claimed,
	// which the look-ahead keeps within the width (lookRoomLocked).
	lookPending []link
	lookLive    int
	// writeQ holds arrived leaves waiting to be written to the blockstore
	// (see storeLeaves); writing is set while a writer runs.
	writeQ  []*ahead
	writing bool
	// adopted holds the parents whose links adopt took over; adoptMu
	// makes each adoption one step for the caller's concurrent walkers.
	adopted map[cid.Cid]bool
	adoptMu sync.Mutex
}

// linkGroup is one node's small links, parked until the caller asks for
// one of them.
type linkGroup struct {
	links    []link
	released bool // its links were queued
	ahead    bool // queued by the look-ahead, and the caller is not in it yet
}

// sibling is a large link's place among its parent's large links.
type sibling struct {
	list []link // the parent's large links, in order (shared, read-only)
	i    int    // this link's index in list
}

// GetBlock returns c from what was fetched ahead, waiting for it if it is
// in flight, or fetches it through the inner session; its links are queued.
func (s *prefetchSession) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	from := s.adopt(c)
	s.mu.Lock()
	s.forgetSibsLocked(c)
	s.mu.Unlock()
	e, queued := s.claimQueued(c)
	if e != nil {
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		b, err := s.claimed(ctx, e)
		if err != nil {
			return nil, err
		}
		if b != nil {
			s.p.served.Add(1)
			return b, nil
		}
	} else if b := s.writtenAhead(ctx, c, queued); b != nil {
		return b, nil
	}
	if from != "" {
		if b := s.getDirect(ctx, c, from); b != nil {
			s.ownLinks(b)
			return b, nil
		}
	}
	s.ownWants(1)
	b, err := s.inner.GetBlock(ctx, c)
	s.ownWants(-1)
	if err == nil {
		s.ownLinks(b)
	}
	return b, err
}

// ownWants counts the caller's own wants in flight on the inner session;
// they take room from the prefetch width (see budgetLocked). A want that
// ends wakes the sender.
func (s *prefetchSession) ownWants(d int) {
	s.mu.Lock()
	s.own += d
	s.mu.Unlock()
	if d < 0 {
		select {
		case s.room <- struct{}{}:
		default:
		}
	}
}

// countOwn passes in through, counting each block out of the caller's n
// wants in flight, and the rest when in closes.
func (s *prefetchSession) countOwn(ctx context.Context, in <-chan blocks.Block, n int) <-chan blocks.Block {
	s.ownWants(n)
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		defer func() { s.ownWants(-n) }()
		got := func() {
			if n > 0 { // a duplicate block must not count twice
				n--
				s.ownWants(-1)
			}
		}
		for b := range in {
			got()
			select {
			case out <- b:
			case <-ctx.Done():
				// Drain so the inner session's sender never blocks.
				for range in {
					got()
				}
				return
			}
		}
	}()
	return out
}

// GetBlocks returns what of cs was fetched ahead (as it arrives) and
// fetches the rest through the inner session, queueing the links of each
// block.
func (s *prefetchSession) GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error) {
	var claimed []*ahead
	var rest []cid.Cid
	var written []blocks.Block
	adopted := map[cid.Cid]peer.ID{}
	for _, c := range cs {
		if from := s.adopt(c); from != "" {
			adopted[c] = from
		}
		e, queued := s.claimQueued(c)
		switch {
		case e != nil:
			claimed = append(claimed, e)
		default:
			if b := s.writtenAhead(ctx, c, queued); b != nil {
				written = append(written, b)
				continue
			}
			rest = append(rest, c)
		}
	}
	rest, direct := s.ownDirect(rest, adopted)
	var in <-chan blocks.Block
	if len(rest) > 0 {
		var err error
		if in, err = s.inner.GetBlocks(ctx, rest); err != nil {
			return nil, err
		}
		in = s.countOwn(ctx, in, len(rest))
	}
	// The read-ahead of the next run is asked for once the first block of
	// this run is here, not with it: boxo's client puts a peer's wants of
	// one 20 ms round in one message in map order, whatever order they
	// were asked in, so a read-ahead that went out with the caller's run
	// was served mixed into it, and the block the reader needs first came
	// after some of the next run's: over a 100 Mbit link a `cat`'s first
	// byte came after 411 ms against stock's 254, and after 244 ms with
	// the wait (docs/bitswap.md, "Seventh pass"). Asked a round later, the
	// next run queues behind this one at the provider, which is still
	// serving this run when it arrives. Our provider also serves a node's
	// children in link order (order.go); the wait is what helps against a
	// stock one.
	out := make(chan blocks.Block)
	var wg sync.WaitGroup
	var readAhead sync.Once
	send := func(b blocks.Block) bool {
		readAhead.Do(func() { s.readAhead(cs) })
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if len(written) > 0 {
		wg.Go(func() {
			for _, b := range written {
				if !send(b) {
					return
				}
			}
		})
	}
	if in != nil {
		wg.Go(func() {
			for b := range in {
				s.ownLinks(b)
				if !send(b) {
					return
				}
			}
		})
	}
	if len(direct) > 0 {
		wg.Go(func() { s.getDirectRun(ctx, direct, send) })
	}
	if len(claimed) > 0 {
		wg.Go(func() {
			var missed []cid.Cid
			for _, e := range claimed {
				select {
				case <-e.done:
				case <-ctx.Done():
					return
				}
				b, err := s.claimed(ctx, e)
				if err != nil {
					return
				}
				if b == nil {
					missed = append(missed, e.c)
					continue
				}
				s.p.served.Add(1)
				if !send(b) {
					return
				}
			}
			// Wants that ended without a block: ask the inner session.
			s.fallBack(ctx, missed, send)
		})
	}
	go func() { wg.Wait(); close(out) }()
	return out, nil
}

// claim removes c's entry for the caller, or returns nil when c was not
// asked for ahead; then, in the same step, it marks c as the caller's own
// so the prefetcher never asks for it too. A claimed entry that already
// arrived is released here; one still in flight is released when it
// arrives.
func (s *prefetchSession) claim(c cid.Cid) *ahead {
	e, _ := s.claimQueued(c)
	return e
}

// claimQueued is claim, and when c has no entry it also reports whether
// the prefetcher had queued c: its entry is gone because its want ended
// without a block or because it was written ahead (storeLeaves), and the
// caller may find it in the blockstore (writtenAhead).
func (s *prefetchSession) claimQueued(c cid.Cid) (*ahead, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ahead[c]
	if !ok {
		own, seen := s.seen[c]
		if seen || len(s.seen) < maxSeen {
			s.seen[c] = true
		}
		s.releaseGroupLocked(c)
		return nil, seen && !own
	}
	delete(s.ahead, c)
	s.seen[c] = true // never asked for again, even if queued twice
	delete(s.parked, c)
	if e.look {
		e.look = false
		s.lookLive--
	}
	e.taken = true
	if e.arrived {
		if e.blk != nil {
			s.addBytesLocked(-int64(len(e.blk.RawData())), 0)
		}
		s.releaseLocked()
	}
	return e, false
}

// writtenAhead returns c from the blockstore when the prefetcher had
// queued it (queued, from claimQueued) and it is stored: the caller's
// blockservice looked there before it asked the session, and a leaf
// written ahead in between would otherwise be asked of the network again.
func (s *prefetchSession) writtenAhead(ctx context.Context, c cid.Cid, queued bool) blocks.Block {
	if !queued {
		return nil
	}
	b, err := s.p.bs.Get(ctx, c)
	if err != nil {
		return nil
	}
	s.p.served.Add(1)
	return b
}

// claimed returns the block of e, an entry the caller claimed whose want
// ended (nil: it ended without a block, and the caller asks the network
// itself). For a leaf being written ahead (see storeLeaves) it waits for
// the write to end first, so that the caller's own store finds the block
// there and writes nothing.
func (s *prefetchSession) claimed(ctx context.Context, e *ahead) (blocks.Block, error) {
	if e.wrote != nil {
		select {
		case <-e.wrote:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return e.blk, nil
}

// releaseLocked frees one entry's place and wakes the sender.
func (s *prefetchSession) releaseLocked() {
	s.live--
	select {
	case s.room <- struct{}{}:
	default:
	}
}

// arrive records b as e's block (nil: the want ended without a block,
// counted as failed when failed is set).
func (s *prefetchSession) arrive(e *ahead, b blocks.Block, failed bool) {
	s.mu.Lock()
	if e.arrived {
		s.mu.Unlock()
		return
	}
	e.blk, e.arrived = b, true
	s.flight--
	s.p.flight.Add(-1)
	s.addBytesLocked(0, -e.guess)
	if b != nil {
		s.nBlocks++
		s.nBytes += int64(len(b.RawData()))
	} else if failed {
		s.p.failed.Add(1)
	}
	switch {
	case e.taken:
		s.releaseLocked()
	case b == nil:
		if s.ahead[e.c] == e {
			delete(s.ahead, e.c)
		}
		if e.look {
			e.look = false
			s.lookLive--
		}
		s.releaseLocked()
	case s.closed: // the session ended (drop): nobody will claim it
		s.p.unused.Add(1)
	default:
		s.addBytesLocked(int64(len(b.RawData())), 0)
		// A want less in flight is room under the width (budgetLocked).
		select {
		case s.room <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	close(e.done)
}

// mark records c as seen; false when it was already.
func (s *prefetchSession) mark(c cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[c]; ok || len(s.seen) >= maxSeen {
		return false
	}
	s.seen[c] = false
	return true
}

// readAheadRuns is how many runs a sequential reader's read-ahead keeps
// asked for past the run it is reading. One run held W10 (`cat` of 256 KiB
// leaves, runs of 10) at 115-116 MiB/s in every round: a run of 2.5 MiB per
// 20 ms send round of boxo's client. Two reached 168-170 MiB/s, three and
// four 163-170 (2 rounds each, docs/bitswap.md, "Eleventh pass"); two hold
// the least, 20 x 256 KiB, within [PrefetchBytes].
const readAheadRuns = 2

// readAhead queues, for a caller that asks for several large sibling links
// at once, the [readAheadRuns] runs of as many siblings that follow them:
// the runs the caller will ask for next. That caller is a sequential
// reader (boxo's DAG reader, under `cat` and the gateway: go-ipld-format's
// navipld asks for 10 children at a time, when the previous 10 are half
// read), whose few
// blocks asked ahead and Bitswap's 20 ms per-peer send cadence bound it at
// about 10 blocks per 30 ms (docs/bitswap.md, "W10: what bounds a
// streaming read"); with the next runs in flight too it has three times as
// many. Each later run the caller asks for adds the one run past what is
// already asked for, since what was asked for before is marked.
// Walkers that ask one block at a time (`pin add`, `dag export`) never
// trigger it, so their large blocks stay theirs alone. The budget
// ([PrefetchBytes], the width) still bounds what goes out.
func (s *prefetchSession) readAhead(cs []cid.Cid) {
	if len(cs) < 2 {
		s.mu.Lock()
		s.forgetSibsLocked(cs...)
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	sib, ok := s.sibs[cs[len(cs)-1]]
	s.forgetSibsLocked(cs...)
	s.mu.Unlock()
	if !ok {
		return
	}
	end := min(sib.i+1+readAheadRuns*len(cs), len(sib.list))
	added := false
	for _, l := range sib.list[sib.i+1 : end] {
		if !s.mark(l.c) {
			continue
		}
		s.mu.Lock()
		s.pending = append(s.pending, l)
		s.mu.Unlock()
		added = true
	}
	if added {
		s.wake()
	}
}

// forgetSibsLocked drops the places of links the caller asked for: only
// what it has yet to ask for can start a read-ahead, and so sibs holds the
// large links not read yet rather than every one the session saw.
func (s *prefetchSession) forgetSibsLocked(cs ...cid.Cid) {
	for _, c := range cs {
		delete(s.sibs, c)
	}
}

// links queues the unseen dag-pb links of b that name small blocks (see
// [PrefetchMaxBlock]), without blocking, and places the large ones among
// their siblings for readAhead. It reports whether b is a leaf: a raw
// block, or a dag-pb node without links.
func (s *prefetchSession) links(b blocks.Block) (leaf bool) {
	leaf, small, large := s.parse(b)
	s.park(b.Cid(), small, large, false)
	return leaf
}

// ownLinks is links for a block the caller fetched with its own want, and
// notes the node for other sessions of this node (see adopt).
func (s *prefetchSession) ownLinks(b blocks.Block) {
	leaf, small, large := s.parse(b)
	s.park(b.Cid(), small, large, false)
	if !leaf {
		s.p.recent.note(b.Cid(), s.id, small, large)
	}
}

// parse splits the links of b with splitLinks, taking a link of unknown
// size as the session's average block. Every block counts for the slow
// start of the width.
func (s *prefetchSession) parse(b blocks.Block) (leaf bool, small, large []link) {
	// Every block counts for the slow start, raw leaves too: counting only
	// the dag-pb nodes held a file of small raw leaves at 32 + its few
	// inner nodes (81 wants for 128 MiB of 16 KiB leaves, whatever the
	// configured width), and W2's walk then waited for its blocks
	// (docs/bitswap.md, "Ninth pass").
	s.mu.Lock()
	s.got++
	avg := s.avgLocked()
	s.mu.Unlock()
	return splitLinks(b, s.p.direct, avg)
}

// splitLinks splits the links of b, a dag-pb node, into those that name
// small blocks (see [PrefetchMaxBlock]; a link of unknown size is taken
// as avg bytes) and the others, each with the peer that sent b when
// direct knows it. leaf reports whether b is a leaf: a raw block, or a
// dag-pb node without links.
func splitLinks(b blocks.Block, direct *DirectWants, avg int64) (leaf bool, small, large []link) {
	if b.Cid().Type() != cid.DagProtobuf {
		return b.Cid().Type() == cid.Raw, nil, nil
	}
	nd, err := merkledag.DecodeProtobuf(b.RawData())
	if err != nil {
		return false, nil, nil
	}
	if len(nd.Links()) == 0 {
		return true, nil, nil
	}
	from, _ := direct.sender(b.Cid())
	for _, l := range nd.Links() {
		size := l.Size
		if size == 0 {
			size = uint64(avg)
		}
		if size > PrefetchMaxBlock {
			large = append(large, link{c: l.Cid, size: l.Size, from: from})
			continue
		}
		small = append(small, link{c: l.Cid, size: l.Size, from: from})
	}
	return false, small, large
}

// park parks the small links of the node parent as one group until the
// caller asks for one of them, and places the large ones among their
// siblings for readAhead. A node not stored yet (stored false) waits in
// unstored for the look-ahead (see stored).
func (s *prefetchSession) park(parent cid.Cid, small, large []link, stored bool) *linkGroup {
	var g *linkGroup
	s.mu.Lock()
	if len(small) > 0 {
		if s.parked == nil {
			s.parked = map[cid.Cid]*linkGroup{}
		}
		g = &linkGroup{links: small}
		if s.unstored == nil {
			s.unstored = map[cid.Cid]*linkGroup{}
		}
		if !stored && len(s.unstored) < maxSeen && !s.closed {
			s.unstored[parent] = g
			s.p.parents.Store(parent, s)
		}
		for _, l := range small {
			if len(s.parked) >= maxSeen {
				break
			}
			if _, ok := s.seen[l.c]; !ok {
				s.parked[l.c] = g
			}
		}
	}
	s.mu.Unlock()
	if len(large) > 1 {
		s.mu.Lock()
		if s.sibs == nil {
			s.sibs = map[cid.Cid]sibling{}
		}
		for i, l := range large {
			if len(s.sibs) >= maxSeen {
				break
			}
			s.sibs[l.c] = sibling{list: large, i: i}
		}
		s.mu.Unlock()
	}
	return g
}

// adopt takes over the node that links to c when it was fetched moments
// ago outside this session (see recentNodes) and this session has not
// seen c: the caller descends into a node it found in the blockstore.
// That is how `pin add` starts: Kubo resolves the path's root with a
// fetch of its own, and the walk's session then reads the root from the
// blockstore, so the walk's first wants (the root's links) went to boxo's
// session, which knows no peer yet: a want-have broadcast, then a
// want-block, each waiting out boxo's 20 ms per-peer send cadence; in a
// W2 fetch, the first level arrived 40 ms after the root, with both
// cores idle (docs/bitswap.md, "Seventeenth pass").
//
// The node's small links are parked as if the session had fetched the
// node, and c's group released: c and its siblings go out at once as
// prefetch wants, direct to the node's sender. adopt returns that sender
// when c is a small link the budget did not let out yet, for the caller
// to ask it of directly (getDirect). A large link (an inner node over a
// subtree, a big leaf) stays the caller's own want on boxo's session:
// sent direct,
// boxo's session never saw the first level's blocks, started the leaves
// knowing no peer, and W3's top provider (of three) sent 88-90% of the
// file against 71% before (docs/bitswap.md, "Seventeenth pass").
func (s *prefetchSession) adopt(c cid.Cid) peer.ID {
	n, ok := s.p.recent.lookup(c, s.id)
	if !ok {
		return ""
	}
	s.adoptMu.Lock()
	defer s.adoptMu.Unlock()
	s.mu.Lock()
	_, seen := s.seen[c]
	_, parked := s.parked[c]
	if seen || parked || s.ahead[c] != nil || s.closed {
		s.mu.Unlock()
		return ""
	}
	first := !s.adopted[n.c]
	if first {
		if s.adopted == nil {
			s.adopted = map[cid.Cid]bool{}
		}
		s.adopted[n.c] = true
	}
	s.mu.Unlock()
	if first {
		s.park(n.c, n.small, n.large, true)
		s.mu.Lock()
		s.releaseGroupLocked(c)
		s.mu.Unlock()
		if batch := s.take(); len(batch) > 0 {
			s.fetch(batch)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ahead[c] != nil || !slices.ContainsFunc(n.small, func(l link) bool { return l.c == c }) {
		return ""
	}
	return n.from
}

// ownDirect splits cs, wants a reader asks for in one run (GetBlocks),
// into those to ask of a peer directly and the rest: a link whose
// parent's sender is known (a large link placed among its siblings, see
// readAhead, or one adopt returned a sender for in from). boxo's session
// would send them on the peer's next 20 ms round, one round per level of
// the DAG before a `cat`'s first byte (docs/bitswap.md, "Seventeenth
// pass"). Walkers that ask one block at a time (GetBlock: `pin add`'s)
// keep their wants on boxo's session: sent direct, they went nearly one
// want per message and measured no faster ("Sixteenth pass").
func (s *prefetchSession) ownDirect(cs []cid.Cid, from map[cid.Cid]peer.ID) (rest []cid.Cid, direct []*directWant) {
	if s.p.direct == nil || len(cs) == 0 {
		return cs, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		p := from[c]
		size := s.avgLocked()
		if sib, ok := s.sibs[c]; ok {
			if p == "" {
				p = sib.list[sib.i].from
			}
			size = s.guessLocked(sib.list[sib.i])
		}
		if p == "" {
			rest = append(rest, c)
			continue
		}
		direct = append(direct, &directWant{c: c, p: p, owner: s, size: size})
	}
	return rest, direct
}

// getDirectRun sends ws, the caller's own wants, directly, passes each
// block that answers one to send (queueing its links), and asks boxo's
// session for those that end without a block.
func (s *prefetchSession) getDirectRun(ctx context.Context, ws []*directWant, send func(blocks.Block) bool) {
	n := len(ws)
	got := make(chan blocks.Block, n)
	missed := make(chan cid.Cid, n)
	for _, w := range ws {
		c := w.c
		w.deliver = func(b blocks.Block) {
			if b == nil {
				missed <- c
				return
			}
			got <- b
		}
	}
	s.ownWants(n)
	left := n
	defer func() { s.ownWants(-left) }()
	// What the peer's window did not take is asked of boxo's session at
	// once, beside the direct wants.
	var spill sync.WaitGroup
	defer spill.Wait()
	if spilled := s.p.direct.want(ws); len(spilled) > 0 {
		left -= len(spilled)
		s.ownWants(-len(spilled))
		cs := make([]cid.Cid, len(spilled))
		for i, w := range spilled {
			cs[i] = w.c
		}
		spill.Go(func() { s.fallBack(ctx, cs, send) })
	}
	var again []cid.Cid
	for left > 0 {
		select {
		case b := <-got:
			left--
			s.ownWants(-1)
			s.ownLinks(b)
			if !send(b) {
				return
			}
		case c := <-missed:
			left--
			s.ownWants(-1)
			again = append(again, c)
		case <-ctx.Done():
			return
		}
	}
	s.fallBack(ctx, again, send)
}

// fallBack asks boxo's session for the caller's wants that ended without
// their block on the direct path (a DONT_HAVE, a timeout, a failed send),
// and hands each block to send as it comes, until send returns false.
func (s *prefetchSession) fallBack(ctx context.Context, cs []cid.Cid, send func(blocks.Block) bool) {
	if len(cs) == 0 {
		return
	}
	ch, err := s.inner.GetBlocks(ctx, cs)
	if err != nil {
		return
	}
	for b := range s.countOwn(ctx, ch, len(cs)) {
		s.ownLinks(b)
		if !send(b) {
			return
		}
	}
}

// getDirect asks from for c directly (see DirectWants), for the caller:
// it returns nil when the want ended without the block (a DONT_HAVE, no
// answer within DirectTimeout, a failed send) or ctx ended, and the
// caller then asks boxo's session.
func (s *prefetchSession) getDirect(ctx context.Context, c cid.Cid, from peer.ID) blocks.Block {
	got := make(chan blocks.Block, 1)
	s.ownWants(1)
	defer s.ownWants(-1)
	s.p.direct.want([]*directWant{{c: c, p: from, owner: s, deliver: func(b blocks.Block) { got <- b }}})
	select {
	case b := <-got:
		return b
	case <-ctx.Done():
		return nil
	}
}

// releaseGroupLocked queues the group of c's siblings once the caller asks for
// c: a caller that descends into a node gets its small links asked for
// ahead, one that only looks at the node (a directory listing, `ls`) gets
// nothing fetched for it.
func (s *prefetchSession) releaseGroupLocked(c cid.Cid) {
	g, ok := s.parked[c]
	if !ok {
		return
	}
	delete(s.parked, c)
	if g.released {
		if g.ahead {
			// The caller got to a group the look-ahead queued: what of it
			// is not asked for yet goes before other look-ahead work.
			g.ahead = false
			s.promoteLocked(g)
		}
		return
	}
	s.descents++
	s.queueGroupLocked(g, false)
}

// stored makes the group parked for c's links eligible for the
// look-ahead, after those stored before it.
func (s *prefetchSession) stored(c cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.unstored[c]
	if !ok {
		return
	}
	delete(s.unstored, c)
	if g.released || s.closed {
		return
	}
	s.groups = append(s.groups, g)
	if s.descents >= 2 {
		s.wake()
	}
}

// lookAheadLocked queues the parked group whose node was stored first of
// those the caller has not descended into, once it has descended into
// two: a caller that walks a whole DAG (`pin add`, `dag export`, a `cat`
// of a file) then finds a node's small links in flight or arrived when it
// gets to them. Without it a `pin add` of 16 KiB leaves had one node's
// leaves (174) in flight at a time, all of them or none, and the pipe
// drained at every node (docs/bitswap.md, "Tenth pass"). A caller that reads one part of a file
// or lists a directory descends into one group or none, and gets nothing
// asked for it.
//
// The order is that of the nodes' stores, not of their arrival: `pin
// add`'s walkers store each node before they queue its links, and the
// stores of sibling nodes that arrive in one message end in any order
// (group commits), so in arrival order the look-ahead asked for other
// nodes' leaves than the walkers went to next, and the walkers waited on
// their own wants. The walkers can still overtake it, so what the
// look-ahead holds counts against the width (lookRoomLocked) and its links
// go out only when the caller's own groups are all out: a group it passed
// over goes first when the caller gets to it. It reports whether it queued
// anything.
func (s *prefetchSession) lookAheadLocked() bool {
	if s.descents < 2 {
		return false
	}
	for len(s.groups) > 0 {
		g := s.groups[0]
		s.groups[0] = nil
		s.groups = s.groups[1:]
		if !g.released && s.queueGroupLocked(g, true) {
			s.p.lookedAhead.Add(1)
			return true
		}
	}
	return false
}

// lookRoomLocked is how many more entries the look-ahead may have alive:
// the width (as the slow start has it), less those alive and not claimed.
// Unlike the caller's entries, the look-ahead's count against the width
// while they wait for the caller too, not only while in flight: they may
// wait for a while if the caller went elsewhere first. Half the width
// measured about 10% slower on W2's shape (docs/bitswap.md, "Tenth pass").
func (s *prefetchSession) lookRoomLocked() int {
	limit := min(s.p.width, prefetchStartWidth+s.got)
	limit = min(limit, int(PrefetchBytes/s.avgLocked()))
	return limit - s.lookLive
}

// queueGroupLocked marks g released and queues its links that nobody asked
// for yet, on lookPending for the look-ahead (look) and on pending for the
// caller; it reports whether it queued any. The look-ahead leaves the
// links parked, so that the caller's first claim of one promotes the rest
// (promoteLocked).
func (s *prefetchSession) queueGroupLocked(g *linkGroup, look bool) bool {
	g.released, g.ahead = true, look
	added := false
	for _, l := range g.links {
		if !look {
			delete(s.parked, l.c)
		}
		if _, ok := s.seen[l.c]; ok || len(s.seen) >= maxSeen {
			continue
		}
		s.seen[l.c] = false
		if look {
			s.lookPending = append(s.lookPending, l)
		} else {
			s.pending = append(s.pending, l)
		}
		added = true
	}
	if added {
		s.wake()
	}
	return added
}

// wake tells run that links were queued.
func (s *prefetchSession) wake() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// promoteLocked queues on pending the links of g, a group the look-ahead
// queued, that are neither asked for nor claimed; they stay on
// lookPending too, and take skips them there once they are asked for.
func (s *prefetchSession) promoteLocked(g *linkGroup) {
	added := false
	for _, l := range g.links {
		delete(s.parked, l.c)
		if s.seen[l.c] || s.ahead[l.c] != nil {
			continue
		}
		s.pending = append(s.pending, l)
		added = true
	}
	if added {
		s.wake()
	}
}

// addBytesLocked moves the session's held (cached) and in-flight bytes by
// the given amounts, and the node's total with them.
func (s *prefetchSession) addBytesLocked(cached, flight int64) {
	s.cached += cached
	s.flightBytes += flight
	s.p.bytes.Add(cached + flight)
}

// budgetLocked is how many more wants may go out now: the width less the
// prefetch wants and the caller's own wants in flight, and the byte budget
// less what is held and in flight.
//
// Blocks that arrived and wait for the caller count against the bytes
// only, not the width: the caller (`pin add`'s walkers, depth first) is
// often in another part of the DAG than the prefetcher (level by level),
// and when held blocks took up the width the pipe shrank back to the
// caller's own 32 wants until it caught up. Counting only wants in flight
// took W2 from 2,070 to 2,963 blocks/s (docs/bitswap.md, "Sixth pass");
// what is held stays under [PrefetchBytes].
//
// The width bounds the whole session's wants in flight, the caller's
// included, because that is what the provider sees: a stock provider drops
// wants past 1,024 queued for one peer (boxo's
// MaxQueuedWantlistEntriesPerPeer) and ours answers DONT_HAVE past its
// per-peer pending limit (UnknownPeerPending 512, lower under load), and
// boxo's client keeps a want-block that got a DONT_HAVE (or no answer)
// registered with that peer, so it is asked again only by the message
// queue's 30 s rebroadcast (docs/bitswap.md, Prefetching).
//
// The byte count here uses the average block size as the guess; take
// checks each link against the bytes left at its own guess.
func (s *prefetchSession) budgetLocked() int {
	n := min(s.p.width, prefetchStartWidth+s.got) - s.flight - s.own
	// The node's prefetch wants in flight, all sessions together, stay
	// within the width too (PrefetchExchange.flight).
	n = min(n, s.p.width-int(s.p.flight.Load()))
	avg := s.avgLocked()
	if byBytes := int((PrefetchBytes - s.cached - s.flightBytes) / avg); byBytes < n {
		n = byBytes
	}
	return max(n, 0)
}

// avgLocked is the average size of the blocks that arrived (16 KiB before
// any, at least 1 KiB).
func (s *prefetchSession) avgLocked() int64 {
	if s.nBlocks > 0 {
		return max(s.nBytes/s.nBlocks, 1<<10)
	}
	return 16 << 10
}

// guessLocked is the size expected of l's block: the link's Tsize (exact
// for a raw leaf, the whole subtree for a dag-pb node, so capped at
// maxBlockGuess), or the average when the link gives none.
func (s *prefetchSession) guessLocked(l link) int64 {
	if l.size == 0 {
		return s.avgLocked()
	}
	return int64(min(l.size, maxBlockGuess))
}

// take removes up to the budget of queued links, oldest first (a
// level-by-level walk), skipping those the caller asked for itself, and
// makes each an entry, live and in flight, in the same step.
func (s *prefetchSession) take() []*ahead {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.budgetLocked()
	lookRoom := s.lookRoomLocked()
	var out []*ahead
	for len(out) < n {
		var l link
		look := false
		switch {
		case len(s.pending) > 0:
			l = s.pending[0]
		case lookRoom > 0 && (len(s.lookPending) > 0 || s.lookAheadLocked()):
			l, look = s.lookPending[0], true
		}
		if !l.c.Defined() {
			break
		}
		pop := func() {
			if look {
				s.lookPending = s.lookPending[1:]
			} else {
				s.pending = s.pending[1:]
			}
		}
		// Skip what the caller asked for itself, and what is asked for
		// already (a promoted link is on both queues).
		if s.seen[l.c] || s.ahead[l.c] != nil {
			pop()
			continue
		}
		g := s.guessLocked(l)
		if s.cached+s.flightBytes+g > PrefetchBytes || s.p.bytes.Load()+g > PrefetchTotalBytes {
			break // wait for room; l stays first in line
		}
		pop()
		e := &ahead{c: l.c, from: l.from, look: look, guess: g, done: make(chan struct{})}
		if look {
			s.lookLive++
			lookRoom--
		}
		s.ahead[l.c] = e
		s.addBytesLocked(0, g)
		out = append(out, e)
	}
	s.live += len(out)
	s.flight += len(out)
	s.p.flight.Add(int64(len(out)))
	return out
}

// run sends queued links as batches of prefetch wants within the budget,
// until the session's context ends; then it drops what it holds.
func (s *prefetchSession) run() {
	defer s.drop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.signal:
		}
		for {
			batch := s.take()
			if len(batch) > 0 {
				s.fetch(batch)
				continue
			}
			s.mu.Lock()
			// Parked groups the look-ahead may release are more work too:
			// wait for room for them (take drops the groups passed).
			more := len(s.pending) > 0 || len(s.lookPending) > 0 || (s.descents >= 2 && len(s.groups) > 0)
			s.mu.Unlock()
			if !more {
				break
			}
			// Over budget: wait for the caller to claim something. The
			// timer covers a claim that raced the check above.
			select {
			case <-s.ctx.Done():
				return
			case <-s.room:
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// drop counts the blocks held when the session ends as unused.
func (s *prefetchSession) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, e := range s.ahead {
		if e.arrived && e.blk != nil {
			s.p.unused.Add(1)
		}
		delete(s.ahead, c)
	}
	s.addBytesLocked(-s.cached, 0)
	s.closed = true
	for c := range s.unstored {
		s.p.parents.CompareAndDelete(c, s)
	}
	s.unstored, s.groups = nil, nil
	s.p.direct.dropOwner(s)
}

// fetch asks the inner session for the batch, less the CIDs the
// blockstore holds (those entries end without a block); each block
// arrives into its entry.
func (s *prefetchSession) fetch(batch []*ahead) {
	entries := make(map[cid.Cid]*ahead, len(batch))
	want := make([]cid.Cid, 0, len(batch))
	var direct []*directWant
	var directOf map[*directWant]*ahead
	for _, e := range batch {
		if has, err := s.p.bs.Has(s.ctx, e.c); err == nil && has {
			s.arrive(e, nil, false)
			continue
		}
		if e.from != "" && s.p.direct != nil {
			w := &directWant{c: e.c, p: e.from, owner: s, deliver: s.deliverer(e), size: e.guess}
			direct = append(direct, w)
			if directOf == nil {
				directOf = map[*directWant]*ahead{}
			}
			directOf[w] = e
			continue
		}
		entries[e.c] = e
		want = append(want, e.c)
	}
	s.p.requested.Add(uint64(len(want) + len(direct)))
	if len(direct) > 0 {
		// What the peer's window did not take goes to the inner session.
		for _, w := range s.p.direct.want(direct) {
			entries[w.c] = directOf[w]
			want = append(want, w.c)
		}
	}
	if len(want) == 0 {
		return
	}
	ch, err := s.inner.GetBlocks(s.ctx, want)
	if err != nil {
		for _, e := range entries {
			s.arrive(e, nil, true)
		}
		return
	}
	go func() {
		for b := range ch {
			e, ok := entries[b.Cid()]
			if !ok {
				continue
			}
			delete(entries, b.Cid())
			s.received(e, b)
		}
		for _, e := range entries {
			s.arrive(e, nil, true)
		}
	}()
}

// received records b as e's block, queueing its links, and writes it
// ahead if it is a leaf.
func (s *prefetchSession) received(e *ahead, b blocks.Block) {
	leaf := s.links(b)
	if leaf {
		e.wrote = make(chan struct{})
	}
	s.arrive(e, b, false)
	if leaf {
		s.queueWrite(e)
	}
}

// deliverer returns the function a direct want of e ends through: with
// its block, or without one (nil: a DONT_HAVE, a timeout or a failed
// send), after which the caller asks the inner session itself.
func (s *prefetchSession) deliverer(e *ahead) func(blocks.Block) {
	return func(b blocks.Block) {
		if b == nil {
			s.arrive(e, nil, true)
			return
		}
		s.received(e, b)
	}
}

// queueWrite queues e, an arrived leaf, for storeLeaves, starting a writer
// if none runs. After the session ended nothing is written.
func (s *prefetchSession) queueWrite(e *ahead) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(e.wrote)
		return
	}
	s.writeQ = append(s.writeQ, e)
	start := !s.writing
	s.writing = true
	s.mu.Unlock()
	if start {
		go s.storeLeaves()
	}
}

// storeLeaves writes the queued leaves to the blockstore, all that queued
// up since the last write in one PutMany, and tells the exchange, as
// blockservice does for a block it fetched. A leaf nobody claimed yet is
// then let go of: its entry is dropped, its bytes and its place under the
// width are free, and the caller reads it from the blockstore
// (blockservice looks there first; writtenAhead covers a caller that
// looked just before the write ended).
//
// Without it `pin add`'s walkers each stored their own leaf (blockservice
// puts what the exchange returns) and waited for its group commit's fsync:
// 4,000-5,000 groups of about two records for 8,200 blocks of 16 KiB, and
// with the log's fsync off for the measurement the walk took two thirds
// of the time (docs/bitswap.md, "Tenth pass"). Written as they arrive,
// the leaves of one message share one commit, before the walkers get to
// them. Inner nodes are left to the caller: the look-ahead follows the
// order in which the walkers store them (stored).
//
// A leaf written ahead is acknowledged to nobody, but its write waits for
// the store's commit as any Put does, sync included, and that commit is
// what makes a pinned leaf durable: Kubo's pinner does not sync /blocks
// before it writes the pin. Its flushDagService looks for a DAG service
// with `Sync() error`, and Kubo hands it one with `Sync(context.Context)
// error`, so it does nothing (Kubo 0.43.1, boxo 0.43.0; a daemon counting
// its /blocks syncs saw none during a `pin add`, and one at the end of an
// `ipfs add`). So these writes must not skip the store's sync.
func (s *prefetchSession) storeLeaves() {
	for {
		s.mu.Lock()
		batch := s.writeQ
		s.writeQ = nil
		if len(batch) == 0 || s.closed {
			// Leaves queued when the session ended are dropped with it
			// (drop counts them unused), not written.
			s.writing = false
			s.mu.Unlock()
			for _, e := range batch {
				close(e.wrote)
			}
			return
		}
		s.mu.Unlock()
		blks := make([]blocks.Block, len(batch))
		for i, e := range batch {
			blks[i] = e.blk
		}
		err := s.p.bs.PutMany(s.ctx, blks)
		if err == nil {
			s.p.stored.Add(uint64(len(blks)))
			// Straight to the inner exchange: a leaf parks no links, so
			// PrefetchExchange.NotifyNewBlocks would find no session to tell.
			_ = s.p.SessionExchange.NotifyNewBlocks(s.ctx, blks...)
		}
		s.mu.Lock()
		for _, e := range batch {
			if err == nil && !e.taken && !s.closed {
				delete(s.ahead, e.c)
				s.addBytesLocked(-int64(len(e.blk.RawData())), 0)
				if e.look {
					e.look = false
					s.lookLive--
				}
				s.releaseLocked()
			}
			close(e.wrote)
		}
		s.mu.Unlock()
	}
}
