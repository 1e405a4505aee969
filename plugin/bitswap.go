package plugin

import (
	"fmt"
	"strings"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/kubo/core"
	"go.uber.org/fx"

	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

func init() {
	registerComponent(component{
		name:  "bitswap",
		order: 50,
		init: func(_, r *hlconfig.Config) error {
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
			return []fx.Option{fx.Decorate(bitswapDecorator(cfg.Bitswap))}, nil
		},
	})
}

type bitswapOptionsIn struct {
	fx.In
	Opts []bitswap.Option `group:"bitswap-options"`
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

// bitswapDecorator appends our options to Kubo's bitswap-options group.
// Later options win, and decorating (rather than providing into the group)
// keeps the order stable: dig shuffles undecorated group values.
func bitswapDecorator(c *hlconfig.BitswapConfig) func(bitswapOptionsIn) bitswapOptionsOut {
	return func(in bitswapOptionsIn) bitswapOptionsOut {
		ours, applied := bitswapOptions(c)
		detail := "no overrides set; Kubo's Internal.Bitswap applies"
		if len(applied) > 0 {
			detail = "applied: " + strings.Join(applied, ", ")
		}
		hlstate.SetComponent("bitswap", hlstate.StatusActive, detail)
		out := make([]bitswap.Option, 0, len(in.Opts)+len(ours))
		out = append(out, in.Opts...)
		out = append(out, ours...)
		return bitswapOptionsOut{Opts: out}
	}
}
