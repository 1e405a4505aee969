package connmgr

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
)

// PoolTag is the protection tag the pool puts on its peers.
const PoolTag = "highload-pool"

// PoolHost is what the pool needs from a libp2p host.
type PoolHost interface {
	// Connect dials p unless already connected (host.Host's Connect).
	Connect(ctx context.Context, pi peer.AddrInfo) error
	// Network gives the connectedness of peers.
	Network() network.Network
	// ID is the host's own peer ID; it decides which end of a lost
	// connection redials first (see PoolConfig.RedialYield).
	ID() peer.ID
}

// PingFunc measures the round trip to p; HostPinger builds one from a host.
type PingFunc func(ctx context.Context, p peer.ID) (time.Duration, error)

// HostPinger returns a PingFunc using libp2p's ping protocol on h. libp2p's
// ping records each round trip in h's peerstore, which feeds Quality.
func HostPinger(h host.Host) PingFunc {
	return func(ctx context.Context, p peer.ID) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, ok := <-ping.Ping(ctx, h, p)
		if !ok {
			return 0, ctx.Err()
		}
		return r.RTT, r.Error
	}
}

// PoolConfig configures a persistent pool.
type PoolConfig struct {
	// Peers are kept protected and connected.
	Peers []peer.AddrInfo
	// MinBackoff is the first redial delay after a failure (default 1s);
	// it doubles per failure up to MaxBackoff (default 5m), with ±20% jitter.
	MinBackoff time.Duration
	// MaxBackoff caps the redial delay.
	MaxBackoff time.Duration
	// KeepAlive is how often connected pool peers are pinged (default 30s):
	// it keeps their idle connections alive and their latency known. 0 with
	// Ping nil disables pings.
	KeepAlive time.Duration
	// Ping measures a round trip; nil disables keep-alive pings.
	Ping PingFunc
	// DialTimeout bounds one dial (default 30s).
	DialTimeout time.Duration
	// RedialYield is how long the end with the greater peer ID waits after
	// a loss before it redials, and before its first dial of a new pool
	// peer (default 1s); the other end dials at once.
	// When both ends keep each other in a pool, both see the loss at the
	// same instant. With TCP port reuse (libp2p's default) two crossing
	// dials from the two listen ports become one TCP simultaneous open, in
	// which both ends send a TLS ClientHello; the handshake fails both ways
	// and the swarm's dial backoff then holds both ends off for 5 s or more.
	// The yielding end finds the link back and does not dial at all; if the
	// other end does not redial (a stock node), it dials after the wait.
	RedialYield time.Duration
}

// Pool keeps a set of peers protected and connected.
type Pool struct {
	m    *Manager
	h    PoolHost
	cfg  PoolConfig
	kick chan struct{}
	mu   sync.Mutex
	ps   map[peer.ID]*poolPeer
	ctx  context.Context
	stop func()
	wg   sync.WaitGroup
	// cluster is the IPFS Cluster peer source, if started.
	cluster atomic.Pointer[clusterSource]
}

type poolPeer struct {
	ai peer.AddrInfo
	// static is true for peers given by Add (configuration); fromCluster
	// for peers the cluster source lists now, with clusterAddrs its latest
	// addresses for them. A peer leaves the pool when neither holds.
	static        bool
	fromCluster   bool
	clusterAddrs  []ma.Multiaddr
	dialing       bool
	pinging       bool
	failures      int
	next          time.Time
	lastErr       string
	lastConnected time.Time
	lastPing      time.Time
	rtt           time.Duration
	reconnects    uint64
	losses        uint64
	yields        uint64
	failedDials   uint64
}

// addrInfo is the peer with its configured and cluster-reported addresses.
func (pp *poolPeer) addrInfo() peer.AddrInfo {
	ai := peer.AddrInfo{ID: pp.ai.ID, Addrs: make([]ma.Multiaddr, 0, len(pp.ai.Addrs)+len(pp.clusterAddrs))}
	ai.Addrs = append(append(ai.Addrs, pp.ai.Addrs...), pp.clusterAddrs...)
	return ai
}

func (pp *poolPeer) source() string {
	switch {
	case pp.static && pp.fromCluster:
		return "config+cluster"
	case pp.fromCluster:
		return "cluster"
	default:
		return "config"
	}
}

// PoolPeer is one pool peer's state, for Stats.
type PoolPeer struct {
	// ID is the peer.
	ID string `json:"id"`
	// Connected is true when the host has a connection to it now.
	Connected bool `json:"connected"`
	// Failures counts dial failures since the last success.
	Failures int `json:"failures"`
	// FailedDials counts every failed dial since the pool started.
	FailedDials uint64 `json:"failed_dials"`
	// NextDial is when the next redial is due (zero when connected).
	NextDial time.Time `json:"next_dial,omitempty"`
	// LastError is the last dial or ping error.
	LastError string `json:"last_error,omitempty"`
	// LastConnected is when a dial last succeeded or the peer was seen connected.
	LastConnected time.Time `json:"last_connected,omitempty"`
	// RTT is the last keep-alive round trip.
	RTT time.Duration `json:"rtt"`
	// Reconnects counts successful redials after a loss.
	Reconnects uint64 `json:"reconnects"`
	// Losses counts the times its last connection closed.
	Losses uint64 `json:"losses"`
	// Yields counts the losses after which this end waited RedialYield
	// for the peer to redial first.
	Yields uint64 `json:"yields"`
	// Source says where the peer comes from: "config", "cluster" or both.
	Source string `json:"source"`
}

// StartPool starts keeping cfg.Peers protected and connected through h. A
// manager has at most one pool; a second call is an error. The pool stops
// with the manager.
func (m *Manager) StartPool(h PoolHost, cfg PoolConfig) (*Pool, error) {
	if h == nil {
		return nil, errors.New("connmgr: StartPool needs a host")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, errors.New("connmgr: pool MaxBackoff is below MinBackoff")
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 30 * time.Second
	}
	if cfg.RedialYield <= 0 {
		cfg.RedialYield = time.Second
	}
	p := &Pool{m: m, h: h, cfg: cfg, kick: make(chan struct{}, 1), ps: map[peer.ID]*poolPeer{}}
	ctx, cancel := context.WithCancel(context.Background())
	p.ctx = ctx
	p.stop = func() { cancel(); p.wg.Wait() }
	if !m.pool.CompareAndSwap(nil, p) {
		cancel()
		return nil, errors.New("connmgr: a pool is already running")
	}
	for _, ai := range cfg.Peers {
		p.Add(ai)
	}
	p.wg.Add(1)
	go p.loop()
	return p, nil
}

// Add puts ai in the pool (or merges its addresses) and protects it.
func (p *Pool) Add(ai peer.AddrInfo) {
	p.m.Protect(ai.ID, PoolTag)
	p.mu.Lock()
	if pp, ok := p.ps[ai.ID]; ok {
		pp.ai.Addrs = append(pp.ai.Addrs, ai.Addrs...)
		pp.static = true
	} else {
		p.ps[ai.ID] = &poolPeer{ai: ai, static: true, next: p.firstDial(ai.ID)}
	}
	p.mu.Unlock()
	p.poke()
}

// setClusterPeers makes ais the pool's cluster-sourced peers: new ones are
// added and protected, the addresses of listed ones replaced, and those no
// longer listed leave the pool (and lose the pool's protection) unless they
// are also configured.
func (p *Pool) setClusterPeers(ais []peer.AddrInfo) {
	listed := make(map[peer.ID]peer.AddrInfo, len(ais))
	for _, ai := range ais {
		listed[ai.ID] = ai
	}
	var added, removed []peer.ID
	p.mu.Lock()
	for id, ai := range listed {
		pp, ok := p.ps[id]
		if !ok {
			pp = &poolPeer{ai: peer.AddrInfo{ID: id}, next: p.firstDial(id)}
			p.ps[id] = pp
			added = append(added, id)
		}
		pp.fromCluster, pp.clusterAddrs = true, ai.Addrs
	}
	for id, pp := range p.ps {
		if _, ok := listed[id]; ok || !pp.fromCluster {
			continue
		}
		pp.fromCluster, pp.clusterAddrs = false, nil
		if !pp.static {
			delete(p.ps, id)
			removed = append(removed, id)
		}
	}
	p.mu.Unlock()
	for _, id := range added {
		p.m.Protect(id, PoolTag)
	}
	for _, id := range removed {
		p.m.Unprotect(id, PoolTag)
	}
	if len(added) > 0 || len(removed) > 0 {
		log.Infow("cluster peer source changed the pool", "added", len(added), "removed", len(removed))
		p.poke()
	}
}

// ClusterStats returns the cluster source's state; false when none runs.
func (p *Pool) ClusterStats() (ClusterStats, bool) {
	cs := p.cluster.Load()
	if cs == nil {
		return ClusterStats{}, false
	}
	return cs.stats(), true
}

// Remove takes id out of the pool and lifts the pool's protection. The
// connection is left to the manager.
func (p *Pool) Remove(id peer.ID) {
	p.mu.Lock()
	delete(p.ps, id)
	p.mu.Unlock()
	p.m.Unprotect(id, PoolTag)
}

func (p *Pool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// disconnected is called by the manager when the last connection to id
// closed: a pool peer gets an immediate redial, or one after RedialYield
// when this end is the one that yields (yields).
func (p *Pool) disconnected(id peer.ID) {
	p.mu.Lock()
	pp, ok := p.ps[id]
	if ok {
		pp.losses++
		if pp.failures == 0 {
			pp.next = time.Time{}
			if p.yields(id) {
				pp.next = time.Now().Add(p.cfg.RedialYield)
				pp.yields++
			}
		}
	}
	p.mu.Unlock()
	if ok {
		p.poke()
	}
}

// firstDial is when a new pool peer is first dialled: at once, or after
// RedialYield at the yielding end (two nodes that start together and keep
// each other would otherwise dial each other at the same instant).
func (p *Pool) firstDial(id peer.ID) time.Time {
	if p.yields(id) {
		return time.Now().Add(p.cfg.RedialYield)
	}
	return time.Time{}
}

// yields reports whether this end waits for id to redial first after a
// loss: the end with the greater peer ID does, so that of two pools that
// keep each other exactly one dials at once.
func (p *Pool) yields(id peer.ID) bool {
	return p.h.ID() > id
}

func (p *Pool) backoff(failures int) time.Duration {
	d := p.cfg.MinBackoff
	for i := 1; i < failures && d < p.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.cfg.MaxBackoff)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}

func (p *Pool) loop() {
	defer p.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		p.check()
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
	}
}

// check starts the dials and pings that are due.
func (p *Pool) check() {
	now := time.Now()
	net := p.h.Network()
	// Ask the swarm without holding p.mu: the swarm's notifications take
	// p.mu (disconnected), so never wait for the swarm while holding it.
	p.mu.Lock()
	ids := make([]peer.ID, 0, len(p.ps))
	for id := range p.ps {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	connected := make(map[peer.ID]bool, len(ids))
	for _, id := range ids {
		connected[id] = net.Connectedness(id) == network.Connected
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, pp := range p.ps {
		if connected[id] {
			pp.lastConnected = now
			if p.cfg.Ping != nil && !pp.pinging && now.Sub(pp.lastPing) >= p.cfg.KeepAlive {
				pp.pinging = true
				p.wg.Add(1)
				go p.ping(id)
			}
			continue
		}
		if pp.dialing || now.Before(pp.next) {
			continue
		}
		pp.dialing = true
		p.wg.Add(1)
		go p.dial(pp.addrInfo(), !pp.lastConnected.IsZero())
	}
}

func (p *Pool) dial(ai peer.AddrInfo, wasConnected bool) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout)
	err := p.h.Connect(ctx, ai)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	pp, ok := p.ps[ai.ID]
	if !ok {
		return
	}
	pp.dialing = false
	if err != nil {
		pp.failures++
		pp.failedDials++
		pp.lastErr = err.Error()
		pp.next = time.Now().Add(p.backoff(pp.failures))
		log.Debugw("pool redial failed", "peer", ai.ID, "failures", pp.failures, "err", err)
		return
	}
	if wasConnected {
		pp.reconnects++
	}
	pp.failures, pp.lastErr, pp.next = 0, "", time.Time{}
	pp.lastConnected = time.Now()
}

func (p *Pool) ping(id peer.ID) {
	defer p.wg.Done()
	rtt, err := p.cfg.Ping(p.ctx, id)
	p.mu.Lock()
	defer p.mu.Unlock()
	pp, ok := p.ps[id]
	if !ok {
		return
	}
	pp.pinging = false
	pp.lastPing = time.Now()
	if err != nil {
		pp.lastErr = "ping: " + err.Error()
		return
	}
	pp.rtt = rtt
}

// State returns every pool peer's state, sorted by ID.
func (p *Pool) State() []PoolPeer {
	net := p.h.Network()
	p.mu.Lock()
	out := make([]PoolPeer, 0, len(p.ps))
	for id, pp := range p.ps {
		s := PoolPeer{
			ID: id.String(), Failures: pp.failures, LastError: pp.lastErr,
			LastConnected: pp.lastConnected, RTT: pp.rtt, Reconnects: pp.reconnects,
			Losses: pp.losses, Yields: pp.yields, FailedDials: pp.failedDials, Source: pp.source(),
		}
		if !pp.next.IsZero() {
			s.NextDial = pp.next
		}
		out = append(out, s)
	}
	p.mu.Unlock()
	for i := range out {
		id, _ := peer.Decode(out[i].ID)
		out[i].Connected = net.Connectedness(id) == network.Connected
		if out[i].Connected {
			out[i].NextDial = time.Time{}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
