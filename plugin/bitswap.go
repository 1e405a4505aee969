package plugin

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/client"
	"github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/bitswap/tracer"
	"github.com/ipfs/boxo/blockstore"
	bsexchange "github.com/ipfs/boxo/exchange"
	kconfig "github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/core"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/fx"

	"github.com/kubo-highload/highload/exchange"
	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// defaultPrefetch is Config.Bitswap.Prefetch when unset (its default tag):
// 256 wants in flight per fetch session, links to blocks of up to 64 KiB
// only (exchange.PrefetchMaxBlock).
const defaultPrefetch = 256

// bsPolicy is the adaptive policy of the node built last (Kubo may build
// more than one node per process; the last one is what the command and the
// metrics show).
var bsPolicy atomic.Pointer[exchange.Policy]

// bsCollector reports whichever policy bsPolicy holds at scrape time, so
// registering it twice, or before a node exists, is harmless.
var bsCollector = exchange.NewCollector(func() exchange.Stats {
	if p := bsPolicy.Load(); p != nil {
		return p.Stats()
	}
	return exchange.Stats{}
})

// pfCollector reports whichever prefetcher bsPrefetch holds at scrape time
// (nothing while there is none).
var pfCollector = exchange.NewPrefetchCollector(func() (exchange.PrefetchStats, bool) {
	if p := bsPrefetch.Load(); p != nil {
		return p.Stats(), true
	}
	return exchange.PrefetchStats{}, false
})

// BitswapLive returns the adaptive policy's stats for
// `ipfs stats highload bitswap`, or false when no policy runs.
func BitswapLive() (exchange.Stats, bool) {
	p := bsPolicy.Load()
	if p == nil {
		return exchange.Stats{}, false
	}
	return p.Stats(), true
}

func init() {
	registerComponent(component{
		name:  "bitswap",
		order: 50,
		init: func(_, r *hlconfig.Config) error {
			if _, _, err := exchangeConfig(r.Bitswap); err != nil {
				return err
			}
			if r.Bitswap.Enabled.WithDefault(true) {
				hlstate.SetComponent("bitswap", hlstate.StatusIdle, "no Bitswap on this node (offline)")
			} else {
				hlstate.SetComponent("bitswap", hlstate.StatusDisabled, "Config.Bitswap.Enabled is false")
			}
			return nil
		},
		options: func(_ core.FXNodeInfo, cfg, r *hlconfig.Config) ([]fx.Option, error) {
			if !r.Bitswap.Enabled.WithDefault(true) {
				return nil, nil
			}
			// One DirectWants per node: the Bitswap options make it a
			// tracer, the prefetcher sends through it.
			var direct *exchange.DirectWants
			w := r.Bitswap.Prefetch.WithDefault(defaultPrefetch)
			if w > 0 && r.Bitswap.PrefetchDirect.WithDefault(true) {
				direct = exchange.NewDirectWants()
			}
			opts := []fx.Option{fx.Decorate(bitswapDecorator(cfg.Bitswap, r.Bitswap, direct))}
			if w > 0 {
				opts = append(opts, fx.Decorate(prefetchDecorator(int(w), direct)))
			}
			return opts, nil
		},
		start: func(n *core.IpfsNode, _, r *hlconfig.Config) error {
			if r.Metrics.Enabled.WithDefault(true) {
				if err := registerCollector(pfCollector); err != nil {
					return err
				}
			}
			p := bsPolicy.Load()
			if p == nil || !n.IsOnline {
				return nil
			}
			if r.Bitswap.DisconnectAbusive.WithDefault(true) && n.PeerHost != nil {
				// plugin/pools.go: a pool sized by its backlog.
				p.SetOnTrip(disconnectOnTrip(n.Context(), n.PeerHost.Network(), p))
			}
			if r.Metrics.Enabled.WithDefault(true) {
				if err := registerCollector(bsCollector); err != nil {
					return err
				}
			}
			if n.Peering != nil {
				// `ipfs swarm peering add/rm` change the peering set at
				// run time; follow it.
				_, extra, _ := exchangeConfig(r.Bitswap)
				go followPeering(n.Context(), p, n.Peering.ListPeers, extra)
			}
			return nil
		},
	})
}

type prefetchIn struct {
	fx.In
	Exchange   bsexchange.Interface
	Blockstore blockstore.Blockstore
	// Host and LC start the direct wants (none offline); Bitswap's server
	// counts the bytes they bring in its ledger.
	Host    host.Host        `optional:"true"`
	LC      fx.Lifecycle     `optional:"true"`
	Bitswap *bitswap.Bitswap `optional:"true"`
}

// prefetchDecorator wraps Kubo's exchange so each fetch session asks for
// links ahead of the walker. The exchange stays the same Bitswap underneath;
// nd.Bitswap (which the bitswap commands use) is untouched. An exchange
// without sessions (offline) is returned unchanged.
func prefetchDecorator(width int, direct *exchange.DirectWants) func(prefetchIn) bsexchange.Interface {
	return func(in prefetchIn) bsexchange.Interface {
		sx, ok := in.Exchange.(bsexchange.SessionExchange)
		if !ok {
			return in.Exchange
		}
		if direct.Attached() && in.Host != nil && in.LC != nil {
			// Sends on a network of its own on the node's host; the
			// replies come through Kubo's Bitswap, whose tracers it is.
			ctx, cancel := context.WithCancel(context.Background())
			in.LC.Append(fx.Hook{OnStop: func(context.Context) error { cancel(); return nil }})
			if in.Bitswap != nil && in.Bitswap.Server != nil {
				direct.OnReceived(in.Bitswap.Server.ReceivedBlocks)
			}
			direct.Start(ctx, in.Host)
		} else {
			direct = nil
		}
		px := exchange.NewPrefetchExchange(sx, in.Blockstore, width, direct)
		if p, ok := px.(*exchange.PrefetchExchange); ok {
			bsPrefetch.Store(p)
		}
		return px
	}
}

// followPeering refreshes the priority class from Kubo's peering service
// plus the configured extra peers until ctx ends.
func followPeering(ctx context.Context, p *exchange.Policy, list func() []peer.AddrInfo, extra []peer.ID) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		ids := append([]peer.ID(nil), extra...)
		for _, ai := range list() {
			ids = append(ids, ai.ID)
		}
		p.SetPriorityPeers(ids)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// exchangeConfig turns the resolved Bitswap section into the policy's
// config and the extra priority peers, naming the key that is wrong.
func exchangeConfig(r *hlconfig.BitswapConfig) (exchange.Config, []peer.ID, error) {
	c := exchange.DefaultConfig()
	if r == nil {
		return c, nil, nil
	}
	var extra []peer.ID
	if s := strings.TrimSpace(r.PriorityPeers.WithDefault("none")); s != "" && s != "none" {
		for _, f := range strings.Split(s, ",") {
			id, err := peer.Decode(strings.TrimSpace(f))
			if err != nil {
				return c, nil, fmt.Errorf("Config.Bitswap.PriorityPeers: %q is not a peer ID: %w", strings.TrimSpace(f), err)
			}
			extra = append(extra, id)
		}
	}
	c.MinShare[exchange.ClassPriority] = int(r.PriorityShare.WithDefault(80))
	c.MinShare[exchange.ClassGood] = int(r.GoodShare.WithDefault(10))
	c.MinShare[exchange.ClassUnknown] = int(r.UnknownShare.WithDefault(10))
	if sum := c.MinShare[0] + c.MinShare[1] + c.MinShare[2]; sum > 100 {
		return c, nil, fmt.Errorf("Config.Bitswap.PriorityShare + GoodShare + UnknownShare = %d%%; they may add up to at most 100", sum)
	}
	c.PeerRate[exchange.ClassGood] = int(r.GoodPeerRate.WithDefault(20000))
	c.PeerRate[exchange.ClassUnknown] = int(r.UnknownPeerRate.WithDefault(5000))
	c.PeerPending[exchange.ClassGood] = int(r.GoodPeerPending.WithDefault(1024))
	c.PeerPending[exchange.ClassUnknown] = int(r.UnknownPeerPending.WithDefault(512))
	c.GlobalPending = int(r.GlobalPending.WithDefault(65536))
	c.Breaker.Cooldown = r.BreakerCooldown.WithDefault(5 * time.Second)
	c.Breaker.MaxCooldown = r.BreakerMaxCooldown.WithDefault(time.Minute)
	c.Breaker.Ramp = r.BreakerRamp.WithDefault(time.Second)
	c.Hold = r.AbusiveHold.WithDefault(time.Second)
	if c.Breaker.MaxCooldown < c.Breaker.Cooldown {
		return c, nil, fmt.Errorf("Config.Bitswap.BreakerMaxCooldown %v is shorter than BreakerCooldown %v", c.Breaker.MaxCooldown, c.Breaker.Cooldown)
	}
	if err := c.Validate(); err != nil {
		return c, nil, fmt.Errorf("Config.Bitswap: %w", err)
	}
	return c, extra, nil
}

type bitswapOptionsIn struct {
	fx.In
	Opts []bitswap.Option `group:"bitswap-options"`
	// Cfg is Kubo's config, for Peering.Peers.
	Cfg *kconfig.Config `optional:"true"`
	// LC closes the policy with the node.
	LC fx.Lifecycle `optional:"true"`
}

type bitswapOptionsOut struct {
	fx.Out
	Opts []bitswap.Option `group:"bitswap-options"`
}

// bitswapOptions turns the keys set in c into Bitswap options, with a
// human-readable list of what they set. Unset keys add nothing, so Kubo's
// Internal.Bitswap stays in force for them.
func bitswapOptions(c *hlconfig.BitswapConfig) ([]bitswap.Option, []string) {
	if c == nil {
		return nil, nil
	}
	var opts []bitswap.Option
	var applied []string
	if !c.MaxOutstandingBytesPerPeer.IsDefault() {
		n := c.MaxOutstandingBytesPerPeer.WithDefault(0)
		opts = append(opts, bitswap.MaxOutstandingBytesPerPeer(int(n)))
		applied = append(applied, fmt.Sprintf("MaxOutstandingBytesPerPeer=%s", c.MaxOutstandingBytesPerPeer))
	}
	if !c.TargetMessageSize.IsDefault() {
		n := c.TargetMessageSize.WithDefault(0)
		opts = append(opts, bitswap.WithTargetMessageSize(int(n)))
		applied = append(applied, fmt.Sprintf("TargetMessageSize=%s", c.TargetMessageSize))
	}
	if !c.WantHaveReplaceSize.IsDefault() {
		n := c.WantHaveReplaceSize.WithDefault(0)
		opts = append(opts, bitswap.WithWantHaveReplaceSize(int(n)))
		applied = append(applied, fmt.Sprintf("WantHaveReplaceSize=%s", c.WantHaveReplaceSize))
	}
	for _, w := range []struct {
		name string
		v    interface {
			IsDefault() bool
			WithDefault(int64) int64
		}
		opt func(int) bitswap.Option
	}{
		{"TaskWorkerCount", c.TaskWorkerCount, bitswap.TaskWorkerCount},
		{"EngineTaskWorkerCount", c.EngineTaskWorkerCount, bitswap.EngineTaskWorkerCount},
		{"EngineBlockstoreWorkerCount", c.EngineBlockstoreWorkerCount, bitswap.EngineBlockstoreWorkerCount},
	} {
		if w.v.IsDefault() { // nil-safe, like all of Kubo's Optional types
			continue
		}
		n := w.v.WithDefault(0)
		opts = append(opts, w.opt(int(n)))
		applied = append(applied, fmt.Sprintf("%s=%d", w.name, n))
	}
	return opts, applied
}

// bitswapDecorator appends our options to Kubo's bitswap-options group:
// the static caps set in c (as written) and, when r.Adaptive is on, the
// exchange policy's filter, comparator and tracer. Later options win, and
// decorating (rather than providing into the group) keeps the order stable:
// dig shuffles undecorated group values.
func bitswapDecorator(c, r *hlconfig.BitswapConfig, direct *exchange.DirectWants) func(bitswapOptionsIn) (bitswapOptionsOut, error) {
	return func(in bitswapOptionsIn) (bitswapOptionsOut, error) {
		ours, applied := bitswapOptions(c)
		copts, capplied := bitswapClientOptions(c, r)
		ours, applied = append(ours, copts...), append(applied, capplied...)
		var polTracer tracer.Tracer
		if r != nil && r.Adaptive.WithDefault(true) {
			xc, extra, err := exchangeConfig(r)
			if err != nil {
				return bitswapOptionsOut{}, err
			}
			pol, err := exchange.New(xc, exchange.WithPressure(bitswapPressureLevel), exchange.WithSlowPeers(slowByConnMgr),
				exchange.WithOutstandingCap(outstandingCap(c, in.Cfg)))
			if err != nil {
				return bitswapOptionsOut{}, err
			}
			prio := append([]peer.ID(nil), extra...)
			if in.Cfg != nil {
				for _, ai := range in.Cfg.Peering.Peers {
					prio = append(prio, ai.ID)
				}
			}
			pol.SetPriorityPeers(prio)
			if in.LC != nil {
				in.LC.Append(fx.Hook{OnStop: func(context.Context) error {
					bsPolicy.CompareAndSwap(pol, nil)
					return pol.Close()
				}})
			}
			bsPolicy.Store(pol)
			hlstate.SetLive("bitswap", func() any { return withPrefetch(pol.Stats()) })
			ours = append(ours,
				bitswap.WithPeerBlockRequestFilter(pol.Filter),
				bitswap.WithTaskComparator(pol.Compare))
			polTracer = pol
		}
		// Not bitswap.WithTracer: with it set, boxo replaces the server's
		// tracer, and the direct wants must see each message at the end of
		// the server's handling, after the client's duplicate count
		// (exchange.SplitTracer). The client's tracer sees a message before
		// the server's engine, as the policy needs; both see what they send.
		serving := in.Cfg == nil || in.Cfg.Bitswap.ServerEnabled.WithDefault(kconfig.DefaultBitswapServerEnabled)
		var recv, early tracer.Tracer
		if direct != nil && serving {
			recv, early = direct, direct.Senders()
			direct.Attach()
		}
		if polTracer != nil || early != nil {
			ours = append(ours, bitswap.WithClientOption(client.WithTracer(exchange.Tracers(polTracer, early))))
		}
		if polTracer != nil || recv != nil {
			ours = append(ours, bitswap.WithServerOption(server.WithTracer(exchange.SplitTracer(recv, polTracer))))
		}
		// The detail lists static overrides only (the tests of the static
		// caps read it); `ipfs stats highload bitswap` shows the policy.
		detail := "no overrides set; Kubo's Internal.Bitswap applies"
		if len(applied) > 0 {
			detail = "applied: " + strings.Join(applied, ", ")
		}
		hlstate.SetComponent("bitswap", hlstate.StatusActive, detail)
		out := make([]bitswap.Option, 0, len(in.Opts)+len(ours))
		out = append(out, in.Opts...)
		out = append(out, ours...)
		return bitswapOptionsOut{Opts: out}, nil
	}
}
