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
//   - a block not acknowledged within inflightTTL stops counting, and a
//     peer with no send or acknowledgement for inflightTTL is not moved
//     down, so a peer that stops acknowledging is served at least once per
//     inflightTTL whatever the others do;
//   - at most inflightMax blocks are tracked per peer.

// inflightTTL is how long a block sent and not acknowledged counts as in
// flight.
const inflightTTL = time.Second

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
	last  atomic.Int64 // unix nanos of the last send or acknowledgement
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
	f.last.Store(now)
}

// ack removes the blocks m cancels; it reports whether any was in flight.
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
		f.last.Store(now)
	}
	return found
}

// full says whether the peer is estimated to have at least capBytes in
// flight (see the guards above). now is read only when the rest holds.
func (f *flight) full(capBytes int64, now func() time.Time) bool {
	return f.bytes.Load() >= capBytes && f.acker.Load() && now().UnixNano()-f.last.Load() < int64(inflightTTL)
}

// WithOutstandingCap tells the policy the server's MaxOutstandingBytesPerPeer,
// so the comparator can move a peer estimated to be at that cap below the
// peers that can be served (see inflight.go). 0 (the default) leaves the
// order to the pass values alone.
func WithOutstandingCap(bytes int) Option {
	return func(p *Policy) { p.outCap.Store(int64(bytes)) }
}
