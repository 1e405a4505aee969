package plugin

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/client"
	kconfig "github.com/ipfs/kubo/config"

	"github.com/kubo-highload/highload/exchange"
	"github.com/kubo-highload/highload/plugin/hlconfig"
)

// boxoDontHaveMinTimeout is boxo's own shortest DONT_HAVE timeout.
var boxoDontHaveMinTimeout = client.DefaultDontHaveTimeoutConfig().MinTimeout

// bitswapClientOptions turns the client keys into Bitswap options. Unlike
// the server caps they apply from the resolved section r, defaults
// included: the plugin's default for SimulateDontHaveOnTimeout (false) is
// not boxo's. applied names the keys written in c, for the component's
// detail line.
//
// The DONT_HAVE timeout is what stalled fetches under CPU load
// (docs/bitswap.md, Stalls): boxo's client counts a want-block its peer has
// not answered within twice the measured message latency (at least 50 ms,
// which is what loopback gives) as a DONT_HAVE, and drops a peer with 16 of
// those in a row from the session.
func bitswapClientOptions(c, r *hlconfig.BitswapConfig) ([]bitswap.Option, []string) {
	if r == nil {
		return nil, nil
	}
	sim := r.SimulateDontHaveOnTimeout.WithDefault(false)
	opts := []bitswap.Option{bitswap.SetSimulateDontHavesOnTimeout(sim)}
	lo := r.DontHaveMinTimeout.WithDefault(boxoDontHaveMinTimeout)
	if lo != boxoDontHaveMinTimeout {
		opts = append(opts, bitswap.WithClientOption(client.WithDontHaveTimeoutConfig(dontHaveTimeoutConfig(lo))))
	}
	var applied []string
	if c != nil && c.SimulateDontHaveOnTimeout != kconfig.Default {
		applied = append(applied, fmt.Sprintf("SimulateDontHaveOnTimeout=%t", sim))
	}
	if c != nil && !c.DontHaveMinTimeout.IsDefault() {
		applied = append(applied, fmt.Sprintf("DontHaveMinTimeout=%s", lo))
	}
	return opts, applied
}

// dontHaveTimeoutConfig is boxo's default DONT_HAVE timeout config with
// lo as the shortest timeout; the longest is raised to lo if it was
// shorter, so the bounds stay ordered.
func dontHaveTimeoutConfig(lo time.Duration) *client.DontHaveTimeoutConfig {
	cfg := client.DefaultDontHaveTimeoutConfig()
	cfg.MinTimeout = lo
	if cfg.MaxTimeout < lo {
		cfg.MaxTimeout = lo
	}
	if cfg.DontHaveTimeout < lo {
		cfg.DontHaveTimeout = lo
	}
	return cfg
}

// bsPrefetch is the prefetching exchange of the node built last, if any.
var bsPrefetch atomic.Pointer[exchange.PrefetchExchange]

// withPrefetch adds the prefetcher's counters to the policy's stats.
func withPrefetch(s exchange.Stats) exchange.Stats {
	if p := bsPrefetch.Load(); p != nil {
		ps := p.Stats()
		s.Prefetch = &ps
	}
	return s
}
