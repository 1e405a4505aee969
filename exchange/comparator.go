package exchange

import (
	"github.com/ipfs/boxo/bitswap/server"
	"github.com/libp2p/go-libp2p/core/peer"
)

// passUnit scales the virtual-time increments so integer division keeps
// enough precision.
const passUnit = 1 << 20

// The comparator is weighted fair queuing over virtual time (stride
// scheduling). Each peer has a pass value; the queue serves the peer with
// the lowest pass first. Serving n entries to a peer of class c adds
// n * passUnit * active[c] / share[c] to its pass, where active[c] is the
// number of peers of c with work queued. A class as a whole therefore
// advances at passUnit/share[c] per entry, and every class with work gets
// at least share[c]/100 of the entries sent, the rest going to the others
// in proportion to their shares; inside a class, peers take turns.
//
// Why pass values and not a live "boost" flag: boxo keeps peers in a binary
// heap and re-sorts a peer only when its own tasks change. A key that
// changes only when its own peer is served (MessageSent, followed by the
// engine's TasksDone) or gets new wants (Filter, followed by PushTasks)
// keeps the heap valid; a global flag would leave it stale.

// account records n entries sent to st (class c): it advances the peer's
// pass and the global virtual time.
func (p *Policy) account(st *peerState, c Class, n int64) {
	pre := st.pass.Load()
	for {
		vt := p.vt.Load()
		if pre <= vt || p.vt.CompareAndSwap(vt, pre) {
			break
		}
	}
	share := max(p.minShare[c].Load(), 1)
	active := max(p.active[c].Load(), 1)
	st.pass.Add(uint64(n * passUnit * active / share))
}

// catchUp moves a peer that was idle up to the current virtual time, so
// idling earns no credit; called when the peer sends wants.
func (p *Policy) catchUp(st *peerState) {
	if vt := p.vt.Load(); st.pass.Load() < vt {
		st.pass.Store(vt)
	}
}

// Compare is a server.TaskComparator: true when task a should be served
// before task b. Tasks of different peers are ordered first by whether the
// peer is estimated to be at the server's outstanding-bytes cap (such a
// peer last: boxo's queue would pop nothing for it, see inflight.go), then
// by the peers' pass (lowest first), then class, then peer ID, so the
// order is total. Tasks of one peer go oldest want first (order.go).
func (p *Policy) Compare(a, b *server.TaskInfo) bool {
	if a.Peer == b.Peer {
		if st := p.state(a.Peer); st != nil {
			return st.order.before(a.Cid, b.Cid)
		}
		return false
	}
	sa, sb := p.state(a.Peer), p.state(b.Peer)
	if capB := p.outCap.Load(); capB > 0 && sa != nil && sb != nil {
		if fa, fb := sa.fl.full(capB), sb.fl.full(capB); fa != fb {
			p.capOrdered.Add(1)
			return fb
		}
	}
	var pa, pb uint64
	if sa != nil {
		pa = sa.pass.Load()
	}
	if sb != nil {
		pb = sb.pass.Load()
	}
	if pa != pb {
		return pa < pb
	}
	ca, cb := p.ClassOf(a.Peer), p.ClassOf(b.Peer)
	if ca != cb {
		return ca < cb
	}
	return a.Peer < b.Peer
}

func (p *Policy) state(id peer.ID) *peerState {
	if v, ok := p.peers.Load(id); ok {
		return v.(*peerState)
	}
	return nil
}
