package exchange

import (
	"context"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A wantlist of a peer whose breaker is still open after its hold reaches
// boxo empty (boxo's engine drops an empty message at once), and its wants
// count as shed by the breaker; one whose breaker left the open state
// during the hold reaches boxo whole.
func TestHeldWantlistDroppedWhileBreakerOpen(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerRate[ClassUnknown] = 100
	cfg.PeerPending[ClassUnknown] = 0
	cfg.Breaker.Cooldown = 5 * time.Second
	cfg.Hold = time.Second
	var clkAdd func(time.Duration)
	p, clk := newTestPolicy(t, cfg, withSleep(func(_ context.Context, d time.Duration) { clkAdd(d) }))
	clkAdd = clk.add
	flooder, prio := peer.ID("flooder"), peer.ID("prio")
	p.SetPriorityPeers([]peer.ID{prio})

	// Closed breaker: the wantlist is left alone.
	m := wantlist(10)
	p.MessageReceived(flooder, m)
	if n := len(m.Wantlist()); n != 10 || m.Empty() {
		t.Fatalf("closed breaker: %d wants left of 10", n)
	}
	want(p, flooder, 101) // over the rate: trips
	shedBefore := p.Stats().Classes[ClassUnknown].Shed["breaker"]

	// Open for 5 s, held 1 s: still open, so dropped.
	m = wantlist(10)
	p.MessageReceived(flooder, m)
	if !m.Empty() || m.Full() {
		t.Fatalf("open breaker after the hold: message not emptied (%d wants, full %v)", len(m.Wantlist()), m.Full())
	}
	s := p.Stats()
	if s.Held != 1 || s.Dropped != 1 {
		t.Fatalf("held %d dropped %d, want 1 and 1", s.Held, s.Dropped)
	}
	if got := s.Classes[ClassUnknown].Shed["breaker"] - shedBefore; got != 10 {
		t.Fatalf("dropped wants counted as shed: %d, want 10", got)
	}

	// A message carrying blocks is never held nor emptied.
	m = wantlist(3)
	m.AddBlock(blocks.NewBlock([]byte("x")))
	p.MessageReceived(flooder, m)
	if len(m.Wantlist()) != 3 || len(m.Blocks()) != 1 {
		t.Fatalf("a message with blocks was changed: %d wants, %d blocks", len(m.Wantlist()), len(m.Blocks()))
	}

	// 0.5 s of cooldown left: the hold waits it out, the breaker is
	// half-open, and the wantlist goes to boxo whole.
	clk.add(3500 * time.Millisecond)
	m = wantlist(10)
	p.MessageReceived(flooder, m)
	if len(m.Wantlist()) != 10 {
		t.Fatalf("breaker half-open after the hold: %d wants left of 10", len(m.Wantlist()))
	}
	if s := p.Stats(); s.Held != 2 || s.Dropped != 1 {
		t.Fatalf("held %d dropped %d, want 2 and 1", s.Held, s.Dropped)
	}

	// A priority peer's wantlist is never dropped, even with its breaker
	// open.
	p.ReportTimeout(prio)
	p.ReportTimeout(prio)
	p.ReportTimeout(prio)
	m = wantlist(10)
	p.MessageReceived(prio, m)
	if len(m.Wantlist()) != 10 {
		t.Fatalf("priority peer's wantlist changed: %d wants left", len(m.Wantlist()))
	}

	// Hold 0 turns the drop off with the hold.
	cfg.Hold = 0
	q, _ := newTestPolicy(t, cfg)
	want(q, flooder, 101)
	m = wantlist(10)
	q.MessageReceived(flooder, m)
	if len(m.Wantlist()) != 10 || q.Stats().Dropped != 0 {
		t.Fatalf("Hold 0: %d wants left, %d dropped", len(m.Wantlist()), q.Stats().Dropped)
	}
}
