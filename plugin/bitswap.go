package plugin

import (
	"fmt"
	"strings"

	"github.com/ipfs/boxo/bitswap"
	"go.uber.org/fx"

	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

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
