package exchange

import (
	"sort"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ClassStats is one class's share of the state.
type ClassStats struct {
	// Class names the class.
	Class string `json:"class"`
	// Peers is the number of known peers in the class.
	Peers int `json:"peers"`
	// Pending is the estimated entries queued for the class.
	Pending int64 `json:"pending"`
	// Accepted counts wants admitted by the filter.
	Accepted uint64 `json:"accepted"`
	// Served counts entries (blocks and presences) sent.
	Served uint64 `json:"served"`
	// Shed counts denied wants by reason.
	Shed map[string]uint64 `json:"shed"`
	// ActivePeers is the number of the class's peers with entries pending.
	ActivePeers int64 `json:"active_peers"`
	// MinSharePct is the class's guaranteed share.
	MinSharePct int64 `json:"min_share_pct"`
	// PeerRate is the live per-peer rate limit (entries/s, 0: none).
	PeerRate int64 `json:"peer_rate"`
	// PeerPending is the live per-peer pending limit (0: none).
	PeerPending int64 `json:"peer_pending"`
	// Global is the class's global breaker (always closed for priority).
	Global BreakerState `json:"global_breaker"`
}

// PeerStats is one peer whose breaker is not closed, or a priority peer.
type PeerStats struct {
	// ID is the peer.
	ID string `json:"id"`
	// Class is the peer's class.
	Class string `json:"class"`
	// Breaker is the peer's breaker.
	Breaker BreakerState `json:"breaker"`
	// Pending is the estimated entries queued for the peer.
	Pending int64 `json:"pending"`
	// Requested and Denied count the peer's wants.
	Requested uint64 `json:"requested"`
	// Denied counts the peer's shed wants.
	Denied uint64 `json:"denied"`
	// RatePerSec is the peer's wants in its last full second.
	RatePerSec int `json:"rate_per_sec"`
}

// Stats is a snapshot of the policy. Counters are read one by one, so a
// snapshot taken under load may be slightly inconsistent.
type Stats struct {
	// Load is queued entries over GlobalPending, raised by pressure.
	Load float64 `json:"load"`
	// Pressure is the last pressure level read (0 normal, 1 elevated, 2 critical).
	Pressure int `json:"pressure"`
	// GlobalPending is the live full-load mark.
	GlobalPending int64 `json:"global_pending"`
	// Classes, highest first.
	Classes []ClassStats `json:"classes"`
	// BreakerPeers counts peers in each breaker state.
	BreakerPeers map[string]int `json:"breaker_peers"`
	// Trips counts peer breaker trips by fault.
	Trips map[string]uint64 `json:"trips"`
	// PeerTransitions and GlobalTransitions count breaker state changes,
	// keyed "from->to".
	PeerTransitions map[string]uint64 `json:"peer_transitions"`
	// GlobalTransitions counts the global breakers' state changes.
	GlobalTransitions map[string]uint64 `json:"global_transitions"`
	// Malformed counts malformed or oversized wantlists received.
	Malformed uint64 `json:"malformed"`
	// Held counts wantlists of peers with an open breaker that were held
	// back before boxo handled them (Config.Hold).
	Held uint64 `json:"held"`
	// Dropped counts held wantlists dropped unanswered because the peer's
	// breaker was still open after the hold (their wants count as shed by
	// the breaker).
	Dropped uint64 `json:"dropped"`
	// SlowPeers counts peers with a good exchange record that the last
	// tick kept out of ClassGood because their connection is slow
	// (WithSlowPeers).
	SlowPeers int64 `json:"slow_peers"`
	// OutstandingCap is the server's MaxOutstandingBytesPerPeer as the
	// policy knows it (0: the in-flight estimate is off).
	OutstandingCap int64 `json:"outstanding_cap"`
	// PeersAtCap is the number of peers estimated to have that many bytes
	// in flight now, which the comparator moves below the others.
	PeersAtCap int `json:"peers_at_cap"`
	// CapOrdered counts peer comparisons decided by that estimate.
	CapOrdered uint64 `json:"cap_ordered"`
	// Peers lists priority peers and peers whose breaker is not closed
	// (at most 32, most denied first).
	Peers []PeerStats `json:"peers"`
	// Prefetch is the client-side prefetcher's counters, when one runs
	// (set by the caller; the policy does not know of it).
	Prefetch *PrefetchStats `json:"prefetch,omitempty"`
}

// Stats returns a snapshot of the policy's state.
func (p *Policy) Stats() Stats {
	now := p.now()
	lim := p.lim.Load()
	s := Stats{
		Load: lim.load, Pressure: lim.level, GlobalPending: p.globalPend.Load(),
		BreakerPeers: map[string]int{}, Trips: map[string]uint64{},
		PeerTransitions: map[string]uint64{}, GlobalTransitions: map[string]uint64{},
		Malformed: p.malformed.Load(), Held: p.held.Load(), Dropped: p.dropped.Load(), SlowPeers: p.slowPeers.Load(),
		OutstandingCap: p.outCap.Load(), CapOrdered: p.capOrdered.Load(),
	}
	var peers [NumClasses]int
	p.peers.Range(func(k, v any) bool {
		id, st := k.(peer.ID), v.(*peerState)
		c := p.ClassOf(id)
		peers[c]++
		if s.OutstandingCap > 0 && st.fl.full(s.OutstandingCap) {
			s.PeersAtCap++
		}
		b := st.br.Snapshot(now)
		s.BreakerPeers[b.Name]++
		if b.State != Closed || c == ClassPriority {
			st.mu.Lock()
			rate := st.lastRate
			st.mu.Unlock()
			s.Peers = append(s.Peers, PeerStats{ID: id.String(), Class: c.String(), Breaker: b, Pending: st.pending.Load(),
				Requested: st.requested.Load(), Denied: st.denied.Load(), RatePerSec: rate})
		}
		return true
	})
	sort.Slice(s.Peers, func(i, j int) bool { return s.Peers[i].Denied > s.Peers[j].Denied })
	if len(s.Peers) > 32 {
		s.Peers = s.Peers[:32]
	}
	for c := Class(0); c < NumClasses; c++ {
		cs := ClassStats{Class: c.String(), Peers: peers[c], Pending: p.classPending[c].Load(),
			Accepted: p.accepted[c].Load(), Served: p.served[c].Load(), Shed: map[string]uint64{},
			ActivePeers: p.active[c].Load(), MinSharePct: p.minShare[c].Load(),
			PeerRate: lim.rate[c], PeerPending: lim.pending[c], Global: p.global[c].Snapshot(now)}
		for r := Reason(0); r < numReasons; r++ {
			cs.Shed[r.String()] = p.shed[c][r].Load()
		}
		s.Classes = append(s.Classes, cs)
	}
	for f := Fault(0); f < numFaults; f++ {
		s.Trips[f.String()] = p.trips[f].Load()
	}
	for from := State(0); from < numStates; from++ {
		for to := State(0); to < numStates; to++ {
			key := from.String() + "->" + to.String()
			if n := p.peerTrans[from][to].Load(); n > 0 {
				s.PeerTransitions[key] = n
			}
			if n := p.globalTrans[from][to].Load(); n > 0 {
				s.GlobalTransitions[key] = n
			}
		}
	}
	return s
}

// ShedTotal is the number of wants shed, all classes and reasons.
func (s Stats) ShedTotal() uint64 {
	var n uint64
	for _, c := range s.Classes {
		for _, v := range c.Shed {
			n += v
		}
	}
	return n
}
