package connmgr

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

var log = logging.Logger("highload/connmgr")

// Manager is the adaptive connection manager. Create it with New, hand it to
// libp2p (libp2p.ConnectionManager), and Close it when the host is closed.
type Manager struct {
	cfg Config

	// live values, read lock-free by the notifee and the trimmer.
	lowWater  atomic.Int64
	highWater atomic.Int64
	grace     atomic.Int64 // time.Duration

	mu    sync.Mutex
	peers map[peer.ID]*peerInfo
	conns int

	plk       sync.RWMutex
	protected map[peer.ID]map[string]struct{}

	latency atomic.Pointer[func(peer.ID) time.Duration]
	qm      sync.Mutex
	quality map[peer.ID]*observed

	// counters
	connects     atomic.Uint64
	disconnects  atomic.Uint64
	trimRounds   atomic.Uint64
	trimmedConns atomic.Uint64
	// trimmedProtected counts trimmed connections of peers protected at close time.
	trimmedProtected atomic.Uint64
	// streamErrs and streamResets count reported stream events.
	streamErrs, streamResets atomic.Uint64
	scans                    atomic.Uint64 // candidate scans (each sorts every peer)
	trimMu                   sync.Mutex    // one trim at a time
	lastTrim                 atomic.Int64
	draining                 atomic.Bool // above HighWater, trimming down to LowWater

	adapt adaptState

	pool atomic.Pointer[Pool]

	decay *decayer

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

var (
	_ connmgr.ConnManager = (*Manager)(nil)
	_ connmgr.Decayer     = (*Manager)(nil)
)

// peerInfo is what the manager tracks per peer.
type peerInfo struct {
	id        peer.ID
	tags      map[string]int
	decaying  map[*decayingTag]*connmgr.DecayingValue
	value     int  // sum of tags and decaying values
	temp      bool // tags arrived before any connection
	conns     map[network.Conn]time.Time
	firstSeen time.Time
}

// setTag sets a tag's value, allocating the tag map on first use.
func (pi *peerInfo) setTag(tag string, val int) {
	if pi.tags == nil {
		pi.tags = make(map[string]int, 1)
	}
	pi.tags[tag] = val
}

// New creates a Manager and starts its background loops (trimming,
// adaptation, tag decay). It does not need a host; Pool does.
func New(cfg Config) (*Manager, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:       c,
		peers:     make(map[peer.ID]*peerInfo),
		protected: make(map[peer.ID]map[string]struct{}),
		quality:   make(map[peer.ID]*observed),
		wake:      make(chan struct{}, 1),
	}
	if c.Latency != nil {
		f := c.Latency
		m.latency.Store(&f)
	}
	m.lowWater.Store(int64(c.LowWater))
	m.highWater.Store(int64(c.HighWater))
	m.grace.Store(int64(c.GracePeriod))
	m.adapt.reason = "configured start values"
	m.adapt.changed = c.Now()
	m.clampToLimit("configured start values")
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.decay = newDecayer(m)
	m.wg.Add(3)
	go m.trimLoop()
	go m.adaptLoop()
	go m.decay.run()
	return m, nil
}

// Close stops the background loops and the pool, if any. It does not close
// connections.
func (m *Manager) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	if p := m.pool.Load(); p != nil {
		p.stop()
	}
	m.cancel()
	m.wg.Wait()
	return nil
}

// SetLatencySource sets where latencies come from (usually the host's
// peerstore LatencyEWMA, known only once the host exists).
func (m *Manager) SetLatencySource(f func(peer.ID) time.Duration) {
	if f == nil {
		m.latency.Store(nil)
		return
	}
	m.latency.Store(&f)
}

// LowWater returns the live low watermark.
func (m *Manager) LowWater() int { return int(m.lowWater.Load()) }

// HighWater returns the live high watermark.
func (m *Manager) HighWater() int { return int(m.highWater.Load()) }

// GracePeriod returns the live grace period.
func (m *Manager) GracePeriod() time.Duration { return time.Duration(m.grace.Load()) }

// ConnCount returns the number of connections tracked.
func (m *Manager) ConnCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conns
}

func (m *Manager) now() time.Time { return m.cfg.Now() }

// infoFor returns p's entry, creating a temporary one to hold tags that
// arrive before the first connection. m.mu must be held.
func (m *Manager) infoFor(p peer.ID) *peerInfo {
	pi, ok := m.peers[p]
	if ok {
		return pi
	}
	// tags and decaying stay nil until a tag is set: most of a large
	// node's peers (idle inbound ones) never get one.
	pi = &peerInfo{
		id:        p,
		firstSeen: m.now(),
		temp:      true,
		conns:     make(map[network.Conn]time.Time, 1),
	}
	m.peers[p] = pi
	return pi
}

// TagPeer sets the value of tag on p.
func (m *Manager) TagPeer(p peer.ID, tag string, val int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pi := m.infoFor(p)
	pi.value += val - pi.tags[tag]
	pi.setTag(tag, val)
}

// UntagPeer removes tag from p.
func (m *Manager) UntagPeer(p peer.ID, tag string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pi, ok := m.peers[p]
	if !ok {
		return
	}
	pi.value -= pi.tags[tag]
	delete(pi.tags, tag)
}

// UpsertTag sets tag on p to upsert(its current value, 0 if unset).
func (m *Manager) UpsertTag(p peer.ID, tag string, upsert func(int) int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pi := m.infoFor(p)
	old := pi.tags[tag]
	nv := upsert(old)
	pi.value += nv - old
	pi.setTag(tag, nv)
}

// GetTagInfo returns p's tags, value and connections, or nil for an unknown
// peer.
func (m *Manager) GetTagInfo(p peer.ID) *connmgr.TagInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	pi, ok := m.peers[p]
	if !ok {
		return nil
	}
	out := &connmgr.TagInfo{
		FirstSeen: pi.firstSeen,
		Value:     pi.value,
		Tags:      make(map[string]int, len(pi.tags)+len(pi.decaying)),
		Conns:     make(map[string]time.Time, len(pi.conns)),
	}
	maps.Copy(out.Tags, pi.tags)
	for t, v := range pi.decaying {
		out.Tags[t.name] = v.Value
	}
	for c, t := range pi.conns {
		out.Conns[c.RemoteMultiaddr().String()] = t
	}
	return out
}

// Protect shields p from trimming under tag until Unprotect(p, tag).
func (m *Manager) Protect(p peer.ID, tag string) {
	m.plk.Lock()
	defer m.plk.Unlock()
	tags, ok := m.protected[p]
	if !ok {
		tags = make(map[string]struct{}, 2)
		m.protected[p] = tags
	}
	tags[tag] = struct{}{}
}

// Unprotect removes tag's protection of p; it reports whether p is still
// protected by another tag.
func (m *Manager) Unprotect(p peer.ID, tag string) bool {
	m.plk.Lock()
	defer m.plk.Unlock()
	tags, ok := m.protected[p]
	if !ok {
		return false
	}
	if delete(tags, tag); len(tags) == 0 {
		delete(m.protected, p)
		return false
	}
	return true
}

// IsProtected reports whether p is protected by tag, or by any tag when tag
// is "".
func (m *Manager) IsProtected(p peer.ID, tag string) bool {
	m.plk.RLock()
	defer m.plk.RUnlock()
	tags, ok := m.protected[p]
	if !ok {
		return false
	}
	if tag == "" {
		return true
	}
	_, ok = tags[tag]
	return ok
}

// CheckLimit reports an error when even the lowest HighWater the manager
// may use reaches the given connection limit; above that, the manager clamps
// itself below the limit (see Config.Limit).
func (m *Manager) CheckLimit(l connmgr.GetConnLimiter) error {
	limit := l.GetConnLimit()
	if limit > 0 && m.cfg.MinHighWater >= limit {
		return fmt.Errorf("highload connmgr: MinHighWater %d is not below the resource manager's connection limit %d",
			m.cfg.MinHighWater, limit)
	}
	return nil
}

// Notifee returns the network notifiee through which the manager learns of
// connections.
func (m *Manager) Notifee() network.Notifiee { return (*notifee)(m) }

type notifee Manager

// Connected starts tracking c. When the count passes HighWater it wakes the
// trimmer (a coalesced signal: at most one pending wake-up).
func (n *notifee) Connected(_ network.Network, c network.Conn) {
	m := (*Manager)(n)
	p := c.RemotePeer()
	now := m.now()
	m.mu.Lock()
	pi := m.infoFor(p)
	if pi.temp {
		pi.temp = false
		pi.firstSeen = now
	}
	if _, ok := pi.conns[c]; ok {
		m.mu.Unlock()
		return
	}
	pi.conns[c] = now
	m.conns++
	count := m.conns
	m.mu.Unlock()
	m.connects.Add(1)
	if count > m.HighWater() {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// Disconnected stops tracking c.
func (n *notifee) Disconnected(_ network.Network, c network.Conn) {
	m := (*Manager)(n)
	p := c.RemotePeer()
	m.mu.Lock()
	pi, ok := m.peers[p]
	if !ok {
		m.mu.Unlock()
		return
	}
	if _, ok := pi.conns[c]; !ok {
		m.mu.Unlock()
		return
	}
	delete(pi.conns, c)
	m.conns--
	gone := len(pi.conns) == 0
	if gone {
		delete(m.peers, p)
	}
	m.mu.Unlock()
	m.disconnects.Add(1)
	if gone {
		m.forgetQuality(p)
		if pool := m.pool.Load(); pool != nil {
			pool.disconnected(p)
		}
	}
}

// Listen does nothing.
func (n *notifee) Listen(network.Network, ma.Multiaddr) {}

// ListenClose does nothing.
func (n *notifee) ListenClose(network.Network, ma.Multiaddr) {}
