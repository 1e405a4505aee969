package connmgr

import (
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Stats is a snapshot of the manager for `ipfs stats highload connmgr`.
type Stats struct {
	// LowWater, HighWater and GracePeriod are the live values.
	LowWater    int           `json:"low_water"`
	HighWater   int           `json:"high_water"`
	GracePeriod time.Duration `json:"grace_period"`
	// Bounds are the configured limits of the adaptation.
	Bounds Bounds `json:"bounds"`
	// Limit is the resource manager's connection limit last seen (0: none).
	Limit int `json:"limit"`
	// Pressure is the pressure level last seen (0 none .. 3 critical).
	Pressure int `json:"pressure"`
	// Churn is new connections per second over the last adaptation interval.
	Churn float64 `json:"churn"`
	// Reason says why the watermarks last changed; Changed is when.
	Reason  string    `json:"reason"`
	Changed time.Time `json:"changed"`
	// Changes counts watermark changes since start.
	Changes uint64 `json:"changes"`
	// Conns and Peers are the connections and connected peers tracked.
	Conns int `json:"conns"`
	Peers int `json:"peers"`
	// Connects and Disconnects count connection events since start.
	Connects    uint64 `json:"connects"`
	Disconnects uint64 `json:"disconnects"`
	// TrimRounds counts trim rounds that closed connections; Trimmed counts
	// the connections they closed.
	TrimRounds uint64 `json:"trim_rounds"`
	Trimmed    uint64 `json:"trimmed"`
	// TrimmedProtected counts trimmed connections whose peer was protected
	// when they were closed (only a Protect racing a trim round can do it;
	// expected 0).
	TrimmedProtected uint64 `json:"trimmed_protected"`
	// StreamErrors and StreamResets count the stream failures reported
	// since start (WatchStreams on yamux connections, or ReportStream*).
	StreamErrors uint64 `json:"stream_errors"`
	StreamResets uint64 `json:"stream_resets"`
	// LastTrim is when the last round ran (zero: never).
	LastTrim time.Time `json:"last_trim,omitempty"`
	// Draining is true while the manager trims down from HighWater to LowWater.
	Draining bool `json:"draining"`
	// Protected lists every protected peer with its tags.
	Protected []ProtectedPeer `json:"protected"`
	// Pool is the persistent pool's state (nil: no pool).
	Pool []PoolPeer `json:"pool,omitempty"`
	// Cluster is the IPFS Cluster peer source's state (nil: none).
	Cluster *ClusterStats `json:"cluster,omitempty"`
	// Slow counts connected peers whose latency exceeds SlowLatency.
	Slow int `json:"slow"`
	// TLSWrites counts how TLS records were batched into write syscalls
	// (Config.ConnMgr.BatchTLSWrites); filled in by the host's wiring, nil
	// when batching is off.
	TLSWrites *TLSWrites `json:"tls_writes,omitempty"`
	// Best and Worst are the three best and worst scored connected peers.
	Best  []Quality `json:"best"`
	Worst []Quality `json:"worst"`
}

// TLSWrites counts, over every TLS connection of the process, the records
// written through batches, the write syscalls they took and their bytes.
type TLSWrites struct {
	Records uint64 `json:"records"`
	Writes  uint64 `json:"writes"`
	Bytes   uint64 `json:"bytes"`
}

// Bounds are the adaptation's configured limits.
type Bounds struct {
	MinHighWater   int           `json:"min_high_water"`
	MaxHighWater   int           `json:"max_high_water"`
	MinGracePeriod time.Duration `json:"min_grace_period"`
	MaxGracePeriod time.Duration `json:"max_grace_period"`
	BaseLowWater   int           `json:"base_low_water"`
	BaseHighWater  int           `json:"base_high_water"`
}

// ProtectedPeer is one protected peer.
type ProtectedPeer struct {
	ID        string   `json:"id"`
	Tags      []string `json:"tags"`
	Connected bool     `json:"connected"`
}

// Stats returns a snapshot. It scores every connected peer, so it costs
// O(peers); call it on demand, not in a hot loop.
func (m *Manager) Stats() Stats {
	s := Stats{
		LowWater: m.LowWater(), HighWater: m.HighWater(), GracePeriod: m.GracePeriod(),
		Bounds: Bounds{
			MinHighWater: m.cfg.MinHighWater, MaxHighWater: m.cfg.MaxHighWater,
			MinGracePeriod: m.cfg.MinGracePeriod, MaxGracePeriod: m.cfg.MaxGracePeriod,
			BaseLowWater: m.cfg.LowWater, BaseHighWater: m.cfg.HighWater,
		},
		Connects: m.connects.Load(), Disconnects: m.disconnects.Load(),
		TrimRounds: m.trimRounds.Load(), Trimmed: m.trimmedConns.Load(),
		TrimmedProtected: m.trimmedProtected.Load(),
		StreamErrors:     m.streamErrs.Load(), StreamResets: m.streamResets.Load(),
		Draining: m.draining.Load(),
	}
	if t := m.lastTrim.Load(); t != 0 {
		s.LastTrim = time.Unix(0, t)
	}
	m.adapt.mu.Lock()
	s.Reason, s.Changed, s.Changes = m.adapt.reason, m.adapt.changed, m.adapt.changes
	s.Churn, s.Pressure, s.Limit = m.adapt.churn, m.adapt.pressure, m.adapt.limit
	m.adapt.mu.Unlock()
	if s.Limit == 0 {
		s.Limit = m.limit()
	}

	type snap struct {
		id    peer.ID
		value int
		conns []network.Conn
	}
	var snaps []snap
	connected := map[peer.ID]bool{}
	m.mu.Lock()
	s.Conns = m.conns
	for id, pi := range m.peers {
		if len(pi.conns) == 0 {
			continue
		}
		connected[id] = true
		sn := snap{id: id, value: pi.value}
		for c := range pi.conns {
			sn.conns = append(sn.conns, c)
		}
		snaps = append(snaps, sn)
	}
	m.mu.Unlock()
	s.Peers = len(snaps)

	m.plk.RLock()
	for id, tags := range m.protected {
		pp := ProtectedPeer{ID: id.String(), Connected: connected[id]}
		for t := range tags {
			pp.Tags = append(pp.Tags, t)
		}
		sort.Strings(pp.Tags)
		s.Protected = append(s.Protected, pp)
	}
	m.plk.RUnlock()
	sort.Slice(s.Protected, func(i, j int) bool { return s.Protected[i].ID < s.Protected[j].ID })

	if p := m.pool.Load(); p != nil {
		s.Pool = p.State()
		if cs, ok := p.ClusterStats(); ok {
			s.Cluster = &cs
		}
	}

	now := m.now()
	cs := make([]candidate, 0, len(snaps))
	for _, sn := range snaps {
		q := m.score(sn.id, sn.value, sn.conns, now)
		if q.Slow {
			s.Slow++
		}
		cs = append(cs, candidate{q: q})
	}
	trimOrder(cs)
	for i := 0; i < len(cs) && i < 3; i++ {
		s.Worst = append(s.Worst, cs[i].q)
		s.Best = append(s.Best, cs[len(cs)-1-i].q)
	}
	return s
}
