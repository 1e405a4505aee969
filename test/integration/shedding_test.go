package integration

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/kubo/config"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kubo-highload/highload/bench/loadgen"
	"github.com/kubo-highload/highload/exchange"
)

// TestPressureShedsAndRecovers drives a daemon on the highload profile
// (tiered store with a memory tier, adaptive connection manager, Bitswap
// policy) into critical memory pressure with a low memory budget plus
// load, and shows each component's degradation and its recovery:
//
//   - Bitswap sheds the unknown class (loadgen peers asking for blocks the
//     node holds) while a peer in Peering.Peers (priority) is still served;
//   - the memory tier's budget shrinks below its capacity;
//   - the connection manager's HighWater drops below the configured one;
//   - the Go heap is marked against huge pages (THP madvise);
//   - once the load stops: level normal, the memory tier back at its
//     capacity, HighWater back, and the unknown peers served again.
//
// Every step polls a condition; nothing is timed.
func TestPressureShedsAndRecovers(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	vip := newNode(t, h)
	n := h.NewNode().Init("--profile=highload")
	const highWater = 40
	n.UpdateConfig(func(cfg *config.Config) {
		cfg.Routing.Type = config.NewOptionalString("none")
		cfg.Bootstrap = []string{}
		cfg.Peering.Peers = []peer.AddrInfo{{ID: vip.PeerID()}}
		cfg.Swarm.ConnMgr.LowWater = config.NewOptionalInteger(20)
		cfg.Swarm.ConnMgr.HighWater = config.NewOptionalInteger(highWater)
	})
	plugin := func(health map[string]any) config.Plugin {
		return config.Plugin{Config: map[string]any{
			"Health":  healthConfig(health),
			"ConnMgr": map[string]any{"AdaptInterval": "200ms"},
		}}
	}

	// 1. Idle RSS of this configuration, without a budget.
	setPlugin(n, plugin(nil))
	startDaemon(n)
	var idle healthSnap
	if err := waitFor(30*time.Second, func() (bool, string) {
		idle = healthOf(t, n)
		return idle.Samples >= 3 && idle.RSS > 0, fmt.Sprintf("%+v", idle)
	}); err != nil {
		t.Fatal(err)
	}
	stopDaemon(t, n)

	// 2. A budget of 2.5 times that: idle near 40%, critical at 65%.
	budget := idle.RSS * 5 / 2
	setPlugin(n, plugin(map[string]any{
		"MemoryBudget":        budget,
		"ElevatedPercent":     58,
		"ElevatedExitPercent": 55,
		"CriticalPercent":     65,
		"CriticalExitPercent": 60,
		"MinDwell":            "1s",
	}))
	startDaemon(n)
	startDaemon(vip)
	connect(t, vip, n)
	if err := waitFor(30*time.Second, func() (bool, string) {
		s := healthOf(t, n)
		return s.Samples >= 3 && s.Level == "normal", fmt.Sprintf("%+v", s)
	}); err != nil {
		t.Fatalf("not normal at idle with budget %d: %v", budget, err)
	}
	tier0 := tieredStats(t, n).Stats.Tiers[0]
	if tier0.Kind != "memory" || tier0.Budget != tier0.Capacity || tier0.Capacity == 0 {
		t.Fatalf("memory tier at normal: %+v", tier0)
	}
	if cm := connMgrStat(t, n); cm.HighWater != highWater {
		t.Fatalf("connmgr at normal: HighWater %d, want the configured %d", cm.HighWater, highWater)
	}

	// Blocks the unknown peers ask for, and a file for the priority peer.
	small := mustRun(t, n, cmdTimeout, bytes.NewReader(randomBytes(64<<10)), "add", "-Q", "--chunker=size-1024").Stdout.String()
	var cids []cid.Cid
	for _, line := range strings.Fields(mustRun(t, n, cmdTimeout, nil, "refs", "-r", "--unique", strings.TrimSpace(small)).Stdout.String()) {
		c, err := cid.Decode(line)
		if err != nil {
			t.Fatalf("refs printed %q: %v", line, err)
		}
		cids = append(cids, c)
	}
	vipData := randomBytes(1 << 20)
	vipCID := strings.TrimSpace(mustRun(t, n, cmdTimeout, bytes.NewReader(vipData), "add", "-Q").Stdout.String())

	// Unknown-class load for the whole test: two loadgen peers keep 8
	// want-haves each in flight.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rateDone := make(chan error, 1)
	go func() {
		_, err := loadgen.Rate(ctx, loadgen.RateConfig{Target: addrInfo(t, n), CIDs: cids, Steps: []int{2},
			InFlight: 8, StepDuration: 20 * time.Minute})
		rateDone <- err
	}()
	unknown := func(s exchange.Stats) exchange.ClassStats { return s.Classes[exchange.ClassUnknown] }
	var before exchange.Stats
	if err := waitFor(60*time.Second, func() (bool, string) {
		before = policyStats(t, n)
		return unknown(before).Served > 100, fmt.Sprintf("unknown class %+v", unknown(before))
	}); err != nil {
		t.Fatalf("the loadgen peers are not served before the pressure: %v", err)
	}
	if unknown(before).Shed["overload"] != 0 {
		t.Fatalf("unknown class shed for overload before any pressure: %+v", unknown(before))
	}

	// 3. Memory load: add random files until every effect has been seen
	// at critical. Blocks land in the memory tier, and the add buffers.
	var (
		mu                           sync.Mutex
		levels                       []string
		sawShed, sawTier, sawConnMgr bool
		sawHugeOff                   bool
		shrunk                       uint64
		lowHW                        int
		vipOK                        bool
	)
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	var adds atomic.Int64
	go func() {
		defer close(loadDone)
		for {
			select {
			case <-stopLoad:
				return
			default:
			}
			if run(n, transferTimeout, bytes.NewReader(randomBytes(32<<20)), "add", "-Q", "--pin=false").Err == nil {
				adds.Add(1)
			}
		}
	}()
	var vipOnce sync.Once
	vipDone := make(chan struct{})
	err := waitFor(5*time.Minute, func() (bool, string) {
		hs := healthOf(t, n)
		mu.Lock()
		if len(levels) == 0 || levels[len(levels)-1] != hs.Level {
			levels = append(levels, hs.Level)
		}
		mu.Unlock()
		if hs.Level == "critical" {
			// The priority peer fetches while the node is critical.
			vipOnce.Do(func() {
				go func() {
					defer close(vipDone)
					got := run(vip, transferTimeout, nil, "--timeout=50s", "cat", vipCID)
					mu.Lock()
					vipOK = got.Err == nil && bytes.Equal(got.Stdout.Bytes(), vipData)
					mu.Unlock()
				}()
			})
			if s := policyStats(t, n); unknown(s).Shed["overload"] > unknown(before).Shed["overload"] {
				sawShed = true
			}
			if tier := tieredStats(t, n).Stats.Tiers[0]; tier.Budget < tier.Capacity {
				sawTier, shrunk = true, tier.Budget
			}
			if cm := connMgrStat(t, n); cm.HighWater < highWater {
				sawConnMgr, lowHW = true, cm.HighWater
			}
			// Huge pages are off for the heap (in THP madvise mode; in
			// the others they never were on).
			if h := hugeOf(t, n); h != nil && !h.Active && (h.Mode != "madvise" || strings.Contains(h.Detail, "NOHUGEPAGE")) {
				sawHugeOff = true
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return sawShed && sawTier && sawConnMgr && sawHugeOff, fmt.Sprintf("levels %v, RSS %d of %d, %d adds; seen: shed %v, tier %v, connmgr %v, huge pages off %v",
			levels, hs.RSS, budget, adds.Load(), sawShed, sawTier, sawConnMgr, sawHugeOff)
	})
	close(stopLoad)
	<-loadDone
	if err != nil {
		t.Fatalf("under memory pressure: %v", err)
	}
	<-vipDone
	mu.Lock()
	if !vipOK {
		t.Errorf("the priority peer could not fetch %s while the node was critical", vipCID)
	}
	t.Logf("under pressure: levels %v; memory tier budget %d of %d; HighWater %d of %d; %d adds",
		levels, shrunk, tier0.Capacity, lowHW, highWater, adds.Load())
	mu.Unlock()
	s := policyStats(t, n)
	prio := s.Classes[exchange.ClassPriority]
	if prio.Served == 0 || prio.Shed["overload"]+prio.Shed["breaker"] != 0 {
		t.Errorf("priority class under pressure: %+v", prio)
	}

	// 4. Recovery once the load has stopped (the unknown peers keep asking).
	if err := waitFor(3*time.Minute, func() (bool, string) {
		hs := healthOf(t, n)
		tier := tieredStats(t, n).Stats.Tiers[0]
		cm := connMgrStat(t, n)
		ps := policyStats(t, n)
		h := hugeOf(t, n)
		hugeBack := h != nil && (h.Mode != "madvise" || h.Active)
		return hs.Level == "normal" && tier.Budget == tier.Capacity && cm.HighWater == highWater && ps.Pressure == 0 && hugeBack,
			fmt.Sprintf("level %s at %.0f%%, memory tier %d of %d, HighWater %d (%s), bitswap pressure %d, huge pages %+v",
				hs.Level, 100*hs.Pressure, tier.Budget, tier.Capacity, cm.HighWater, cm.Reason, ps.Pressure, h)
	}); err != nil {
		t.Fatalf("no recovery after the load stopped: %v", err)
	}
	// The unknown peers are admitted again: between two polls their
	// accepted wants rise and none is shed for overload.
	prev := unknown(policyStats(t, n))
	if err := waitFor(60*time.Second, func() (bool, string) {
		cur := unknown(policyStats(t, n))
		ok := cur.Accepted > prev.Accepted && cur.Shed["overload"] == prev.Shed["overload"]
		state := fmt.Sprintf("unknown class %+v, previous poll %+v", cur, prev)
		prev = cur
		return ok, state
	}); err != nil {
		t.Fatalf("the unknown class is not served again after recovery: %v", err)
	}
	cancel()
	if err := <-rateDone; err != nil && ctx.Err() == nil {
		t.Errorf("loadgen: %v", err)
	}
	stopDaemon(t, vip)
	stopDaemon(t, n)
}
