package exchange

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

type clock struct{ ns atomic.Int64 }

func newClock() *clock               { c := &clock{}; c.ns.Store(time.Unix(1_000_000, 0).UnixNano()); return c }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

func testCID(i int) cid.Cid {
	h, _ := mh.Sum([]byte{byte(i), byte(i >> 8), byte(i >> 16)}, mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h)
}

func newTestPolicy(t *testing.T, cfg Config, opts ...Option) (*Policy, *clock) {
	t.Helper()
	clk := newClock()
	p, err := New(cfg, append([]Option{WithClock(clk.now), withoutLoop()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, clk
}

// want runs n filter calls for id and returns how many were admitted.
func want(p *Policy, id peer.ID, n int) int {
	k := 0
	for i := 0; i < n; i++ {
		if p.Filter(id, testCID(i)) {
			k++
		}
	}
	return k
}

// sent tells the policy the server sent n presences to id.
func sent(p *Policy, id peer.ID, n int) {
	m := bsmsg.New(false)
	for i := 0; i < n; i++ {
		m.AddDontHave(testCID(i))
	}
	p.MessageSent(id, m)
}

func TestFloodTripsAndRecoversGradually(t *testing.T) {
	cfg := DefaultConfig()
	// 1,000/s: the 64 wants per second asked while half-open stay under
	// the half-open allowance (1/8 of the rate, then 1/4, ...; halfopen.go).
	cfg.PeerRate[ClassUnknown] = 1000
	cfg.PeerPending[ClassUnknown] = 0
	p, clk := newTestPolicy(t, cfg)
	flooder, calm := peer.ID("flooder"), peer.ID("calm")

	tripped := make(chan peer.ID, 4)
	p.SetOnTrip(func(id peer.ID, f Fault) {
		if f == FaultFlood {
			tripped <- id
		}
	})
	if got := want(p, flooder, 1000); got != 1000 {
		t.Fatalf("under the rate: admitted %d of 1000", got)
	}
	if got := want(p, flooder, 50); got != 0 {
		t.Fatalf("over the rate: admitted %d of 50, want all shed", got)
	}
	select {
	case id := <-tripped:
		if id != flooder {
			t.Fatalf("OnTrip got %s", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnTrip was not called")
	}
	if got := want(p, calm, 50); got != 50 {
		t.Fatalf("a calm peer was shed: %d of 50", got)
	}
	s := p.Stats()
	if s.Trips["flood"] != 1 || s.Classes[ClassUnknown].Shed["breaker"] != 50 || s.BreakerPeers["open"] != 1 {
		t.Fatalf("stats after flood: trips %v shed %v breakers %v", s.Trips, s.Classes[ClassUnknown].Shed, s.BreakerPeers)
	}
	// Flood stops; after the cooldown a fraction is let back in, growing.
	clk.add(cfg.Breaker.Cooldown)
	first := want(p, flooder, 64)
	clk.add(cfg.Breaker.Ramp)
	second := want(p, flooder, 64)
	if first == 0 || first >= second || second == 64 {
		t.Fatalf("half-open admitted %d then %d of 64, want a growing fraction", first, second)
	}
	clk.add(4 * cfg.Breaker.Ramp)
	if got := want(p, flooder, 64); got != 64 {
		t.Fatalf("after recovery admitted %d of 64", got)
	}
	if n := p.Stats().PeerTransitions["half-open->closed"]; n != 1 {
		t.Fatalf("half-open->closed transitions %d", n)
	}
}

// sentBlocks tells the policy the server sent n blocks to id.
func sentBlocks(p *Policy, id peer.ID, n int) {
	m := bsmsg.New(false)
	for i := 0; i < n; i++ {
		m.AddBlock(blocks.NewBlock([]byte{byte(i), byte(i >> 8), 'b'}))
	}
	p.MessageSent(id, m)
}

// A peer over the rate that we mostly serve blocks to is a busy client, not
// a flooder: it is not tripped. The same rate of wants we answer with
// DONT_HAVE trips it.
func TestBusyClientIsNotAFlooder(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerRate[ClassUnknown] = 100
	cfg.PeerPending[ClassUnknown] = 0
	cfg.GoodMinBlocks = 1 << 20 // both stay in the unknown class
	p, _ := newTestPolicy(t, cfg)
	client, flooder := peer.ID("client"), peer.ID("flooder")

	want(p, client, 60)
	sentBlocks(p, client, 60)
	want(p, flooder, 60)
	sent(p, flooder, 60)
	if got := want(p, client, 90); got != 90 {
		t.Fatalf("busy client over the rate: admitted %d of 90", got)
	}
	if got := want(p, flooder, 90); got == 90 {
		t.Fatal("a peer answered only with DONT_HAVE was not tripped over the rate")
	}
	s := p.Stats()
	if s.Trips["flood"] != 1 {
		t.Fatalf("flood trips %d, want 1 (the flooder only)", s.Trips["flood"])
	}
}

// Blocks served long ago buy no flood allowance: a peer that fetched, then
// two rate windows later floods wants we answer with DONT_HAVE, trips.
func TestFormerClientFloodingTrips(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerRate[ClassUnknown] = 100
	cfg.PeerPending[ClassUnknown] = 0
	cfg.GoodMinBlocks = 1 << 20 // stays in the unknown class and its rate
	p, clk := newTestPolicy(t, cfg)
	id := peer.ID("turncoat")

	want(p, id, 90)
	sentBlocks(p, id, 90)
	clk.add(1100 * time.Millisecond)
	want(p, id, 1)
	clk.add(1100 * time.Millisecond)
	want(p, id, 60)
	sent(p, id, 60)
	if got := want(p, id, 90); got == 90 {
		t.Fatal("a former client flooding wants answered with DONT_HAVE was not tripped")
	}
	if n := p.Stats().Trips["flood"]; n != 1 {
		t.Fatalf("flood trips %d, want 1", n)
	}
}

func TestPriorityPeerNotShed(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GlobalPending = 1000
	cfg.PeerRate[ClassUnknown] = 0
	cfg.PeerPending[ClassUnknown] = 0
	p, clk := newTestPolicy(t, cfg)
	vip := peer.ID("vip")
	p.SetPriorityPeers([]peer.ID{vip})
	if c := p.ClassOf(vip); c != ClassPriority {
		t.Fatalf("class %v", c)
	}
	// Three unknown peers queue 600 entries each: load 1.8 -> the unknown
	// class is shed, the priority peer is not.
	for _, id := range []peer.ID{"a", "b", "c"} {
		want(p, id, 600)
	}
	clk.add(time.Millisecond)
	p.sample(clk.now())
	if s := p.Stats(); s.Load < 1 || s.Classes[ClassUnknown].Global.State != Open {
		t.Fatalf("load %.2f, unknown global breaker %v", s.Load, s.Classes[ClassUnknown].Global.Name)
	}
	if got := want(p, "d", 10); got != 0 {
		t.Fatalf("unknown peer admitted %d under overload", got)
	}
	if got := want(p, vip, 500); got != 500 {
		t.Fatalf("priority peer admitted %d of 500 under overload", got)
	}
	if n := p.Stats().Classes[ClassUnknown].Shed["overload"]; n != 10 {
		t.Fatalf("overload sheds %d", n)
	}
}

func TestOverloadShedsLowClassesFirst(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GlobalPending = 1000
	cfg.PeerPending = [NumClasses]int{}
	cfg.PeerRate = [NumClasses]int{}
	p, clk := newTestPolicy(t, cfg)
	good := peer.ID("good")
	blk := blocks.NewBlock([]byte("x"))
	m := bsmsg.New(false)
	m.AddBlock(blk)
	for i := 0; i < cfg.GoodMinBlocks; i++ {
		p.MessageSent(good, m)
	}
	if c := p.ClassOf(good); c != ClassGood {
		t.Fatalf("a peer that fetched %d blocks is %v", cfg.GoodMinBlocks, c)
	}
	want(p, "u", 1200) // load 1.2: unknown shed, good not
	p.sample(clk.now())
	if got, g := want(p, "u2", 10), want(p, good, 10); got != 0 || g != 10 {
		t.Fatalf("load 1.2: unknown admitted %d, good %d of 10: %+v", got, g, p.Stats())
	}
	want(p, "u3", 1000) // load > 2: good shed too
	p.sample(clk.now())
	if g := want(p, good, 10); g != 0 {
		t.Fatalf("load >2: good admitted %d", g)
	}
	// Load falls (nothing asked, estimates decay, sends drain): classes
	// come back through half-open.
	for _, id := range []peer.ID{"u", "u2", "u3", good} {
		sent(p, id, 2000)
	}
	for i := 0; i < 40; i++ {
		clk.add(cfg.Tick)
		p.sample(clk.now())
	}
	clk.add(cfg.Breaker.MaxCooldown)
	p.sample(clk.now())
	if s := p.Stats(); s.Classes[ClassGood].Global.State == Open || s.Classes[ClassUnknown].Global.State == Open {
		t.Fatalf("after load fell: good %v unknown %v, load %.2f", s.Classes[ClassGood].Global.Name, s.Classes[ClassUnknown].Global.Name, s.Load)
	}
}

func TestPressureScalesLimits(t *testing.T) {
	var level atomic.Int64
	cfg := DefaultConfig()
	p, clk := newTestPolicy(t, cfg, WithPressure(func() int { return int(level.Load()) }))
	base := p.Stats().Classes[ClassUnknown].PeerRate
	level.Store(1)
	p.sample(clk.now())
	elevated := p.Stats().Classes[ClassUnknown].PeerRate
	if base != int64(cfg.PeerRate[ClassUnknown]) || elevated >= base {
		t.Fatalf("rate limit %d at normal, %d at elevated pressure", base, elevated)
	}
	level.Store(2)
	p.sample(clk.now())
	if s := p.Stats(); s.Classes[ClassUnknown].Global.State != Open || s.Classes[ClassGood].Global.State != Open {
		t.Fatalf("critical pressure: unknown %v good %v", s.Classes[ClassUnknown].Global.Name, s.Classes[ClassGood].Global.Name)
	}
}

func TestBacklogLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerPending[ClassUnknown] = 10
	cfg.PeerRate[ClassUnknown] = 0
	p, _ := newTestPolicy(t, cfg)
	if got := want(p, "x", 15); got != 10 {
		t.Fatalf("admitted %d of 15 with a pending limit of 10", got)
	}
	sent(p, "x", 15)
	if got := want(p, "x", 5); got != 5 {
		t.Fatalf("after the queue drained admitted %d of 5", got)
	}
}

func TestGarbageTrips(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxEntries = 10
	p, clk := newTestPolicy(t, cfg)
	big := bsmsg.New(true)
	for i := 0; i < 11; i++ {
		big.AddEntry(testCID(i), 1, pb.Message_Wantlist_Have, true)
	}
	id := peer.ID("junk")
	for i := 0; i < cfg.GarbageStrikes; i++ {
		if got := want(p, id, 1); got != 1 {
			t.Fatalf("strike %d: shed before the breaker tripped", i)
		}
		p.MessageReceived(id, big)
		clk.add(time.Millisecond)
	}
	if got := want(p, id, 5); got != 0 {
		t.Fatalf("after %d oversized wantlists admitted %d", cfg.GarbageStrikes, got)
	}
	idHash, _ := mh.Sum([]byte("x"), mh.IDENTITY, -1)
	bad := bsmsg.New(false)
	bad.AddEntry(cid.NewCidV1(cid.Raw, idHash), 1, pb.Message_Wantlist_Block, true)
	p.MessageReceived("other", bad)
	if s := p.Stats(); s.Trips["garbage"] != 1 || s.Malformed != uint64(cfg.GarbageStrikes)+1 {
		t.Fatalf("trips %v malformed %d", s.Trips, s.Malformed)
	}
	p.MessageReceived("other", nil) // never panics
	for i := 0; i < cfg.GarbageStrikes; i++ {
		p.ReportTimeout("slow")
	}
	if got := p.Stats().Trips["timeout"]; got != 1 {
		t.Fatalf("timeout trips %d", got)
	}
}

func TestKnobs(t *testing.T) {
	p, clk := newTestPolicy(t, DefaultConfig())
	byName := map[string]Knob{}
	for _, k := range p.Knobs() {
		byName[k.Name] = k
	}
	k, ok := byName["bitswap.peer_rate.unknown"]
	if !ok {
		t.Fatalf("knobs %v", byName)
	}
	if err := k.Set(-1); err == nil {
		t.Fatal("negative rate accepted")
	}
	if err := k.Set(42); err != nil || k.Get() != 42 {
		t.Fatalf("set 42: %v, get %d", err, k.Get())
	}
	p.sample(clk.now())
	if got := p.Stats().Classes[ClassUnknown].PeerRate; got != 42 {
		t.Fatalf("live limit %d after set 42", got)
	}
	if err := byName["bitswap.min_share.good"].Set(60); err == nil {
		t.Fatal("shares adding up past 100 accepted")
	}
}

func TestConfigErrors(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"MinShare":      func(c *Config) { c.MinShare[ClassGood] = 90 },
		"PeerRate":      func(c *Config) { c.PeerRate[ClassUnknown] = -1 },
		"GlobalPending": func(c *Config) { c.GlobalPending = 0 },
		"Cooldown":      func(c *Config) { c.Breaker.Cooldown = 0 },
		"Tick":          func(c *Config) { c.Tick = 0 },
	} {
		cfg := DefaultConfig()
		mut(&cfg)
		_, err := New(cfg)
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestCloseTwice(t *testing.T) {
	p, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close()
}

// wantlist is a wantlist message asking for n CIDs.
func wantlist(n int) bsmsg.BitSwapMessage {
	m := bsmsg.New(true)
	for i := 0; i < n; i++ {
		m.AddEntry(testCID(i), 1, pb.Message_Wantlist_Block, true)
	}
	return m
}

func TestHoldBackPressuresOpenBreakers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerRate[ClassUnknown] = 100
	cfg.PeerPending[ClassUnknown] = 0
	cfg.Breaker.Cooldown = 5 * time.Second
	cfg.Hold = time.Second
	var waits []time.Duration
	p, clk := newTestPolicy(t, cfg, withSleep(func(_ context.Context, d time.Duration) { waits = append(waits, d) }))
	flooder, calm, prio := peer.ID("flooder"), peer.ID("calm"), peer.ID("prio")
	p.SetPriorityPeers([]peer.ID{prio})

	// Closed breakers: nobody waits.
	p.MessageReceived(flooder, wantlist(10))
	p.MessageReceived(calm, wantlist(10))
	if len(waits) != 0 {
		t.Fatalf("closed breakers held %v", waits)
	}
	want(p, flooder, 101) // over the rate: trips
	if s := p.peer(flooder).br.Snapshot(clk.now()).State; s != Open {
		t.Fatalf("flooder's breaker is %s, want open", s)
	}
	p.MessageReceived(flooder, wantlist(10))
	if len(waits) != 1 || waits[0] != time.Second {
		t.Fatalf("open breaker, 5 s left: waits %v, want [1s] (capped by Hold)", waits)
	}
	// Near the end of the cooldown the wait is what is left of it.
	clk.add(4700 * time.Millisecond)
	p.MessageReceived(flooder, wantlist(10))
	if len(waits) != 2 || waits[1] != 300*time.Millisecond {
		t.Fatalf("300 ms left: waits %v", waits)
	}
	// A message carrying blocks (the peer serving us) is never held.
	m := wantlist(1)
	m.AddBlock(blocks.NewBlock([]byte("x")))
	p.MessageReceived(flooder, m)
	if len(waits) != 2 {
		t.Fatalf("a message with blocks was held: %v", waits)
	}
	// Half-open: no hold.
	clk.add(time.Second)
	p.MessageReceived(flooder, wantlist(10))
	if len(waits) != 2 {
		t.Fatalf("half-open breaker held: %v", waits)
	}
	if got := p.Stats().Held; got != 2 {
		t.Fatalf("Stats().Held = %d, want 2", got)
	}

	// A priority peer is never held, even with its breaker open (garbage).
	p.ReportTimeout(prio)
	p.ReportTimeout(prio)
	p.ReportTimeout(prio)
	if s := p.peer(prio).br.Snapshot(clk.now()).State; s != Open {
		t.Fatalf("priority peer's breaker is %s after 3 timeouts, want open", s)
	}
	p.MessageReceived(prio, wantlist(10))
	if len(waits) != 2 {
		t.Fatalf("priority peer held: %v", waits)
	}
}

func TestHoldOffAndEndsWithClose(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerRate[ClassUnknown] = 10
	cfg.Hold = 0
	held := 0
	p, _ := newTestPolicy(t, cfg, withSleep(func(context.Context, time.Duration) { held++ }))
	want(p, "flooder", 11)
	p.MessageReceived("flooder", wantlist(10))
	if held != 0 {
		t.Fatal("Hold 0 held a message")
	}

	// The real wait ends when the policy closes.
	cfg.Hold = time.Hour
	cfg.Breaker.Cooldown, cfg.Breaker.MaxCooldown = time.Hour, time.Hour
	q, _ := newTestPolicy(t, cfg)
	want(q, "flooder", 11)
	done := make(chan struct{})
	go func() {
		q.MessageReceived("flooder", wantlist(10))
		close(done)
	}()
	for i := 0; q.Stats().Held == 0; i++ {
		if i > 1000 {
			t.Fatal("the message was not held")
		}
		time.Sleep(time.Millisecond)
	}
	q.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a held message outlived Close")
	}
	bad := DefaultConfig()
	bad.Hold = -time.Second
	if _, err := New(bad); err == nil || !errors.Is(err, ErrConfig) {
		t.Fatalf("negative Hold: err %v", err)
	}
}

func TestHoldWaitsForTheBacklogToDrain(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerPending[ClassUnknown] = 100
	cfg.PeerRate[ClassUnknown] = 0
	cfg.Hold = time.Second
	var p *Policy
	var clk *clock
	polls := 0
	busy := peer.ID("busy")
	p, clk = newTestPolicy(t, cfg, withSleep(func(_ context.Context, d time.Duration) {
		polls++
		clk.add(d)
		if polls == 3 {
			sent(p, busy, 60) // the server answers part of the backlog
		}
	}))
	if got := want(p, busy, 99); got != 99 {
		t.Fatalf("admitted %d of 99", got)
	}
	p.MessageReceived(busy, wantlist(10)) // 99 queued: under the limit
	if polls != 0 {
		t.Fatalf("under the pending limit: %d polls", polls)
	}
	want(p, busy, 1) // 100 queued: at the limit
	p.MessageReceived(busy, wantlist(10))
	if polls != 3 {
		t.Fatalf("held for %d polls, want 3 (until the server answered 60)", polls)
	}
	// Nothing drains: the hold gives up after cfg.Hold.
	want(p, busy, 60)
	polls = 10
	start := clk.now()
	p.MessageReceived(busy, wantlist(10))
	if waited := clk.now().Sub(start); waited < cfg.Hold || waited > cfg.Hold+holdPoll {
		t.Fatalf("held %v with nothing drained, want Hold (%v)", waited, cfg.Hold)
	}
	if got := p.Stats().Held; got != 2 {
		t.Fatalf("Stats().Held = %d, want 2", got)
	}
}

// A peer with a good exchange record whose connection the quality source
// rates slow is served as unknown until the link recovers; priority peers
// keep their class whatever their link.
func TestSlowPeerLeavesTheGoodClass(t *testing.T) {
	var mu sync.Mutex
	slow := map[peer.ID]bool{}
	isSlow := func(id peer.ID) bool { mu.Lock(); defer mu.Unlock(); return slow[id] }
	setSlow := func(id peer.ID, v bool) { mu.Lock(); slow[id] = v; mu.Unlock() }

	cfg := DefaultConfig()
	p, clk := newTestPolicy(t, cfg, WithSlowPeers(isSlow))
	good, vip := peer.ID("good"), peer.ID("vip")
	p.SetPriorityPeers([]peer.ID{vip})
	m := bsmsg.New(false)
	m.AddBlock(blocks.NewBlock([]byte("x")))
	for i := 0; i < cfg.GoodMinBlocks; i++ {
		p.MessageSent(good, m)
		p.MessageSent(vip, m)
	}
	p.sample(clk.now())
	if c := p.ClassOf(good); c != ClassGood {
		t.Fatalf("fast good peer is %v", c)
	}
	setSlow(good, true)
	setSlow(vip, true)
	p.sample(clk.now())
	if c := p.ClassOf(good); c != ClassUnknown {
		t.Fatalf("slow good peer is %v, want unknown", c)
	}
	if c := p.ClassOf(vip); c != ClassPriority {
		t.Fatalf("slow priority peer is %v", c)
	}
	if n := p.Stats().SlowPeers; n != 1 {
		t.Fatalf("SlowPeers %d, want 1 (the good peer; the priority peer has no good record to lose)", n)
	}
	setSlow(good, false)
	clk.add(time.Second)
	p.sample(clk.now())
	if c := p.ClassOf(good); c != ClassGood {
		t.Fatalf("recovered peer is %v, want good", c)
	}
	if n := p.Stats().SlowPeers; n != 0 {
		t.Fatalf("SlowPeers %d after recovery", n)
	}
}
