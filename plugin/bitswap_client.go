package plugin

import (
	"fmt"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/client"
	kconfig "github.com/ipfs/kubo/config"

	"github.com/kubo-highload/highload/plugin/hlconfig"
)

// bitswapClientOptions turns the client keys set in c (as written, so unset
// keys leave boxo's behaviour) into Bitswap options, with a human-readable
// list of what they set.
//
// The DONT_HAVE timeout is what stalled fetches under CPU load
// (docs/bitswap.md, Stalls): boxo's client counts a want-block its peer has
// not answered within twice the measured message latency (at least 50 ms
// on loopback) as a DONT_HAVE, and drops a peer with 16 of those in a row
// from the session.
func bitswapClientOptions(c *hlconfig.BitswapConfig) ([]bitswap.Option, []string) {
	if c == nil {
		return nil, nil
	}
	var opts []bitswap.Option
	var applied []string
	if c.SimulateDontHaveOnTimeout != kconfig.Default {
		on := c.SimulateDontHaveOnTimeout.WithDefault(true)
		opts = append(opts, bitswap.SetSimulateDontHavesOnTimeout(on))
		applied = append(applied, fmt.Sprintf("SimulateDontHaveOnTimeout=%t", on))
	}
	if !c.DontHaveMinTimeout.IsDefault() {
		d := c.DontHaveMinTimeout.WithDefault(0)
		opts = append(opts, bitswap.WithClientOption(client.WithDontHaveTimeoutConfig(dontHaveTimeoutConfig(d))))
		applied = append(applied, fmt.Sprintf("DontHaveMinTimeout=%s", d))
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
