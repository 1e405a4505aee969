package plugin

import (
	"fmt"

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

// profileServerCaps are the Bitswap server caps the highload profile
// writes in place of Kubo's values: bigger messages and more workers.
//
// Boxo's server opens a stream per message, and with Kubo's 16 KiB target
// each 16 KiB block is one message; measured with the full profile on
// W2-sized fetches (docs/bitswap.md), three pairs gave 4.5-4.7 s against
// 5.0-6.4 s, with a third less CPU on both daemons.
//
// The sizes are bounded by what the other side must hold: a fetcher reads
// every message whole into a pooled buffer rounded up to a power of two,
// so it holds about twice a peer's bytes in flight. 1 MiB messages with
// 32 MiB per peer made a W1 fetcher's peak RSS 1.3-1.45x stock's and a W4
// provider's 1.5x; 256 KiB messages with 4 MiB per peer still 1.2-1.4x
// (16 messages of 256 KiB in flight per peer, against Kubo's 4).
// MaxOutstandingBytesPerPeer therefore stays at Kubo's 1 MiB: the profile
// needed more only while the comparator kept a peer at that cap at the top
// of boxo's queue, which held every other peer behind it (W4 fell to 0.72
// of the 4 MiB setting). The policy now estimates each peer's bytes in
// flight and moves a peer at the cap down (exchange/inflight.go;
// docs/bitswap.md, "Memory of the caps").
//
// Why 256 KiB and not 1 MiB, measured on its own: the server fills a message until it
// reaches the target, so 1 MiB gave messages of 1 MiB plus framing (four
// 256 KiB blocks, or 64 of 16 KiB), and the receiver reads each whole
// message into a pooled buffer rounded up to a power of two (libp2p's
// go-buffer-pool via go-msgio): 2 MiB per message in flight. At 256 KiB a
// 256 KiB block is one message (as with Kubo's 16 KiB target) and 16 KiB
// blocks go 16 to a message. The fetcher's peak RSS on 128 MiB of 256 KiB
// blocks: 153-160 MB at 1 MiB, 130-150 MB at 768 KiB, 128 MB at 256 KiB
// (Kubo's caps: 112-116 MB); 64 MiB of 16 KiB blocks took 3.8-7.8 s at
// 256 KiB against 6.7-8.2 s at 768 KiB and 9.0-9.3 s with Kubo's caps
// (docs/bitswap.md, third pass).
//
// WantHaveReplaceSize stays at Kubo's 1 KiB. 12 KiB (inner nodes sent in
// answer to a want-have) saved W2's fetch about 40 ms of 20 ms message
// rounds, but a session with several such providers then ranked the one
// that answered first above the others (boxo chooses peers in proportion
// to the blocks each sent first) and took nearly every block from it: W3's
// top provider sent 100% of the file in most runs, against 60-80% with
// 1 KiB (docs/bitswap.md, "Fourteenth pass").
var profileServerCaps = []struct {
	key, kubo string
	value     any
}{
	{"TargetMessageSize", "16KiB", "256KiB"},
	{"TaskWorkerCount", "8", 16.0}, // float64, as JSON decodes it
}

func init() { addProfileStep("bitswap server caps", applyServerCaps) }

// applyServerCaps raises the caps in the plugin's Bitswap section that
// still hold Kubo's value (what the profile's first step writes for an
// unset key); a value the user changed is kept.
func applyServerCaps(c *kconfig.Config) error {
	pl, ok := c.Plugins.Plugins[Name]
	if !ok {
		return nil
	}
	m, ok := pl.Config.(map[string]any)
	if !ok {
		return nil
	}
	bs, ok := m["Bitswap"].(map[string]any)
	if !ok {
		return nil
	}
	for _, sc := range profileServerCaps {
		if v, ok := bs[sc.key]; ok && fmt.Sprint(v) == sc.kubo {
			bs[sc.key] = sc.value
		}
	}
	return nil
}
