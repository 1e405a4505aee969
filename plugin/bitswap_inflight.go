package plugin

import (
	kconfig "github.com/ipfs/kubo/config"

	"github.com/kubo-highload/highload/plugin/hlconfig"
)

// kuboOutstandingBytesPerPeer is Kubo's (and boxo's) MaxOutstandingBytesPerPeer
// when neither Config.Bitswap nor Internal.Bitswap sets it
// (core/node.DefaultMaxOutstandingBytesPerPeer).
const kuboOutstandingBytesPerPeer = 1 << 20

// outstandingCap is the MaxOutstandingBytesPerPeer the Bitswap server is
// built with: ours when set (our option comes after Kubo's), else Kubo's
// Internal.Bitswap value, else Kubo's default. The policy's comparator
// needs it to move a peer at that cap below the others
// (exchange/inflight.go).
func outstandingCap(c *hlconfig.BitswapConfig, kc *kconfig.Config) int {
	if c != nil && !c.MaxOutstandingBytesPerPeer.IsDefault() {
		return int(c.MaxOutstandingBytesPerPeer.WithDefault(kuboOutstandingBytesPerPeer))
	}
	if kc != nil && kc.Internal.Bitswap != nil {
		return int(kc.Internal.Bitswap.MaxOutstandingBytesPerPeer.WithDefault(kuboOutstandingBytesPerPeer))
	}
	return kuboOutstandingBytesPerPeer
}
