package exchange

import (
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/libp2p/go-libp2p/core/peer"
)

// sentDontHaves tells the policy the server sent id n DONT_HAVEs.
func sentDontHaves(p *Policy, id peer.ID, n int) {
	m := bsmsg.New(false)
	for i := 0; i < n; i++ {
		m.AddDontHave(testCID(1000 + i))
	}
	p.MessageSent(id, m)
}

// A peer we answer with DONT_HAVEs that has more than its pending limit of
// wants refused for backlog within one second trips for flood, under the
// rate limit; one backlog's worth of refusals per second does not, and a
// busy client (mostly served blocks) never trips this way.
func TestBacklogRefusalsTripAFlooder(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerRate[ClassUnknown] = 1000 // never reached here
	cfg.PeerPending[ClassUnknown] = 10
	cfg.GoodMinBlocks = 1 << 20 // everyone stays unknown
	p, clk := newTestPolicy(t, cfg)
	calm, flooder, client := peer.ID("calm"), peer.ID("flooder"), peer.ID("client")
	state := func(id peer.ID) State { return p.peer(id).br.Snapshot(clk.now()).State }

	// One large wantlist a second: 10 queued, 10 refused for backlog,
	// all 20 answered DONT_HAVE within the second.
	for i := 0; i < 3; i++ {
		want(p, calm, 20)
		if s := state(calm); s != Closed {
			t.Fatalf("second %d: one backlog's worth refused tripped the peer (%s)", i, s)
		}
		sentDontHaves(p, calm, 20)
		clk.add(time.Second)
	}
	// 10 queued, 11 refused within the second: a flooder.
	want(p, flooder, 21)
	if s := state(flooder); s != Open {
		t.Fatalf("11 refused for backlog in 1 s: breaker %s, want open", s)
	}
	if got := p.Stats().Trips["flood"]; got != 1 {
		t.Fatalf("flood trips %d, want 1", got)
	}
	// The same asks from a peer we mostly send blocks to.
	sentBlocks(p, client, 30)
	want(p, client, 41)
	if s := state(client); s != Closed {
		t.Fatalf("busy client tripped by its backlog: %s", s)
	}
}
