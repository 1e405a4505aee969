package loadgen

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// newTargetHost is a libp2p host listening on loopback TCP, with no
// resource limits, standing in for a Kubo daemon.
func newTargetHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func addrInfo(h host.Host) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// recorder is a Bitswap receiver on a target that keeps every wantlist it
// gets, by sender.
type recorder struct {
	mu   sync.Mutex
	msgs map[peer.ID][]bsmsg.BitSwapMessage
}

func (r *recorder) ReceiveMessage(_ context.Context, p peer.ID, m bsmsg.BitSwapMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs[p] = append(r.msgs[p], m)
}
func (r *recorder) ReceiveError(error)       {}
func (r *recorder) PeerConnected(peer.ID)    {}
func (r *recorder) PeerDisconnected(peer.ID) {}

// total is the number of messages received from all peers.
func (r *recorder) total() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, msgs := range r.msgs {
		n += int64(len(msgs))
	}
	return n
}

// waitFor polls cond every 20 ms until it holds or 10 s pass.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func newRecorderTarget(t *testing.T) (peer.AddrInfo, *recorder) {
	h := newTargetHost(t)
	r := &recorder{msgs: map[peer.ID][]bsmsg.BitSwapMessage{}}
	n := bsnet.NewFromIpfsHost(h)
	n.Start(r)
	t.Cleanup(n.Stop)
	return addrInfo(h), r
}

// newBitswapTarget runs a real boxo Bitswap (server and client) on a
// loopback host, with the given blocks in its blockstore.
func newBitswapTarget(t *testing.T, blks []blocks.Block) peer.AddrInfo {
	t.Helper()
	h := newTargetHost(t)
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	ctx := context.Background()
	if err := bs.PutMany(ctx, blks); err != nil {
		t.Fatal(err)
	}
	b := bitswap.New(ctx, bsnet.NewFromIpfsHost(h), nil, bs)
	t.Cleanup(func() { b.Close() })
	return addrInfo(h)
}

func randomBlocks(t *testing.T, n, size int) ([]blocks.Block, []cid.Cid) {
	t.Helper()
	var bl []blocks.Block
	var cids []cid.Cid
	for i := 0; i < n; i++ {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum(data)
		if err != nil {
			t.Fatal(err)
		}
		b, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			t.Fatal(err)
		}
		bl = append(bl, b)
		cids = append(cids, c)
	}
	return bl, cids
}

func TestParseTargetLoopbackOnly(t *testing.T) {
	const id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	if _, err := ParseTarget("/ip4/127.0.0.1/tcp/4001/p2p/" + id); err != nil {
		t.Fatalf("loopback target refused: %v", err)
	}
	if _, err := ParseTarget("/ip6/::1/tcp/4001/p2p/" + id); err != nil {
		t.Fatalf("::1 target refused: %v", err)
	}
	for _, bad := range []string{
		"/ip4/10.0.0.1/tcp/4001/p2p/" + id,
		"/ip4/0.0.0.0/tcp/4001/p2p/" + id,
		"/dns4/localhost/tcp/4001/p2p/" + id,
		"/ip4/127.0.0.1/tcp/4001", // no peer ID
		"not a multiaddr",
	} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted a target it must refuse", bad)
		}
	}
	// Every mode checks too, not only the parser.
	remote := peer.AddrInfo{ID: peer.ID("x"), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/1")}}
	if _, err := Flood(context.Background(), FloodConfig{Target: remote, Peers: 1, Wants: 1, Rate: 1, Duration: time.Second}); err == nil {
		t.Error("Flood accepted a non-loopback target")
	}
	if _, err := OpenConns(context.Background(), ConnsConfig{Target: remote, N: 1}); err == nil {
		t.Error("OpenConns accepted a non-loopback target")
	}
	if _, err := Garbage(context.Background(), GarbageConfig{Target: remote}); err == nil {
		t.Error("Garbage accepted a non-loopback target")
	}
}

func TestFloodConfigBounds(t *testing.T) {
	h := newTargetHost(t)
	ok := FloodConfig{Target: addrInfo(h), Peers: 1, Wants: 1, Rate: 1, Duration: time.Second}
	for name, mut := range map[string]func(*FloodConfig){
		"no peers":      func(c *FloodConfig) { c.Peers = 0 },
		"too many":      func(c *FloodConfig) { c.Peers = MaxPeers + 1 },
		"no wants":      func(c *FloodConfig) { c.Wants = 0 },
		"zero rate":     func(c *FloodConfig) { c.Rate = 0 },
		"no duration":   func(c *FloodConfig) { c.Duration = 0 },
		"endless flood": func(c *FloodConfig) { c.Duration = MaxDuration + time.Second },
	} {
		c := ok
		mut(&c)
		if _, err := Flood(context.Background(), c); err == nil {
			t.Errorf("%s: Flood accepted %+v", name, c)
		}
	}
}

func TestFloodWantlistShape(t *testing.T) {
	cids := SeededCIDs(1, 10)
	m := FloodWantlist(cids)
	if !m.Full() {
		t.Error("flood wantlist is not marked full")
	}
	wl := m.Wantlist()
	if len(wl) != len(cids) {
		t.Fatalf("%d entries, want %d", len(wl), len(cids))
	}
	var blocksN, haves int
	for _, e := range wl {
		if !e.SendDontHave || e.Cancel {
			t.Errorf("entry %v: SendDontHave=%v Cancel=%v", e.Cid, e.SendDontHave, e.Cancel)
		}
		if e.WantType == pb.Message_Wantlist_Block {
			blocksN++
		} else {
			haves++
		}
	}
	if blocksN != 5 || haves != 5 {
		t.Errorf("want-block %d, want-have %d; want 5 and 5", blocksN, haves)
	}
	// Seeded CIDs are reproducible and distinct.
	again := SeededCIDs(1, 10)
	seen := map[cid.Cid]bool{}
	for i, c := range cids {
		if !c.Equals(again[i]) {
			t.Fatal("SeededCIDs is not deterministic")
		}
		seen[c] = true
	}
	if len(seen) != 10 || seen[SeededCIDs(2, 1)[0]] {
		t.Error("SeededCIDs repeats CIDs")
	}
}

func TestFloodSendsFullWantlistsAtRate(t *testing.T) {
	target, rec := newRecorderTarget(t)
	const peers, wants, rate = 4, 100, 20.0
	dur := 1500 * time.Millisecond
	res, err := Flood(context.Background(), FloodConfig{Target: target, Peers: peers, Wants: wants, Rate: rate, Duration: dur})
	if err != nil {
		t.Fatal(err)
	}
	if res.Peers != peers || res.FailedPeers != 0 {
		t.Fatalf("connected %d, failed %d (%s)", res.Peers, res.FailedPeers, res.FirstError)
	}
	// Messages the generator counted as sent may still be in flight.
	waitFor(func() bool { return rec.total() >= res.Sent })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.msgs) != peers {
		t.Fatalf("target saw %d distinct peers, want %d", len(rec.msgs), peers)
	}
	total := 0
	allCIDs := map[cid.Cid]peer.ID{}
	for p, msgs := range rec.msgs {
		total += len(msgs)
		// A peer never exceeds its rate: at most one message per interval
		// over the flood, plus the first.
		if limit := int(rate*dur.Seconds()) + 1; len(msgs) > limit {
			t.Errorf("peer %s sent %d messages in %s at %g/s (limit %d)", p, len(msgs), dur, rate, limit)
		}
		first := map[cid.Cid]bool{}
		for i, m := range msgs {
			if !m.Full() {
				t.Fatalf("message %d of %s is not a full wantlist", i, p)
			}
			wl := m.Wantlist()
			if len(wl) != wants {
				t.Fatalf("message %d of %s has %d entries, want %d", i, p, len(wl), wants)
			}
			for _, e := range wl {
				if !e.SendDontHave {
					t.Fatal("entry without send-dont-have")
				}
				if i == 0 {
					first[e.Cid] = true
					if other, dup := allCIDs[e.Cid]; dup && other != p {
						t.Fatal("two peers share a wantlist CID")
					}
					allCIDs[e.Cid] = p
				} else if !first[e.Cid] {
					t.Fatalf("peer %s changed its wantlist without -fresh", p)
				}
			}
		}
	}
	if int64(total) != res.Sent {
		t.Errorf("target received %d messages, generator counted %d sent", total, res.Sent)
	}
}

func TestFloodFreshChangesWantlist(t *testing.T) {
	target, rec := newRecorderTarget(t)
	res, err := Flood(context.Background(), FloodConfig{Target: target, Peers: 1, Wants: 10, Rate: 50, Duration: time.Second, Fresh: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent < 2 {
		t.Fatalf("a 1 s flood at 50/s sent %d message(s); the test needs two", res.Sent)
	}
	if !waitFor(func() bool { return rec.total() >= res.Sent }) {
		t.Fatalf("target received %d of %d messages", rec.total(), res.Sent)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, msgs := range rec.msgs {
		seen := map[cid.Cid]bool{}
		for _, m := range msgs {
			for _, e := range m.Wantlist() {
				if seen[e.Cid] {
					t.Fatal("a fresh flood re-sent a CID")
				}
				seen[e.Cid] = true
			}
		}
	}
}

func TestFloodStopsOnCancel(t *testing.T) {
	target := newBitswapTarget(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(700*time.Millisecond, cancel)
	start := time.Now()
	res, err := Flood(ctx, FloodConfig{Target: target, Peers: 2, Wants: 50, Rate: 10, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("Flood ran %s after its context was cancelled", el)
	}
	if res.Sent == 0 {
		t.Fatal("nothing sent before the cancel")
	}
	// A real Bitswap answers missing want-haves/want-blocks with DONT_HAVE.
	if res.RecvDontHaves == 0 {
		t.Errorf("no DONT_HAVE from a Bitswap target (received %d messages)", res.RecvMessages)
	}
	if res.RecvHaves != 0 || res.RecvBlocks != 0 {
		t.Errorf("target claimed to hold random CIDs: %d HAVE, %d blocks", res.RecvHaves, res.RecvBlocks)
	}
}

func TestConnsHeldAndTrimmed(t *testing.T) {
	h := newTargetHost(t)
	set, err := OpenConns(context.Background(), ConnsConfig{Target: addrInfo(h), N: 20, Parallel: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if set.Established() != 20 || set.Failed != 0 {
		t.Fatalf("established %d, failed %d: %v", set.Established(), set.Failed, set.FirstError)
	}
	if got := len(h.Network().Peers()); got != 20 {
		t.Fatalf("target sees %d peers, want 20 distinct identities", got)
	}
	// The target trims five: the set must notice.
	for _, p := range h.Network().Peers()[:5] {
		_ = h.Network().ClosePeer(p)
	}
	deadline := time.Now().Add(10 * time.Second)
	for set.Held() != 15 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := set.Held(); got != 15 {
		t.Fatalf("held %d after the target closed 5 of 20", got)
	}
	set.Close()
	deadline = time.Now().Add(10 * time.Second)
	for len(h.Network().Peers()) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(h.Network().Peers()); got != 0 {
		t.Fatalf("target still sees %d peers after Close", got)
	}
}

func TestRateCountsAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int // 2 KiB: HAVE answers; 512 B: the block itself (WantHaveReplaceSize)
	}{{"haves", 2048}, {"small-blocks", 512}} {
		t.Run(tc.name, func(t *testing.T) {
			blks, cids := randomBlocks(t, 64, tc.size)
			target := newBitswapTarget(t, blks)
			res, err := Rate(context.Background(), RateConfig{Target: target, CIDs: cids, Steps: []int{1, 3}, InFlight: 4,
				Warmup: 200 * time.Millisecond, StepDuration: 800 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if res.Peers != 3 || len(res.Steps) != 2 {
				t.Fatalf("peers %d, steps %d", res.Peers, len(res.Steps))
			}
			best := 0.0
			for _, s := range res.Steps {
				if s.Answered == 0 {
					t.Fatalf("step %+v: nothing answered", s)
				}
				if s.DontHaves != 0 || s.TimedOut != 0 || s.SendErrors != 0 {
					t.Errorf("step with %d peers: %d DONT_HAVE, %d timed out, %d send errors", s.Peers, s.DontHaves, s.TimedOut, s.SendErrors)
				}
				if s.Haves+s.Blocks != s.Answered {
					t.Errorf("kinds %d+%d+%d do not add up to %d", s.Haves, s.DontHaves, s.Blocks, s.Answered)
				}
				if tc.size > 1024 && s.Blocks != 0 {
					t.Errorf("got %d blocks for want-haves of %d-byte blocks", s.Blocks, tc.size)
				}
				if tc.size <= 1024 && s.Haves != 0 {
					t.Errorf("got %d HAVEs for %d-byte blocks, which Bitswap sends whole", s.Haves, tc.size)
				}
				if int64(s.Latency.N) != s.Answered {
					t.Errorf("%d latencies for %d answers", s.Latency.N, s.Answered)
				}
				if !(s.Latency.P50 <= s.Latency.P99 && s.Latency.P99 <= s.Latency.Max) || s.Latency.P50 <= 0 {
					t.Errorf("latency percentiles out of order: %+v", s.Latency)
				}
				// Closed loop: never more answered than sent plus what was in
				// flight when the window opened.
				if s.Answered > s.Sent+int64(s.Peers*4) {
					t.Errorf("answered %d > sent %d + in flight", s.Answered, s.Sent)
				}
				best = max(best, s.PerSec)
			}
			if res.SaturationPerSec != best {
				t.Errorf("saturation %g, best step %g", res.SaturationPerSec, best)
			}
		})
	}
}

func TestRateConfigBounds(t *testing.T) {
	h := newTargetHost(t)
	cids := SeededCIDs(3, 4)
	for name, c := range map[string]RateConfig{
		"no cids":          {Target: addrInfo(h), Steps: []int{1}, InFlight: 1},
		"no steps":         {Target: addrInfo(h), CIDs: cids, InFlight: 1},
		"inflight > cids":  {Target: addrInfo(h), CIDs: cids, Steps: []int{1}, InFlight: 5},
		"zero step peers":  {Target: addrInfo(h), CIDs: cids, Steps: []int{0}, InFlight: 1},
		"sweep too long":   {Target: addrInfo(h), CIDs: cids, Steps: []int{1}, InFlight: 1, StepDuration: MaxDuration},
		"zero in flight":   {Target: addrInfo(h), CIDs: cids, Steps: []int{1}},
		"too many in step": {Target: addrInfo(h), CIDs: cids, Steps: []int{MaxPeers + 1}, InFlight: 1},
	} {
		if _, err := Rate(context.Background(), c); err == nil {
			t.Errorf("%s: Rate accepted the config", name)
		}
	}
}

func TestGarbageLeavesBitswapAnswering(t *testing.T) {
	blks, _ := randomBlocks(t, 4, 2048)
	target := newBitswapTarget(t, blks)
	res, err := Garbage(context.Background(), GarbageConfig{Target: target, Streams: 32})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cases) != len(GarbageCases()) {
		t.Fatalf("%d cases run, want %d", len(res.Cases), len(GarbageCases()))
	}
	byName := map[string]GarbageCase{}
	for _, c := range res.Cases {
		byName[c.Name] = c
		if c.Sent == 0 && c.Errors == 0 {
			t.Errorf("case %s neither sent nor failed", c.Name)
		}
	}
	for _, name := range []string{"bad-protobuf", "huge-wantlist", "invalid-cid", "unknown-fields"} {
		if byName[name].Sent != 1 {
			t.Errorf("case %s: sent %d, want 1 (%s)", name, byName[name].Sent, byName[name].FirstError)
		}
	}
	if byName["stream-churn"].Sent != 32 {
		t.Errorf("stream-churn sent %d streams, want 32", byName["stream-churn"].Sent)
	}
	if !res.StillAnswers {
		t.Fatalf("target no longer answers after garbage: %s", res.CheckError)
	}
}

func TestCheckAnswersTimesOutOnSilentTarget(t *testing.T) {
	// A host without Bitswap refuses the stream; one that reads wantlists
	// but never answers lets the check time out. Both must fail in time.
	silent, rec := newRecorderTarget(t)
	for name, target := range map[string]peer.AddrInfo{"no bitswap": addrInfo(newTargetHost(t)), "silent": silent} {
		start := time.Now()
		ok, _, err := CheckAnswers(context.Background(), target, time.Second)
		if ok || err == nil {
			t.Fatalf("%s: CheckAnswers reported an answer", name)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Fatalf("%s: CheckAnswers took %s with a 1 s timeout", name, el)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.msgs) != 1 {
		t.Fatalf("the silent target got wants from %d peers, want 1", len(rec.msgs))
	}
}

func TestSummarise(t *testing.T) {
	if p := Summarise(nil); p.N != 0 || p.Max != 0 {
		t.Fatalf("empty: %+v", p)
	}
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := Summarise(d)
	if p.N != 100 || p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 {
		t.Fatalf("got %+v, want n=100 p50=50 p90=90 p99=99 max=100", p)
	}
}

func TestRaiseNoFile(t *testing.T) {
	got, err := RaiseNoFile(1024)
	if err != nil || got < 1024 {
		t.Fatalf("RaiseNoFile(1024) = %d, %v", got, err)
	}
}
