package exchange

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// idleEvict is how long a peer with a closed breaker and nothing queued is
// remembered after its last want.
const idleEvict = 10 * time.Minute

// pressureLoad maps a pressure level to a load figure: elevated pressure
// scales limits down, critical pressure sheds the unknown and good classes.
var pressureLoad = [...]float64{0, 0.8, 1.6}

// loadScale turns a load figure into the factor applied to per-peer limits:
// 1 up to half load, falling to 1/4 at full load and beyond.
func loadScale(load float64) float64 {
	switch {
	case load <= 0.5:
		return 1
	case load >= 1:
		return 0.25
	}
	return 1 - (load-0.5)*1.5
}

// shedAt is the load at which each class's global breaker opens; the
// priority class is never shed.
var shedAt = [NumClasses]float64{ClassPriority: 0, ClassGood: 1.5, ClassUnknown: 1.0}

// sample recomputes per-class pending entries, decays stale estimates,
// evicts idle peers, and derives the load, the live limits and the global
// breakers' state.
func (p *Policy) sample(now time.Time) {
	var pend, act [NumClasses]int64
	var slow int64
	prio := *p.priority.Load()
	p.peers.Range(func(k, v any) bool {
		st := v.(*peerState)
		if _, isPrio := prio[k.(peer.ID)]; p.slowPeer != nil && st.good.Load() && !isPrio {
			s := p.slowPeer(k.(peer.ID))
			st.slow.Store(s)
			if s {
				slow++
			}
		}
		// Nothing asked since the last tick: wants that got no answer
		// (cancelled, truncated, no DONT_HAVE asked) leak out here.
		if st.tickReqs.Swap(0) == 0 {
			if n := st.pending.Load(); n > 0 {
				st.pending.Add(-(n + 1) / 2)
			}
		}
		c := p.ClassOf(k.(peer.ID))
		pend[c] += st.pending.Load()
		if st.pending.Load() > 0 {
			act[c]++
		}
		if now.Sub(time.Unix(0, st.active.Load())) > idleEvict && st.pending.Load() == 0 && st.br.Snapshot(now).State == Closed {
			p.peers.Delete(k)
		}
		return true
	})
	p.slowPeers.Store(slow)
	var total int64
	for c := range pend {
		p.classPending[c].Store(pend[c])
		p.active[c].Store(act[c])
		total += pend[c]
	}
	l := &limits{level: p.pressure()}
	l.load = float64(total) / float64(max(p.globalPend.Load(), 1))
	if l.level >= 0 && l.level < len(pressureLoad) {
		l.load = max(l.load, pressureLoad[l.level])
	}
	scale := loadScale(l.load)
	for c := Class(0); c < NumClasses; c++ {
		r, q := p.peerRate[c].Load(), p.peerPending[c].Load()
		if c != ClassPriority {
			r, q = scaled(r, scale), scaled(q, scale)
		}
		l.rate[c], l.pending[c] = r, q
		if c != ClassPriority && l.load >= shedAt[c] {
			p.global[c].Trip(now)
		}
	}
	p.lim.Store(l)
}

func scaled(v int64, f float64) int64 {
	if v <= 0 {
		return v
	}
	return max(int64(float64(v)*f), 1)
}
