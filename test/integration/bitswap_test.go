package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	gocid "github.com/ipfs/go-cid"
	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/test/cli/harness"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kubo-highload/highload/bench/loadgen"
	"github.com/kubo-highload/highload/exchange"
)

// policyStats runs `ipfs stats highload bitswap --enc=json` on n.
func policyStats(t *testing.T, n *harness.Node) exchange.Stats {
	t.Helper()
	res := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "bitswap", "--enc=json")
	var s exchange.Stats
	if err := json.Unmarshal(res.Stdout.Bytes(), &s); err != nil {
		t.Fatalf("decoding `ipfs stats highload bitswap --enc=json`: %v\n%s", err, res.Stdout.String())
	}
	return s
}

func addrInfo(t *testing.T, n *harness.Node) peer.AddrInfo {
	t.Helper()
	return peer.AddrInfo{ID: n.PeerID(), Addrs: n.SwarmAddrs()}
}

// TestBitswapPolicyUnderFlood floods a provider from loadgen peers and
// checks that the policy's hooks are live in the daemon (wants are shed,
// breakers trip), that a peer in the provider's Peering.Peers still fetches,
// that malformed and oversized wantlists do not bring the node down, and
// that Kubo's own Bitswap commands keep working.
func TestBitswapPolicyUnderFlood(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	provider, vip := newNode(t, h), newNode(t, h)
	provider.UpdateConfig(func(cfg *config.Config) {
		cfg.Peering.Peers = []peer.AddrInfo{{ID: vip.PeerID()}}
	})
	// Low limits so a small flood trips them on a shared machine.
	setPlugin(provider, config.Plugin{Config: map[string]any{
		"Bitswap": map[string]any{"UnknownPeerRate": 2000, "BreakerCooldown": "2s"},
	}})
	startDaemon(provider)
	startDaemon(vip)

	s := policyStats(t, provider)
	if len(s.Classes) != 3 || s.ShedTotal() != 0 {
		t.Fatalf("fresh provider: %+v", s)
	}

	data := make([]byte, 4<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	cid := strings.TrimSpace(mustRun(t, provider, transferTimeout, bytes.NewReader(data), "add", "-Q", "--chunker=size-16384").Stdout.String())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flood := make(chan error, 1)
	go func() {
		_, err := loadgen.Flood(ctx, loadgen.FloodConfig{Target: addrInfo(t, provider), Peers: 8, Wants: 1000, Rate: 10, Duration: 90 * time.Second})
		flood <- err
	}()
	if err := waitFor(40*time.Second, func() (bool, string) {
		s = policyStats(t, provider)
		return s.ShedTotal() > 0 && s.Trips["flood"] > 0, fmt.Sprintf("shed %d, trips %v", s.ShedTotal(), s.Trips)
	}); err != nil {
		t.Fatalf("the flood was never shed: %v", err)
	}
	shedBefore := s.ShedTotal()

	// The peered node fetches the file while the flood runs.
	connect(t, vip, provider)
	start := time.Now()
	got := mustRun(t, vip, transferTimeout, nil, "--timeout=50s", "cat", cid).Stdout.Bytes()
	if !bytes.Equal(got, data) {
		t.Fatalf("the peered node read %d bytes that differ from the %d added", len(got), len(data))
	}
	t.Logf("peered fetch of %d bytes under flood: %v", len(data), time.Since(start))
	s = policyStats(t, provider)
	if s.Classes[exchange.ClassPriority].Served == 0 || s.Classes[exchange.ClassPriority].Shed["breaker"]+s.Classes[exchange.ClassPriority].Shed["overload"] != 0 {
		t.Fatalf("priority class: %+v", s.Classes[exchange.ClassPriority])
	}
	// The flood goes on after the fetch (90 s): the shed count keeps
	// rising. Polled, not read once: the fetch can end within a second
	// (the prefetcher's look-ahead, 2026-11-28), while every flooder's
	// breaker is open and its wantlists wait in the hold.
	if err := waitFor(20*time.Second, func() (bool, string) {
		now := policyStats(t, provider)
		return now.ShedTotal() > shedBefore, fmt.Sprintf("shed %d then %d", shedBefore, now.ShedTotal())
	}); err != nil {
		t.Errorf("shed count did not keep rising under the flood: %v", err)
	}
	// Tripped flooders' wantlists wait in the tracer (AbusiveHold) before
	// the server decodes their next ones.
	if s.Held == 0 {
		t.Errorf("no flood wantlist was held back: %+v", s)
	}
	// A held wantlist whose peer's breaker is still open after the hold
	// (5 s cooldown, 1 s hold) is dropped before boxo sees it.
	if err := waitFor(20*time.Second, func() (bool, string) {
		s = policyStats(t, provider)
		return s.Dropped > 0, fmt.Sprintf("held %d, dropped %d", s.Held, s.Dropped)
	}); err != nil {
		t.Errorf("no held wantlist of an open breaker was dropped: %v", err)
	}
	found := false
	for _, p := range s.Peers {
		found = found || (p.ID == vip.PeerID().String() && p.Class == "priority")
	}
	if !found {
		t.Errorf("the peered node is not listed in the priority class: %+v", s.Peers)
	}

	// Stock commands keep working on the flooded node.
	mustRun(t, provider, cmdTimeout, nil, "stats", "bitswap")
	mustRun(t, provider, cmdTimeout, nil, "bitswap", "wantlist")
	ledger := mustRun(t, provider, cmdTimeout, nil, "bitswap", "ledger", vip.PeerID().String()).Stdout.String()
	if !strings.Contains(ledger, "Ledger for") {
		t.Errorf("`ipfs bitswap ledger` printed %q", ledger)
	}
	text := mustRun(t, provider, cmdTimeout, nil, "stats", "highload", "bitswap").Stdout.String()
	if !strings.Contains(text, "unknown") || !strings.Contains(text, "Peer breakers:") {
		t.Errorf("text output:\n%s", text)
	}
	if m := withPrefix(metrics(t, provider), `highload_bitswap_shed_requests_total{class="unknown",reason="breaker"}`); len(m) != 1 || strings.HasSuffix(m[0], " 0") {
		t.Errorf("shed metric: %v", m)
	}
	cancel()
	if err := <-flood; err != nil {
		t.Errorf("flood: %v", err)
	}

	// Malformed and oversized wantlists.
	res, err := loadgen.Garbage(context.Background(), loadgen.GarbageConfig{Target: addrInfo(t, provider)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.StillAnswers {
		t.Fatalf("provider stopped answering after garbage: %+v", res)
	}
	mustRun(t, provider, cmdTimeout, nil, "id")
	if s = policyStats(t, provider); s.Malformed == 0 {
		t.Errorf("no malformed wantlist counted after the garbage cases %+v", res.Cases)
	}
	stopDaemon(t, vip)
	stopDaemon(t, provider)
}

// TestWantHaveReplaceSizeIsLive asks our daemon, set to answer want-haves
// for blocks of up to 12 KiB with the block itself, for an 8 KiB and a
// 16 KiB block by want-have from loadgen peers: the first must come back
// whole and the second as HAVEs (Config.Bitswap.WantHaveReplaceSize; the
// highload profile's value).
func TestWantHaveReplaceSizeIsLive(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newNode(t, h)
	setPlugin(n, config.Plugin{Config: map[string]any{"Bitswap": map[string]any{"WantHaveReplaceSize": "12KiB"}}})
	startDaemon(n)
	defer stopDaemon(t, n)
	for _, tc := range []struct {
		size  int
		whole bool
	}{{8 << 10, true}, {16 << 10, false}} {
		data := make([]byte, tc.size)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		s := strings.TrimSpace(mustRun(t, n, cmdTimeout, bytes.NewReader(data), "block", "put").Stdout.String())
		c, err := gocid.Decode(s)
		if err != nil {
			t.Fatalf("block put printed %q: %v", s, err)
		}
		res, err := loadgen.Rate(context.Background(), loadgen.RateConfig{Target: addrInfo(t, n), CIDs: []gocid.Cid{c},
			Steps: []int{2}, InFlight: 1, Warmup: 200 * time.Millisecond, StepDuration: 800 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		st := res.Steps[0]
		t.Logf("%d-byte block: %d answers, %d blocks, %d HAVEs", tc.size, st.Answered, st.Blocks, st.Haves)
		if st.Answered == 0 {
			t.Fatalf("%d-byte block: no want-have answered", tc.size)
		}
		if tc.whole && (st.Haves != 0 || st.Blocks == 0) {
			t.Errorf("%d-byte block, at most 12KiB: %d HAVEs and %d blocks, want the block every time", tc.size, st.Haves, st.Blocks)
		}
		if !tc.whole && (st.Blocks != 0 || st.Haves == 0) {
			t.Errorf("%d-byte block, over 12KiB: %d blocks and %d HAVEs, want HAVEs only", tc.size, st.Blocks, st.Haves)
		}
	}
}
