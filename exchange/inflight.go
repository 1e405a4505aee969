package exchange

import (
	"sync"
	"sync/atomic"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	cid "github.com/ipfs/go-cid"
)

// In flight: why the comparator needs an estimate of a peer's outstanding
// bytes, and where it comes from.
//
// boxo's engine asks its peer task queue (go-peertaskqueue) for work with
// PopTasks, which looks only at the peer at the top of the heap. When that
// peer has MaxOutstandingBytesPerPeer of blocks popped and not yet sent
// (its "active work"), PopTasks returns nothing, even if other peers have
// tasks: the engine worker then waits for the next work signal or the
// engine's 100 ms tick. boxo's own peer comparator puts such a peer below
// the others (fewer active tasks first); a custom TaskComparator replaces
// it and sees only each peer's top task, never its active work. With our
// pass order, a peer whose link is slow reaches the cap and stays at the
// top (its pass does not move while nothing is popped for it), so every
// other peer waits for its sends: the whole server runs at the slowest
// peer's pace. Hence the profile used to set 4 MiB per peer, where a 256
// KiB-block fetcher has 16 messages in flight and holds a buffer for each.
//
// No hook tells the policy when a send ends (the engine's TasksDone is
// internal), so the estimate uses what a boxo client does on receipt: it
// sends a CANCEL for each block it received, to every peer it had asked,
// the sender included (session.handleReceive -> CancelSessionWants ->
// peerWantManager.sendCancels). A block we sent is in flight from the
// tracer's MessageSent (just after the engine popped it) until the peer's
// cancel for it arrives. That overstates the engine's active work by the
// peer's receive-and-ack time (its message queue sends at most every
// 20 ms), which errs on the side of moving the peer down; it understates
// it between the pop and MessageSent (the engine's blockstore read), which
// costs at most one empty pop (the queue re-sorts the peer then).
//
// Guards, because the cancel is a client's habit and not a protocol rule:
//   - only a peer that has acknowledged at least one block this way is
//     ever moved down;
//   - a block not acknowledged within inflightTTL stops counting; the
//     count is pruned when the peer itself is active (we send to it, or
//     it sends us anything), never by the clock alone;
//   - at most inflightMax blocks are tracked per peer.
//
// Why not by the clock alone: a peer that stopped reading (a stopped
// process, a dead link, or a client that asks and then never reads) keeps
// its messages in flight until boxo's send times out. Were its estimate
// to lapse, it would come back to the top of the queue by its low pass
// and hold every other peer again, which is the failure being fixed. A
// silent peer therefore stays below the others until it talks again; the
// cost falls on a client that acknowledged blocks before and then stops
// while still reading, which is then served when no other peer can be, or
// when it next sends us anything (boxo clients re-send their wantlist
// every 30 s).

// inflightTTL is how long a block sent and not acknowledged counts as in
// flight. Long, because a slow link may take seconds to drain a peer's
// outstanding bytes, and an expired entry understates them (the hold
// again); an entry that is never acknowledged (a block the client got
// from another peer first and cancelled before we sent it) overstates
// them only that long.
const inflightTTL = 10 * time.Second

// inflightMax bounds the blocks tracked per peer.
const inflightMax = 4096

type flightEntry struct {
	c  cid.Cid
	n  int64
	at int64 // unix nanos
}

// flight is one peer's blocks sent and not yet acknowledged.
type flight struct {
	mu    sync.Mutex
	sent  map[cid.Cid]flightEntry
	order []flightEntry // send order, may hold entries already acknowledged

	bytes atomic.Int64 // sum of n over sent
	acker atomic.Bool  // the peer has acknowledged a block with a cancel
}

// expire drops entries older than the TTL, and the oldest past inflightMax.
// Called with mu held.
func (f *flight) expire(now int64) {
	i := 0
	for ; i < len(f.order); i++ {
		e := f.order[i]
		if now-e.at < int64(inflightTTL) && len(f.order)-i <= inflightMax {
			break
		}
		if cur, ok := f.sent[e.c]; ok && cur.at == e.at {
			delete(f.sent, e.c)
			f.bytes.Add(-e.n)
		}
	}
	if i > 0 {
		f.order = append(f.order[:0], f.order[i:]...)
	}
}

func (f *flight) add(m bsmsg.BitSwapMessage, now int64) {
	blks := m.Blocks()
	if len(blks) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent == nil {
		f.sent = map[cid.Cid]flightEntry{}
	}
	for _, b := range blks {
		e := flightEntry{c: b.Cid(), n: int64(len(b.RawData())), at: now}
		if old, ok := f.sent[e.c]; ok {
			f.bytes.Add(-old.n)
		}
		f.sent[e.c] = e
		f.order = append(f.order, e)
		f.bytes.Add(e.n)
	}
	f.expire(now)
}

// ack removes the blocks m (any message from the peer) cancels and prunes
// expired entries; it reports whether any block in flight was cancelled.
func (f *flight) ack(m bsmsg.BitSwapMessage, now int64) bool {
	if f.bytes.Load() == 0 {
		return false
	}
	found := false
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range m.Wantlist() {
		if !e.Cancel {
			continue
		}
		if cur, ok := f.sent[e.Cid]; ok {
			delete(f.sent, e.Cid)
			f.bytes.Add(-cur.n)
			found = true
		}
	}
	f.expire(now)
	if found {
		f.acker.Store(true)
	}
	return found
}

// full says whether the peer is estimated to have at least capBytes in
// flight (see the guards above). It does not read the clock, so the
// comparator's order changes only with the peer's own events.
func (f *flight) full(capBytes int64) bool {
	return f.bytes.Load() >= capBytes && f.acker.Load()
}

// WithOutstandingCap tells the policy the server's MaxOutstandingBytesPerPeer,
// so the comparator can move a peer estimated to be at that cap below the
// peers that can be served (see inflight.go). 0 (the default) leaves the
// order to the pass values alone.
func WithOutstandingCap(bytes int) Option {
	return func(p *Policy) { p.outCap.Store(int64(bytes)) }
}
