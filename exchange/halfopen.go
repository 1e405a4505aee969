package exchange

import "time"

// floodOver reports whether a peer that has asked n wants in the current
// one-second window is over its flood limit: the live rate of its class,
// scaled by the share of requests its breaker admits while half-open.
//
// Without the scaling a flooder let back in half-open kept its full rate
// allowance: at 5,000 wants/s it had 5 wantlists of 1,000 handled whole
// (filter, a DONT_HAVE per want, queued and sent by the workers that serve
// the priority peers) before it tripped again, and since a flood trips its
// peers together their breakers reopened together: a burst of 160,000
// wants every cooldown that took a core for about a second (W5, 32
// flooders). Scaled, a half-open breaker at 1/8 allows 625 wants/s, so a
// flooder re-trips within its first wantlist, while a peer that asks at
// an honest rate ramps up with its breaker. The allowance doubles with
// the admitted fraction each BreakerRamp and is the full rate once the
// breaker has closed.
//
// Callers ask once per want; beyond the closed-breaker limit it is true
// (trip ignores a breaker already open), and under the smallest half-open
// limit it is false without looking at the breaker.
func (p *Policy) floodOver(st *peerState, n, rate int64, now time.Time) bool {
	if rate <= 0 {
		return false
	}
	if n > rate {
		return true
	}
	start := int64(p.cfg.Breaker.StartSlots)
	if start <= 0 || start > admitSlots {
		start = admitSlots / 8 // NewBreaker's default
	}
	if n <= rate*start/admitSlots {
		return false
	}
	s := st.br.Snapshot(now)
	return s.State == HalfOpen && float64(n) > float64(rate)*s.AdmitFraction
}
