package exchange

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A flooder let back in half-open re-trips as soon as it asks more than
// its breaker's admitted share of the rate (1/8 of it at first), not after
// a full second of the class's rate; a peer asking under that share is
// let back in and, once its breaker has closed, has the full rate again.
func TestHalfOpenScalesTheFloodLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerRate[ClassUnknown] = 800 // 100/s while half-open at 1/8
	cfg.PeerPending[ClassUnknown] = 0
	p, clk := newTestPolicy(t, cfg)
	flooder, calm := peer.ID("flooder"), peer.ID("calm")
	for _, id := range []peer.ID{flooder, calm} {
		want(p, id, 801) // over the rate: both trip
		if s := p.peer(id).br.Snapshot(clk.now()).State; s != Open {
			t.Fatalf("%s: breaker %s after 801 wants, want open", id, s)
		}
	}
	clk.add(cfg.Breaker.Cooldown)
	if s := p.peer(flooder).br.Snapshot(clk.now()).State; s != HalfOpen {
		t.Fatalf("after the cooldown the breaker is %s, want half-open", s)
	}
	trips := p.Stats().Trips["flood"]
	want(p, flooder, 101) // one more than 1/8 of 800 within the second
	if s := p.peer(flooder).br.Snapshot(clk.now()).State; s != Open {
		t.Fatalf("half-open flooder after 101 wants in 1 s: breaker %s, want open again", s)
	}
	if got := p.Stats().Trips["flood"] - trips; got != 1 {
		t.Fatalf("re-trips %d, want 1", got)
	}

	// The calm peer asks 90 a second while half-open: never re-tripped,
	// and closed after the ramp it may ask the full rate again.
	for i := 0; i < 4; i++ {
		want(p, calm, 90)
		if s := p.peer(calm).br.Snapshot(clk.now()).State; s == Open {
			t.Fatalf("calm peer re-tripped at 90 wants/s while half-open (step %d)", i)
		}
		clk.add(cfg.Breaker.Ramp)
	}
	if s := p.peer(calm).br.Snapshot(clk.now()).State; s != Closed {
		t.Fatalf("calm peer's breaker %s after the ramp, want closed", s)
	}
	if got := want(p, calm, 800); got != 800 {
		t.Fatalf("closed again: admitted %d of 800", got)
	}
	if s := p.peer(calm).br.Snapshot(clk.now()).State; s != Closed {
		t.Fatalf("calm peer at the full rate: breaker %s, want closed", s)
	}
}
