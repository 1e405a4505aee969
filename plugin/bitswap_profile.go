package plugin

import (
	kconfig "github.com/ipfs/kubo/config"
)

// profileProvideStrategy is what the highload profile sets as
// Provide.Strategy when the user has not chosen one. Kubo's default, "all",
// announces every block a node stores, including each block Bitswap fetches:
// about 9% of a fetcher's CPU on W1 (docs/bitswap.md). Pinned content and
// MFS are what a pinning service or gateway means to announce.
const profileProvideStrategy = "pinned+mfs"

func init() { addProfileStep("bitswap provide policy", applyProvidePolicy) }

// applyProvidePolicy sets Provide.Strategy to profileProvideStrategy unless
// the user already set one.
func applyProvidePolicy(c *kconfig.Config) error {
	if c.Provide.Strategy != nil && !c.Provide.Strategy.IsDefault() {
		return nil
	}
	if _, err := kconfig.ParseProvideStrategy(profileProvideStrategy); err != nil {
		return err
	}
	c.Provide.Strategy = kconfig.NewOptionalString(profileProvideStrategy)
	return nil
}
