package fetch

import (
	"context"
	"fmt"
	"net/url"

	"github.com/kubo-highload/highload/bench/internal/daemon"
)

// spread is how a multi-provider fetch was split among the providers, as
// the fetcher's Bitswap saw it.
type spread struct {
	// Recv is the bytes each provider sent the fetcher (its Bitswap
	// ledger), in the order of the providers.
	Recv []uint64
	// DupBlocks is the fetcher's count of blocks received more than once.
	DupBlocks uint64
}

// topShare is the largest provider's share of the bytes received, in
// percent: 100/len(recv) for an even split, 100 when one provider served
// everything. It is 0 when nothing was received.
func topShare(recv []uint64) float64 {
	var total, top uint64
	for _, r := range recv {
		total += r
		top = max(top, r)
	}
	if total == 0 {
		return 0
	}
	return 100 * float64(top) / float64(total)
}

// readSpread asks the fetcher for its ledger with each provider and its
// duplicate-block count. boxo's session chooses, for each CID, one peer to
// send want-block to, favouring the peers that delivered first before
// (session/peerresponsetracker.go), so the split is rarely even
// (docs/bitswap.md, "Fourth pass: W3").
func readSpread(ctx context.Context, fetcher *daemon.Node, providers []*daemon.Node) (spread, error) {
	var s spread
	for _, p := range providers {
		var led struct{ Recv uint64 }
		if err := fetcher.RPCJSON(ctx, "bitswap/ledger", url.Values{"arg": {p.PeerID()}}, &led); err != nil {
			return s, fmt.Errorf("fetch: bitswap ledger of %s on %s: %w", p.Name, fetcher.Name, err)
		}
		s.Recv = append(s.Recv, led.Recv)
	}
	var st struct{ DupBlksReceived uint64 }
	if err := fetcher.RPCJSON(ctx, "stats/bitswap", nil, &st); err != nil {
		return s, fmt.Errorf("fetch: stats bitswap on %s: %w", fetcher.Name, err)
	}
	s.DupBlocks = st.DupBlksReceived
	return s, nil
}
