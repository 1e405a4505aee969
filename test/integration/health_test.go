package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/test/cli/harness"
)

// healthSnap mirrors the fields of `ipfs stats highload health --enc=json`
// (health.Snapshot) that the tests read; kept separate so that the test
// checks the wire format.
type healthSnap struct {
	Level         string
	Pressure      float64
	PressureKnown bool
	Driver        string
	RSS           uint64
	MemoryBudget  uint64
	FDs, FDLimit  uint64
	Samples       uint64
	LevelChanges  uint64
	Ratios        map[string]float64
	Unknown       map[string]string
}

func healthOf(t *testing.T, n *harness.Node) healthSnap {
	t.Helper()
	res := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "health", "--enc=json")
	var s healthSnap
	if err := json.Unmarshal(res.Stdout.Bytes(), &s); err != nil {
		t.Fatalf("decoding `ipfs stats highload health --enc=json`: %v\n%s", err, res.Stdout.String())
	}
	return s
}

// hugeStatus mirrors the HugePages field of `ipfs stats highload health
// --enc=json` (hugepages.Status), kept separate to check the wire format.
type hugeStatus struct {
	Mode               string
	Active             bool
	Detail             string
	ReserveBytes       uint64
	HeapMappedBytes    uint64
	MarkedBytes        uint64
	Passes             uint64
	AnonHugePagesBytes uint64
}

func hugeOf(t *testing.T, n *harness.Node) *hugeStatus {
	t.Helper()
	res := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "health", "--enc=json")
	var s struct{ HugePages *hugeStatus }
	if err := json.Unmarshal(res.Stdout.Bytes(), &s); err != nil {
		t.Fatalf("decoding `ipfs stats highload health --enc=json`: %v\n%s", err, res.Stdout.String())
	}
	return s.HugePages
}

// healthConfig is the Health section used by these tests: fast sampling,
// no disk paths (the test machine's disk usage must not drive the level).
func healthConfig(extra map[string]any) map[string]any {
	h := map[string]any{"Interval": "200ms", "DiskPaths": ""}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

// randomBytes returns n pseudo-random bytes that no other run produces.
func randomBytes(n int) []byte {
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, seed>>7))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// TestHealthMemoryPressureAndRecovery gives the daemon a memory budget of
// twice its idle RSS with low thresholds, drives RSS up by adding a large
// file, and watches the level rise and then fall back to normal once the
// load stops.
func TestHealthMemoryPressureAndRecovery(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	n := newNode(t, newHarness(t, ourBin(t)))

	// 1. Idle RSS of this binary on this machine, without a budget.
	setPlugin(n, config.Plugin{Config: map[string]any{"Health": healthConfig(nil)}})
	startDaemon(n)
	var idle healthSnap
	if err := waitFor(30*time.Second, func() (bool, string) {
		idle = healthOf(t, n)
		return idle.Samples >= 3 && idle.RSS > 0, fmt.Sprintf("%+v", idle)
	}); err != nil {
		t.Fatal(err)
	}
	if idle.Level != "normal" || !idle.PressureKnown || idle.FDLimit == 0 {
		t.Fatalf("idle snapshot: %+v", idle)
	}
	text := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "health").Stdout.String()
	for _, want := range []string{"Pressure level: normal", "Memory:  RSS", "(no budget set)", "FDs:"} {
		if !strings.Contains(text, want) {
			t.Fatalf("health text lacks %q:\n%s", want, text)
		}
	}
	stopDaemon(t, n)

	// 2. Budget 2.2 times the idle RSS: idle sits near 45%, elevated at
	// 58%, critical at 65% (a 160 MB add took RSS to 75-77% of twice the
	// idle RSS here, about 70% of this budget). Critical also returns freed
	// heap to the OS, which is what lets RSS fall back soon after the
	// load; the heap the runtime keeps after it settled at 57% of twice
	// the idle RSS in one CI run (52% of this budget), above the 55% exit.
	budget := idle.RSS * 22 / 10
	setPlugin(n, config.Plugin{Config: map[string]any{"Health": healthConfig(map[string]any{
		"MemoryBudget":        budget,
		"ElevatedPercent":     58,
		"ElevatedExitPercent": 55,
		"CriticalPercent":     65,
		"CriticalExitPercent": 60,
		"MinDwell":            "1s",
	})}})
	startDaemon(n)
	if err := waitFor(30*time.Second, func() (bool, string) {
		s := healthOf(t, n)
		return s.Samples >= 3 && s.Level == "normal", fmt.Sprintf("%+v", s)
	}); err != nil {
		t.Fatalf("not normal at idle with budget %d: %v", budget, err)
	}

	// 3. Load: add 160 MB while polling the level.
	var (
		mu   sync.Mutex
		seen []string
		peak healthSnap
	)
	watch := func() {
		s := healthOf(t, n)
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 || seen[len(seen)-1] != s.Level {
			seen = append(seen, s.Level)
		}
		if s.RSS > peak.RSS {
			peak = s
		}
	}
	var added atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		res := run(n, transferTimeout, bytes.NewReader(randomBytes(160<<20)), "add", "-Q", "--pin=false")
		added.Store(res.Err == nil)
	}()
	if err := waitFor(60*time.Second, func() (bool, string) {
		watch()
		mu.Lock()
		defer mu.Unlock()
		up := false
		for _, l := range seen {
			up = up || l == "elevated" || l == "critical"
		}
		return up, fmt.Sprintf("levels %v, peak RSS %d of budget %d", seen, peak.RSS, budget)
	}); err != nil {
		t.Fatalf("the level never rose under load: %v", err)
	}
	<-done
	if !added.Load() {
		t.Fatal("ipfs add of the load file failed")
	}

	// 4. Recovery once the load has stopped.
	if err := waitFor(120*time.Second, func() (bool, string) {
		watch()
		s := healthOf(t, n)
		return s.Level == "normal", fmt.Sprintf("level %s at %.0f%% (RSS %d of %d)", s.Level, 100*s.Pressure, s.RSS, budget)
	}); err != nil {
		t.Fatalf("no recovery after the load stopped: %v (levels seen %v)", err, seen)
	}
	final := healthOf(t, n)
	mu.Lock()
	t.Logf("budget %d, idle RSS %d, peak RSS %d (%.0f%%), levels %v, level changes %d",
		budget, idle.RSS, peak.RSS, 100*float64(peak.RSS)/float64(budget), seen, final.LevelChanges)
	mu.Unlock()
	if final.LevelChanges < 2 || final.MemoryBudget != budget {
		t.Fatalf("final snapshot %+v: want at least two level changes and the budget", final)
	}
	lines := metrics(t, n)
	if got := withPrefix(lines, "highload_health_level "); len(got) != 1 || got[0] != "highload_health_level 0" {
		t.Fatalf("highload_health_level: %v", got)
	}
	if got := withPrefix(lines, "highload_health_level_changes_total "); len(got) != 1 {
		t.Fatalf("highload_health_level_changes_total: %v", got)
	}
}

// tunerStatus mirrors the parts of `ipfs stats highload autotune --enc=json`
// the test reads.
type tunerStatus struct {
	State   string
	Frozen  bool
	Windows uint64
	Skipped uint64
	Knobs   []struct {
		Name     string
		Value    float64
		Min, Max float64
	}
	Changes []struct {
		Seq           uint64
		Kind, Knob    string
		From, To      float64
		Reason        string
		Before, After *float64
		Outcome       string
	}
}

func tunerOf(t *testing.T, n *harness.Node) tunerStatus {
	t.Helper()
	res := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "autotune", "--enc=json")
	var s tunerStatus
	if err := json.Unmarshal(res.Stdout.Bytes(), &s); err != nil {
		t.Fatalf("decoding `ipfs stats highload autotune --enc=json`: %v\n%s", err, res.Stdout.String())
	}
	return s
}

// TestAutoTuneActsUnderLoad serves blocks from a daemon whose tuner runs
// with a 1s window, and checks that the tuner acts: its change log fills,
// each change has a reason and a before figure, the knob stays in bounds,
// and freeze stops it.
func TestAutoTuneActsUnderLoad(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	server, client := newNode(t, h), newNode(t, h)
	setPlugin(server, config.Plugin{Config: map[string]any{
		"Health":   healthConfig(nil),
		"AutoTune": map[string]any{"Enabled": true, "Window": "1s"},
	}})
	startDaemon(server)
	startDaemon(client)
	connect(t, client, server)

	// The tuner gets GOGC and the Bitswap policy's two tuned knobs
	// (plugin/bitswap_knobs.go), each with its bounds.
	type bounds struct{ min, max float64 }
	knobs := map[string]bounds{}
	for _, k := range tunerOf(t, server).Knobs {
		knobs[k.Name] = bounds{k.Min, k.Max}
	}
	for _, name := range []string{"go.GOGC", "bitswap.global_pending", "bitswap.peer_rate.unknown"} {
		if _, ok := knobs[name]; !ok || len(knobs) != 3 {
			t.Fatalf("knobs %+v: want go.GOGC, bitswap.global_pending and bitswap.peer_rate.unknown", knobs)
		}
	}
	if b := knobs["go.GOGC"]; b.min != 50 || b.max != 400 {
		t.Fatalf("go.GOGC bounds %+v, want 50..400", b)
	}

	// Load: the client fetches fresh 4 MiB files from the server until the
	// tuner has tried something.
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	var fetched atomic.Int64
	go func() {
		defer close(loadDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			res := run(server, transferTimeout, bytes.NewReader(randomBytes(4<<20)), "add", "-Q", "--pin=false")
			if res.Err != nil {
				continue
			}
			cid := strings.TrimSpace(res.Stdout.String())
			if run(client, transferTimeout, nil, "--timeout=30s", "cat", cid).Err == nil {
				fetched.Add(1)
			}
		}
	}()
	var st tunerStatus
	err := waitFor(150*time.Second, func() (bool, string) {
		st = tunerOf(t, server)
		return len(st.Changes) >= 2, fmt.Sprintf("state %s, windows %d (skipped %d), %d changes, %d files fetched",
			st.State, st.Windows, st.Skipped, len(st.Changes), fetched.Load())
	})
	close(stop)
	<-loadDone
	if err != nil {
		t.Fatalf("the tuner did not act under load: %v", err)
	}
	for _, c := range st.Changes {
		b, ok := knobs[c.Knob]
		if c.Reason == "" || !ok || c.To < b.min || c.To > b.max || c.From < b.min || c.From > b.max {
			t.Fatalf("change %+v: want a reason, a registered knob and values within its bounds %+v", c, b)
		}
		if c.Kind == "trial" && c.Before == nil {
			t.Fatalf("trial %+v has no before figure", c)
		}
		t.Logf("change #%d %s %s %g -> %g (%s): %s", c.Seq, c.Kind, c.Knob, c.From, c.To, c.Outcome, c.Reason)
	}
	text := mustRun(t, server, cmdTimeout, nil, "stats", "highload", "autotune").Stdout.String()
	if !strings.Contains(text, "go.GOGC") || !strings.Contains(text, "#1 ") {
		t.Fatalf("autotune text lacks the knob or the first change:\n%s", text)
	}

	mustRun(t, server, cmdTimeout, nil, "stats", "highload", "autotune", "freeze", "-r", "integration test")
	frozen := tunerOf(t, server)
	if !frozen.Frozen || frozen.State != "frozen" {
		t.Fatalf("after freeze: %+v", frozen)
	}
	for _, k := range frozen.Knobs {
		if b := knobs[k.Name]; k.Value < b.min || k.Value > b.max {
			t.Fatalf("%s = %g outside its bounds %+v", k.Name, k.Value, b)
		}
	}

	// Frozen, a knob can be set by hand (snapped to its step); outside its
	// bounds it is refused; running, set is refused.
	mustRun(t, server, cmdTimeout, nil, "stats", "highload", "autotune", "set", "go.GOGC", "210", "-r", "integration test")
	gogc := -1.0
	for _, k := range tunerOf(t, server).Knobs {
		if k.Name == "go.GOGC" {
			gogc = k.Value
		}
	}
	if gogc != 200 {
		t.Fatalf("go.GOGC = %g after `autotune set go.GOGC 210`, want 200 (its step is 25)", gogc)
	}
	if msg := mustFail(t, server, "stats", "highload", "autotune", "set", "go.GOGC", "5000"); !strings.Contains(msg, "outside") {
		t.Fatalf("set outside the bounds: %q", msg)
	}
	mustRun(t, server, cmdTimeout, nil, "stats", "highload", "autotune", "resume")
	if msg := mustFail(t, server, "stats", "highload", "autotune", "set", "go.GOGC", "100"); !strings.Contains(msg, "freeze") {
		t.Fatalf("set on a running tuner: %q", msg)
	}
}
