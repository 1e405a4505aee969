package plugin

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	kconfig "github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/core"
	klibp2p "github.com/ipfs/kubo/core/node/libp2p"
	"github.com/ipfs/kubo/repo"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/kubo-highload/highload/connmgr"
	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
	"github.com/kubo-highload/highload/tlsbatch"
)

func init() {
	registerComponent(component{
		name:  "connmgr",
		order: 50,
		init: func(_, r *hlconfig.Config) error {
			if !r.ConnMgr.Enabled.WithDefault(true) {
				hlstate.SetComponent("connmgr", hlstate.StatusDisabled, "Config.ConnMgr.Enabled is false; Kubo's BasicConnMgr runs")
				return nil
			}
			if _, err := protectedPeers(r.ConnMgr.ProtectedPeers); err != nil {
				return err
			}
			if _, err := clusterAPI(r.ConnMgr); err != nil {
				return err
			}
			hlstate.SetComponent("connmgr", hlstate.StatusIdle, "no libp2p host on this node (offline)")
			return nil
		},
		options: func(_ core.FXNodeInfo, _, r *hlconfig.Config) ([]fx.Option, error) {
			if !r.ConnMgr.Enabled.WithDefault(true) {
				return nil, nil
			}
			return []fx.Option{fx.Decorate(hostOptionDecorator(r.ConnMgr))}, nil
		},
		start: startConnMgr,
	})
}

// connMgrPressure, when set, feeds the manager's pressure level (0 none .. 3
// critical). The health component (not built yet) sets it with
// setConnMgrPressure; until then the pressure is 0 and only churn, demand
// and the rcmgr clamp move the watermarks.
var connMgrPressure atomic.Pointer[func() int]

// setConnMgrPressure sets the pressure source read by the running manager
// at each adaptation step (nil removes it).
func setConnMgrPressure(f func() int) {
	if f == nil {
		connMgrPressure.Store(nil)
		return
	}
	connMgrPressure.Store(&f)
}

func connMgrPressureLevel() int {
	if f := connMgrPressure.Load(); f != nil {
		return (*f)()
	}
	return 0
}

// current is the manager of the node being built (Kubo builds one host per
// daemon; the last one wins).
var current struct {
	sync.Mutex
	m *connmgr.Manager
}

// connMgrQuality returns the running manager's quality function, for the
// Bitswap policy; nil when no adaptive manager runs.
func connMgrQuality() func(peer.ID) connmgr.Quality {
	current.Lock()
	defer current.Unlock()
	if current.m == nil {
		return nil
	}
	return current.m.Quality
}

// slowByConnMgr tells the Bitswap policy whether the connection to id is
// slow by the adaptive connection manager's quality (latency above
// Config.ConnMgr.SlowLatency); false when no adaptive manager runs. The
// manager is looked up on each call because Bitswap is built before the
// host's manager is known to be ours.
func slowByConnMgr(id peer.ID) bool {
	q := connMgrQuality()
	return q != nil && q(id).Slow
}

type hostOptionIn struct {
	fx.In
	Opt  klibp2p.HostOption
	Repo repo.Repo
}

// hostOptionDecorator wraps Kubo's HostOption: it appends a last raw libp2p
// option that closes the connection manager Kubo configured and sets ours,
// built from Swarm.ConnMgr and c, clamped below the resource manager that
// libp2p.Config holds by then.
func hostOptionDecorator(c *hlconfig.ConnMgrConfig) func(hostOptionIn) klibp2p.HostOption {
	return func(in hostOptionIn) klibp2p.HostOption {
		return func(id peer.ID, ps peerstore.Peerstore, opts ...libp2p.Option) (host.Host, error) {
			kcfg, err := in.Repo.Config()
			if err != nil {
				return nil, err
			}
			if kcfg.Swarm.ConnMgr.Type.WithDefault(kconfig.DefaultConnMgrType) == "none" {
				hlstate.SetComponent("connmgr", hlstate.StatusDisabled, "Swarm.ConnMgr.Type is \"none\": no connection manager")
				return in.Opt(id, ps, opts...)
			}
			var mgr *connmgr.Manager
			swap := func(lc *libp2p.Config) error {
				limit := rcmgrConnLimit(lc.ResourceManager)
				mc, err := connMgrSettings(kcfg.Swarm, c, limit())
				if err != nil {
					return err
				}
				mc.Limit = limit
				mc.Pressure = connMgrPressureLevel
				mc.Bandwidth = lc.Reporter
				mc.Latency = ps.LatencyEWMA
				if lc.ConnManager != nil {
					_ = lc.ConnManager.Close()
				}
				if mgr, err = connmgr.New(mc); err != nil {
					return fmt.Errorf("highload: %w", err)
				}
				lc.ConnManager = mgr
				tuneMuxers(lc, c)
				if c.BatchTLSWrites.WithDefault(true) {
					batchTLSWrites(lc)
				}
				if c.WatchStreams.WithDefault(true) {
					for i := range lc.Muxers {
						lc.Muxers[i].Muxer = mgr.WatchStreams(lc.Muxers[i].Muxer)
					}
				}
				return nil
			}
			opts = append(opts, swap)
			h, err := in.Opt(id, ps, opts...)
			if err != nil {
				if mgr != nil {
					_ = mgr.Close()
				}
				return nil, err
			}
			current.Lock()
			current.m = mgr
			current.Unlock()
			return h, nil
		}
	}
}

// batchTLSWrites swaps the constructor of go-libp2p's TLS security
// transport for tlsbatch.New: the same protocol, with the records of each
// write sent in one syscall. Noise and the other transports are left alone.
func batchTLSWrites(lc *libp2p.Config) {
	for i := range lc.SecurityTransports {
		if lc.SecurityTransports[i].ID == tlsbatch.ID {
			lc.SecurityTransports[i].Constructor = tlsbatch.New
		}
	}
}

var (
	descTLSRecords = prometheus.NewDesc("highload_connmgr_tls_records_total",
		"TLS records written through batches (Config.ConnMgr.BatchTLSWrites).", nil, nil)
	descTLSWrites = prometheus.NewDesc("highload_connmgr_tls_writes_total",
		"Write syscalls the batched TLS records took.", nil, nil)
	descTLSBytes = prometheus.NewDesc("highload_connmgr_tls_bytes_total",
		"Bytes written through TLS batches.", nil, nil)
)

// tlsBatchCollector reports tlsbatch's process-wide counters.
type tlsBatchCollector struct{}

// Describe sends the descriptors.
func (tlsBatchCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTLSRecords
	ch <- descTLSWrites
	ch <- descTLSBytes
}

// Collect reads the counters.
func (tlsBatchCollector) Collect(ch chan<- prometheus.Metric) {
	s := tlsbatch.ReadStats()
	ch <- prometheus.MustNewConstMetric(descTLSRecords, prometheus.CounterValue, float64(s.Records))
	ch <- prometheus.MustNewConstMetric(descTLSWrites, prometheus.CounterValue, float64(s.Writes))
	ch <- prometheus.MustNewConstMetric(descTLSBytes, prometheus.CounterValue, float64(s.Bytes))
}

// tuneMuxers replaces the yamux muxer's config with a copy carrying the
// idle-cost settings of c (keep-alive, RTT measurement, stream backlog). The
// other muxers (none in Kubo today) are left alone.
func tuneMuxers(lc *libp2p.Config, c *hlconfig.ConnMgrConfig) {
	for i, m := range lc.Muxers {
		t, ok := m.Muxer.(*yamux.Transport)
		if !ok {
			continue
		}
		yc := *t.Config()
		yc.KeepAliveInterval = c.MuxerKeepAlive.WithDefault(yc.KeepAliveInterval)
		yc.MeasureRTTInterval = c.MuxerRTTInterval.WithDefault(yc.MeasureRTTInterval)
		yc.AcceptBacklog = int(c.MuxerAcceptBacklog.WithDefault(int64(yc.AcceptBacklog)))
		lc.Muxers[i].Muxer = (*yamux.Transport)(&yc)
	}
}

// rcmgrConnLimit reads the resource manager's live system limits: the
// smallest of Conns, ConnsInbound, Streams and StreamsInbound. Kubo refuses
// to start unless Swarm.ConnMgr.HighWater is below all four
// (ensureConnMgrMakeSenseVsResourceMgr), so the live HighWater keeps to
// the same rule; with Kubo's computed limits only ConnsInbound is finite
// (max(1 per MiB of MaxMemory, 2 x HighWater)). The FD limit is left out:
// QUIC connections take no descriptor, so it bounds only part of the
// connections. 0 means no limit (rcmgr disabled, or all four unlimited).
func rcmgrConnLimit(rm network.ResourceManager) func() int {
	return func() int {
		if rm == nil {
			return 0
		}
		n := 0
		_ = rm.ViewSystem(func(s network.ResourceScope) error {
			l, ok := s.(rcmgr.ResourceScopeLimiter)
			if !ok {
				return nil
			}
			lim := l.Limit()
			for _, v := range []int{lim.GetConnTotalLimit(), lim.GetConnLimit(network.DirInbound),
				lim.GetStreamTotalLimit(), lim.GetStreamLimit(network.DirInbound)} {
				if v > 0 && v < math.MaxInt && (n == 0 || v < n) {
					n = v
				}
			}
			return nil
		})
		return n
	}
}

// connMgrSettings turns Swarm.ConnMgr and the resolved plugin section into
// the manager's config, refusing inverted watermarks and bounds at or above
// the resource manager's connection limit (0: none) with a message naming
// the keys.
func connMgrSettings(sw kconfig.SwarmConfig, c *hlconfig.ConnMgrConfig, limit int) (connmgr.Config, error) {
	low := int(sw.ConnMgr.LowWater.WithDefault(kconfig.DefaultConnMgrLowWater))
	high := int(sw.ConnMgr.HighWater.WithDefault(kconfig.DefaultConnMgrHighWater))
	grace := sw.ConnMgr.GracePeriod.WithDefault(kconfig.DefaultConnMgrGracePeriod)
	silence := sw.ConnMgr.SilencePeriod.WithDefault(kconfig.DefaultConnMgrSilencePeriod)
	if high <= 0 || low < 0 || low >= high {
		return connmgr.Config{}, fmt.Errorf("highload: Swarm.ConnMgr.LowWater (%d) must be at least 0 and below Swarm.ConnMgr.HighWater (%d)", low, high)
	}
	mc := connmgr.Config{
		LowWater: low, HighWater: high, GracePeriod: grace, TrimInterval: silence,
		MinHighWater:    int(c.MinHighWater.WithDefault(0)),
		MaxHighWater:    int(c.MaxHighWater.WithDefault(0)),
		MinGracePeriod:  c.MinGracePeriod.WithDefault(0),
		MaxGracePeriod:  grace,
		MaxTrimPerRound: int(c.MaxTrimPerRound.WithDefault(0)),
		RoundPause:      c.RoundPause.WithDefault(0),
		AdaptInterval:   c.AdaptInterval.WithDefault(0),
		SlowLatency:     c.SlowLatency.WithDefault(0),
	}
	if mc.MinHighWater > high {
		return mc, fmt.Errorf("highload: Config.ConnMgr.MinHighWater (%d) is above Swarm.ConnMgr.HighWater (%d)", mc.MinHighWater, high)
	}
	if mc.MaxHighWater > 0 && mc.MaxHighWater < high {
		return mc, fmt.Errorf("highload: Config.ConnMgr.MaxHighWater (%d) is below Swarm.ConnMgr.HighWater (%d)", mc.MaxHighWater, high)
	}
	if mc.MinGracePeriod > grace {
		return mc, fmt.Errorf("highload: Config.ConnMgr.MinGracePeriod (%s) is above Swarm.ConnMgr.GracePeriod (%s)", mc.MinGracePeriod, grace)
	}
	if limit > 0 {
		minHigh := mc.MinHighWater
		if minHigh == 0 {
			minHigh = max(high/2, low+1)
		}
		if minHigh >= limit {
			return mc, fmt.Errorf("highload: Config.ConnMgr.MinHighWater (%d) must be below the resource manager's connection limit (%d, from Swarm.ResourceMgr)", minHigh, limit)
		}
		if mc.MaxHighWater >= limit {
			return mc, fmt.Errorf("highload: Config.ConnMgr.MaxHighWater (%d) must be below the resource manager's connection limit (%d, from Swarm.ResourceMgr); set 0 to follow the limit", mc.MaxHighWater, limit)
		}
	}
	return mc, nil
}

// protectedPeers parses Config.ConnMgr.ProtectedPeers: multiaddrs ending in
// /p2p/<id>, or bare peer IDs. Entries for the same peer are merged.
func protectedPeers(list []string) ([]peer.AddrInfo, error) {
	byID := map[peer.ID]int{}
	var out []peer.AddrInfo
	for i, s := range list {
		var ai peer.AddrInfo
		if id, err := peer.Decode(s); err == nil {
			ai.ID = id
		} else {
			a, err := ma.NewMultiaddr(s)
			var pi *peer.AddrInfo
			if err == nil {
				pi, err = peer.AddrInfoFromP2pAddr(a)
			}
			if err != nil {
				return nil, fmt.Errorf("highload: Config.ConnMgr.ProtectedPeers[%d]: %q is neither a multiaddr ending in /p2p/<peer id> nor a peer ID: %v", i, s, err)
			}
			ai = *pi
		}
		if j, ok := byID[ai.ID]; ok {
			out[j].Addrs = append(out[j].Addrs, ai.Addrs...)
			continue
		}
		byID[ai.ID] = len(out)
		out = append(out, ai)
	}
	return out, nil
}

// clusterAPI returns Config.ConnMgr.ClusterAPI checked, or "" when it is
// unset or "none". A malformed URL is refused here, at startup; an API that
// cannot be reached or answers badly is only reported in the stats.
func clusterAPI(c *hlconfig.ConnMgrConfig) (string, error) {
	s := strings.TrimSpace(c.ClusterAPI.WithDefault("none"))
	if s == "" || s == "none" {
		return "", nil
	}
	if _, err := connmgr.ParseClusterURL(s); err != nil {
		return "", fmt.Errorf("highload: Config.ConnMgr.ClusterAPI: %w", err)
	}
	return s, nil
}

func clusterNote(url string) string {
	if url == "" {
		return ""
	}
	return " plus the IPFS Cluster's /peers"
}

// startConnMgr runs in the daemon: when the host uses our manager it starts
// the persistent pool, publishes the live stats and registers the metrics.
func startConnMgr(n *core.IpfsNode, _, r *hlconfig.Config) error {
	c := r.ConnMgr
	if !c.Enabled.WithDefault(true) || !n.IsOnline || n.PeerHost == nil {
		return nil
	}
	m, ok := n.PeerHost.ConnManager().(*connmgr.Manager)
	if !ok {
		return nil // Swarm.ConnMgr.Type "none": status already says so
	}
	peers, err := protectedPeers(c.ProtectedPeers)
	if err != nil {
		return err
	}
	if c.UsePeering.WithDefault(true) {
		kcfg, err := n.Repo.Config()
		if err != nil {
			return err
		}
		peers = append(peers, kcfg.Peering.Peers...)
	}
	cluster, err := clusterAPI(c)
	if err != nil {
		return err
	}
	if len(peers) > 0 || cluster != "" {
		pool, err := m.StartPool(n.PeerHost, connmgr.PoolConfig{
			Peers:      peers,
			MinBackoff: c.ReconnectMinBackoff.WithDefault(0),
			MaxBackoff: c.ReconnectMaxBackoff.WithDefault(0),
			KeepAlive:  c.KeepAlive.WithDefault(0),
			Ping:       connmgr.HostPinger(n.PeerHost),
		})
		if err != nil {
			return fmt.Errorf("highload: connmgr pool: %w", err)
		}
		if cluster != "" {
			if err := pool.StartCluster(connmgr.ClusterConfig{
				URL: cluster, Interval: c.ClusterRefresh.WithDefault(0), Self: n.Identity,
			}); err != nil {
				return fmt.Errorf("highload: Config.ConnMgr.ClusterAPI: %w", err)
			}
		}
	}
	batched := c.BatchTLSWrites.WithDefault(true)
	hlstate.SetLive("connmgr", func() any {
		s := m.Stats()
		if batched {
			t := tlsbatch.ReadStats()
			s.TLSWrites = &connmgr.TLSWrites{Records: t.Records, Writes: t.Writes, Bytes: t.Bytes}
		}
		return s
	})
	if r.Metrics.Enabled.WithDefault(true) {
		if err := registerCollector(connmgr.Collector{M: m}); err != nil {
			return err
		}
		if batched {
			if err := registerCollector(tlsBatchCollector{}); err != nil {
				return err
			}
		}
	}
	hlstate.SetComponent("connmgr", hlstate.StatusActive, fmt.Sprintf(
		"adaptive manager in the host: LowWater %d, HighWater %d (bounds %d-%d), grace %s, %d pool peers%s; yamux keep-alive %s, RTT %s, backlog %d; TLS writes batched: %v",
		m.LowWater(), m.HighWater(), m.Stats().Bounds.MinHighWater, m.Stats().Bounds.MaxHighWater, m.GracePeriod(), len(peers), clusterNote(cluster),
		c.MuxerKeepAlive.WithDefault(0), c.MuxerRTTInterval.WithDefault(0), c.MuxerAcceptBacklog.WithDefault(0), batched))
	return nil
}
