package connmgr

import (
	"context"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TrimOpenConns closes connections down to LowWater now, worst quality
// first, skipping protected peers and peers in their grace period, in one
// full round (not capped by MaxTrimPerRound).
func (m *Manager) TrimOpenConns(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if count, low := m.ConnCount(), m.LowWater(); count > low {
		m.trimRound(count - low)
	}
}

// trimLoop is the background trimmer. It wakes on its ticker and on the
// coalesced signal from Connected; once the count passes HighWater it runs
// rounds, RoundPause apart, until the count reaches LowWater: the first
// closes everything above HighWater (at least MaxTrimPerRound), the next
// ones at most MaxTrimPerRound each.
func (m *Manager) trimLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.TrimInterval)
	defer t.Stop()
	var last time.Time         // end of the last round
	var retry <-chan time.Time // a deferred wake-up
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		case <-retry:
			retry = nil
		case <-m.wake:
			// A flood of connections above HighWater (all still in their
			// grace period, say) must not rescan every peer per connect:
			// at most one round per RoundPause.
			if wait := m.cfg.RoundPause - time.Since(last); wait > 0 {
				if retry == nil {
					retry = time.After(wait)
				}
				continue
			}
		}
		for m.backgroundRound() {
			timer := time.NewTimer(m.cfg.RoundPause)
			select {
			case <-m.ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
		last = time.Now()
	}
}

// backgroundRound runs one gradual round if the manager is draining (it
// passed HighWater and has not reached LowWater yet). It reports whether
// another round should follow after a pause.
func (m *Manager) backgroundRound() bool {
	count := m.ConnCount()
	low, high := m.LowWater(), m.HighWater()
	if !m.draining.Load() {
		if count <= high {
			return false
		}
		m.draining.Store(true)
	}
	if count <= low {
		m.draining.Store(false)
		return false
	}
	// HighWater is a ceiling: what exceeds it goes in this round; from
	// HighWater down to LowWater the drain is gradual.
	closed := m.trimRound(min(max(m.cfg.MaxTrimPerRound, count-high), count-low))
	// Re-count: connections that arrived during the round keep the drain
	// going until LowWater is really reached.
	if m.ConnCount() <= low {
		m.draining.Store(false)
		return false
	}
	return closed > 0
}

// candidate is a trimmable peer with its connections and quality.
type candidate struct {
	q     Quality
	temp  bool
	conns []network.Conn
}

// trimOrder sorts worst first: temporary entries, then slow peers, then by
// score (ties: fewer streams, then peer ID, for a stable order).
func trimOrder(cs []candidate) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.temp != b.temp {
			return a.temp
		}
		if a.q.Slow != b.q.Slow {
			return a.q.Slow
		}
		if a.q.Score != b.q.Score {
			return a.q.Score < b.q.Score
		}
		if a.q.Streams != b.q.Streams {
			return a.q.Streams < b.q.Streams
		}
		return a.q.Peer < b.q.Peer
	})
}

// candidates returns the trimmable peers (not protected, past the grace
// period) in trimming order, and drops expired temporary entries.
func (m *Manager) candidates() []candidate {
	m.scans.Add(1)
	now := m.now()
	graceStart := now.Add(-m.GracePeriod())
	type raw struct {
		id    peer.ID
		value int
		conns []network.Conn
	}
	var raws []raw
	m.plk.RLock()
	m.mu.Lock()
	for id, pi := range m.peers {
		if _, ok := m.protected[id]; ok {
			continue
		}
		if pi.firstSeen.After(graceStart) {
			continue
		}
		if pi.temp && len(pi.conns) == 0 {
			// tags that never got a connection, past their grace period
			delete(m.peers, id)
			continue
		}
		r := raw{id: id, value: pi.value, conns: make([]network.Conn, 0, len(pi.conns))}
		for c := range pi.conns {
			r.conns = append(r.conns, c)
		}
		raws = append(raws, r)
	}
	m.mu.Unlock()
	m.plk.RUnlock()

	cs := make([]candidate, 0, len(raws))
	for _, r := range raws {
		cs = append(cs, candidate{q: m.score(r.id, r.value, r.conns, now), conns: r.conns})
	}
	trimOrder(cs)
	return cs
}

// trimRound closes up to n connections, worst peers first, and returns how
// many it closed. A peer's connections are closed together.
func (m *Manager) trimRound(n int) int {
	if n <= 0 {
		return 0
	}
	m.trimMu.Lock()
	defer m.trimMu.Unlock()
	var selected []network.Conn
	for _, c := range m.candidates() {
		if len(selected) >= n {
			break
		}
		selected = append(selected, c.conns...)
	}
	// Stop tracking them now, so the count is right before the swarm's
	// Disconnected notifications arrive (they then find nothing to do).
	m.mu.Lock()
	var gone []peer.ID
	for _, c := range selected {
		pi, ok := m.peers[c.RemotePeer()]
		if !ok {
			continue
		}
		if _, ok := pi.conns[c]; ok {
			delete(pi.conns, c)
			m.conns--
		}
		if len(pi.conns) == 0 {
			delete(m.peers, pi.id)
			gone = append(gone, pi.id)
		}
	}
	m.mu.Unlock()
	for _, p := range gone {
		m.forgetQuality(p)
	}
	for _, c := range selected {
		log.Debugw("trimming connection", "peer", c.RemotePeer())
		if m.IsProtected(c.RemotePeer(), "") {
			// Selection skips protected peers; a peer protected between
			// selection and here is the only way to get here. Counted, so
			// that "protected peers are never trimmed" is measured, not assumed.
			m.trimmedProtected.Add(1)
		}
		_ = c.CloseWithError(network.ConnGarbageCollected)
	}
	if len(selected) > 0 {
		// Only rounds that closed something count: a manager stuck above
		// HighWater with only protected or young peers re-checks every tick.
		m.trimRounds.Add(1)
		m.trimmedConns.Add(uint64(len(selected)))
		m.lastTrim.Store(m.now().UnixNano())
	}
	return len(selected)
}
