package connmgr

import (
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Quality is one peer's connection quality as the manager sees it.
type Quality struct {
	// Peer is the peer.
	Peer peer.ID `json:"peer"`
	// Score orders trimming: lower is trimmed first. It is the peer's tag
	// value plus the latency, bandwidth and stream terms below.
	Score float64 `json:"score"`
	// Slow is true when Latency exceeds Config.SlowLatency; slow peers are
	// trimmed before all others.
	Slow bool `json:"slow"`
	// Value is the sum of the peer's connmgr tags (usefulness).
	Value int `json:"value"`
	// Latency is the latency EWMA, 0 when unknown.
	Latency time.Duration `json:"latency"`
	// RateIn and RateOut are bytes per second, 0 when unknown.
	RateIn  float64 `json:"rate_in"`
	RateOut float64 `json:"rate_out"`
	// Streams is the number of open streams.
	Streams int `json:"streams"`
	// StreamErrors is the decayed count (half-life 1 min) of the peer's
	// streams that failed with an error other than a reset (a deadline
	// passed, a broken read or write).
	StreamErrors float64 `json:"stream_errors"`
	// StreamResets is the decayed count (half-life 1 min) of the peer's
	// streams that were reset, by either side.
	StreamResets float64 `json:"stream_resets"`
	// Inbound is true when all the peer's connections are inbound.
	Inbound bool `json:"inbound"`
}

// observed holds what callers report about a peer.
type observed struct {
	errors, resets float64 // decay by half every errorHalfLife
	at             time.Time
}

const errorHalfLife = time.Minute

// ReportStreamError records a failed stream with p (an error other than a
// reset). The muxer wrapper (WatchStreams) calls it; others may too.
// Reports for a peer the manager does not track (no connection) are
// dropped, so a peer that is gone leaves nothing behind.
func (m *Manager) ReportStreamError(p peer.ID) { m.report(p, false) }

// ReportStreamReset records a stream with p that was reset, by either side.
func (m *Manager) ReportStreamReset(p peer.ID) { m.report(p, true) }

func (m *Manager) report(p peer.ID, reset bool) {
	m.mu.Lock()
	pi, ok := m.peers[p]
	tracked := ok && len(pi.conns) > 0
	m.mu.Unlock()
	if !tracked {
		return
	}
	if reset {
		m.streamResets.Add(1)
	} else {
		m.streamErrs.Add(1)
	}
	now := m.now()
	m.qm.Lock()
	defer m.qm.Unlock()
	o, ok := m.quality[p]
	if !ok {
		o = &observed{at: now}
		m.quality[p] = o
	}
	o.errors, o.resets = decayed(o.errors, o.at, now), decayed(o.resets, o.at, now)
	if reset {
		o.resets++
	} else {
		o.errors++
	}
	o.at = now
}

func decayed(v float64, at, now time.Time) float64 {
	dt := now.Sub(at)
	if dt <= 0 || v == 0 {
		return v
	}
	return v * math.Exp2(-float64(dt)/float64(errorHalfLife))
}

func (m *Manager) forgetQuality(p peer.ID) {
	m.qm.Lock()
	delete(m.quality, p)
	m.qm.Unlock()
}

// streamEvents returns p's decayed stream errors and resets.
func (m *Manager) streamEvents(p peer.ID, now time.Time) (errs, resets float64) {
	m.qm.Lock()
	defer m.qm.Unlock()
	o, ok := m.quality[p]
	if !ok {
		return 0, 0
	}
	return decayed(o.errors, o.at, now), decayed(o.resets, o.at, now)
}

// Quality returns p's current connection quality. A peer the manager does
// not track gets a zero score and Slow false. The plugin hands this function
// to the Bitswap policy.
func (m *Manager) Quality(p peer.ID) Quality {
	m.mu.Lock()
	pi, ok := m.peers[p]
	var value int
	var conns []network.Conn
	if ok {
		value = pi.value
		for c := range pi.conns {
			conns = append(conns, c)
		}
	}
	m.mu.Unlock()
	return m.score(p, value, conns, m.now())
}

// score computes the quality from the tag value and the connections
// (which it reads without the manager's lock).
//
// Score = Value + latency term (+10 under 50ms, 0 unknown, down to -20 at or
// above SlowLatency) + bandwidth term (log2 of KiB/s, at most +10) + 5 when
// streams are open - 5 per recent stream error or reset (at most -30) - 1 when
// inbound-only (as libp2p, prefer trimming inbound).
func (m *Manager) score(p peer.ID, value int, conns []network.Conn, now time.Time) Quality {
	q := Quality{Peer: p, Value: value, Inbound: len(conns) > 0}
	for _, c := range conns {
		st := c.Stat()
		q.Streams += st.NumStreams
		if st.Direction != network.DirInbound {
			q.Inbound = false
		}
	}
	if lf := m.latency.Load(); lf != nil {
		q.Latency = (*lf)(p)
	}
	if m.cfg.Bandwidth != nil {
		s := m.cfg.Bandwidth.GetBandwidthForPeer(p)
		q.RateIn, q.RateOut = s.RateIn, s.RateOut
	}
	q.StreamErrors, q.StreamResets = m.streamEvents(p, now)

	s := float64(value)
	if q.Latency > 0 {
		switch {
		case q.Latency >= m.cfg.SlowLatency:
			q.Slow = true
			s -= 20
		case q.Latency <= 50*time.Millisecond:
			s += 10
		default:
			// linear from +10 at 50ms to -20 at SlowLatency
			f := float64(q.Latency-50*time.Millisecond) / float64(m.cfg.SlowLatency-50*time.Millisecond)
			s += 10 - 30*f
		}
	}
	if rate := (q.RateIn + q.RateOut) / 1024; rate > 1 {
		s += math.Min(10, math.Log2(rate))
	}
	if q.Streams > 0 {
		s += 5
	}
	s -= math.Min(30, 5*(q.StreamErrors+q.StreamResets))
	if q.Inbound {
		s--
	}
	q.Score = s
	return q
}
