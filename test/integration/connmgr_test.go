package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/test/cli/harness"

	"github.com/kubo-highload/highload/plugin/hlstate"
)

// connMgrStats mirrors the JSON of `ipfs stats highload connmgr` (the fields
// the tests read), so that the wire format is checked.
type connMgrStats struct {
	LowWater   int    `json:"low_water"`
	HighWater  int    `json:"high_water"`
	Limit      int    `json:"limit"`
	Reason     string `json:"reason"`
	Conns      int    `json:"conns"`
	Peers      int    `json:"peers"`
	Trimmed    uint64 `json:"trimmed"`
	TrimRounds uint64 `json:"trim_rounds"`
	Protected  []struct {
		ID        string   `json:"id"`
		Tags      []string `json:"tags"`
		Connected bool     `json:"connected"`
	} `json:"protected"`
	Pool []struct {
		ID         string `json:"id"`
		Connected  bool   `json:"connected"`
		Reconnects uint64 `json:"reconnects"`
	} `json:"pool"`
	TLSWrites *struct {
		Records uint64 `json:"records"`
		Writes  uint64 `json:"writes"`
		Bytes   uint64 `json:"bytes"`
	} `json:"tls_writes"`
}

func connMgrStat(t *testing.T, n *harness.Node) *connMgrStats {
	t.Helper()
	res := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "connmgr", "--enc=json")
	var s connMgrStats
	if err := json.Unmarshal(res.Stdout.Bytes(), &s); err != nil {
		t.Fatalf("node %d: decoding `ipfs stats highload connmgr --enc=json`: %v\n%s", n.ID, err, res.Stdout.String())
	}
	return &s
}

func swarmPeers(t *testing.T, n *harness.Node) string {
	t.Helper()
	return mustRun(t, n, cmdTimeout, nil, "swarm", "peers").Stdout.String()
}

// TestConnMgrInDaemon runs our manager in a real daemon with tiny
// watermarks: strangers are trimmed down to LowWater by the background
// trimmer, the protected pool peer survives, and after `ipfs swarm
// disconnect` the pool redials it. swarm peers/connect/resources keep
// working.
func TestConnMgrInDaemon(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	a := newNode(t, h)
	friend := newNode(t, h)
	var strangers []*harness.Node
	for range 3 {
		strangers = append(strangers, newNode(t, h))
	}
	startDaemon(friend)
	friendAddr := friend.SwarmAddrs()[0].String() + "/p2p/" + friend.PeerID().String()

	a.UpdateConfig(func(cfg *config.Config) {
		cfg.Swarm.ConnMgr.LowWater = config.NewOptionalInteger(1)
		cfg.Swarm.ConnMgr.HighWater = config.NewOptionalInteger(2)
		cfg.Swarm.ConnMgr.GracePeriod = config.NewOptionalDuration(5 * time.Second)
		cfg.Swarm.ConnMgr.SilencePeriod = config.NewOptionalDuration(500 * time.Millisecond)
	})
	setPlugin(a, config.Plugin{Config: map[string]any{"ConnMgr": map[string]any{
		"ProtectedPeers": []string{friendAddr},
		"RoundPause":     "100ms",
		"MinHighWater":   2,
		"MaxHighWater":   2,
		"MinGracePeriod": "5s",
	}}})
	startDaemon(a)

	cm, _ := stats(t, a).component("connmgr")
	if cm.Status != hlstate.StatusActive || !strings.Contains(cm.Detail, "HighWater 2") {
		t.Fatalf("connmgr component: %+v", cm)
	}
	friendID := friend.PeerID().String()
	if err := waitFor(20*time.Second, func() (bool, string) {
		s := connMgrStat(t, a)
		return len(s.Pool) == 1 && s.Pool[0].Connected, "pool not connected to the protected peer"
	}); err != nil {
		t.Fatal(err)
	}
	s := connMgrStat(t, a)
	if s.LowWater != 1 || s.HighWater != 2 || s.Limit <= 2 || len(s.Protected) != 1 || s.Protected[0].ID != friendID {
		t.Fatalf("stats: %+v", s)
	}

	// Start the strangers first, then connect them back to back: all three
	// must be connected within one grace period (5 s) for the count to pass
	// HighWater; one that arrives after the others were trimmed would leave
	// the count at HighWater, where nothing is trimmed.
	for _, n := range strangers {
		startDaemon(n)
	}
	for _, n := range strangers {
		mustRun(t, n, cmdTimeout, nil, "swarm", "connect", a.SwarmAddrs()[0].String()+"/p2p/"+a.PeerID().String())
	}
	// 4 connections > HighWater 2: once the strangers' grace is over, the
	// background trimmer closes them down to LowWater 1: only the friend.
	if err := waitFor(30*time.Second, func() (bool, string) {
		s := connMgrStat(t, a)
		peers := swarmPeers(t, a)
		return s.Conns == 1 && s.Trimmed >= 3 && strings.Count(strings.TrimSpace(peers), "\n") == 0 &&
				strings.Contains(peers, friendID),
			fmt.Sprintf("stats %+v; swarm peers:\n%s", *s, peers)
	}); err != nil {
		t.Log(run(a, cmdTimeout, nil, "stats", "highload", "connmgr").Stdout.String())
		t.Log(run(a, cmdTimeout, nil, "swarm", "peers", "--verbose").Stdout.String())
		t.Log(run(a, cmdTimeout, nil, "swarm", "peers", "--enc=json").Stdout.String())
		t.Fatal(err)
	}
	if s := connMgrStat(t, a); !s.Protected[0].Connected {
		t.Fatalf("protected peer trimmed: %+v", s)
	}

	// Kill the protected peer's connections (`/p2p/<id>` alone closes them
	// all): the pool redials it. The bound is generous: how fast is W5's
	// "protected reconnect" figure, not this test's business.
	mustRun(t, a, cmdTimeout, nil, "swarm", "disconnect", "/p2p/"+friendID)
	if err := waitFor(30*time.Second, func() (bool, string) {
		s := connMgrStat(t, a)
		return len(s.Pool) == 1 && s.Pool[0].Connected && s.Pool[0].Reconnects >= 1,
			"not reconnected"
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(swarmPeers(t, a), friendID) {
		t.Fatal("swarm peers does not list the reconnected friend")
	}

	// Kubo's commands that touch the host and rcmgr still work.
	if out := mustRun(t, a, cmdTimeout, nil, "swarm", "resources").Stdout.String(); !strings.Contains(out, "ConnsInbound") {
		t.Errorf("swarm resources output:\n%s", out)
	}
	text := mustRun(t, a, cmdTimeout, nil, "stats", "highload", "connmgr").Stdout.String()
	for _, want := range []string{"Watermarks:   low 1, high 2", "Pool (1):", friendID, "Streams:"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
	lines := metrics(t, a)
	if len(withPrefix(lines, `highload_connmgr_watermark_connections{mark="high"} 2`)) != 1 ||
		len(withPrefix(lines, "highload_connmgr_trimmed_connections_total")) != 1 {
		t.Errorf("metrics lack highload_connmgr_*:\n%s", strings.Join(withPrefix(lines, "highload_connmgr"), "\n"))
	}
}

// TestConnMgrBadConfig: inverted watermarks and bounds at or above the
// resource manager's limit stop the daemon with a message naming the key.
func TestConnMgrBadConfig(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newNode(t, h)
	for _, tc := range []struct {
		name      string
		low, high int64
		plugin    map[string]any
		want      string
	}{
		{"inverted", 100, 50, nil, "Swarm.ConnMgr.LowWater (100) must be at least 0 and below Swarm.ConnMgr.HighWater (50)"},
		{"max above rcmgr", 32, 96, map[string]any{"MaxHighWater": 1000000}, "Config.ConnMgr.MaxHighWater (1000000) must be below the resource manager's connection limit"},
		{"min above high", 32, 96, map[string]any{"MinHighWater": 500}, "Config.ConnMgr.MinHighWater (500) is above Swarm.ConnMgr.HighWater (96)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer failOnPanic(t)
			n.UpdateConfig(func(cfg *config.Config) {
				cfg.Swarm.ConnMgr.LowWater = config.NewOptionalInteger(tc.low)
				cfg.Swarm.ConnMgr.HighWater = config.NewOptionalInteger(tc.high)
			})
			setPlugin(n, config.Plugin{Config: map[string]any{"ConnMgr": tc.plugin}})
			stderr := mustFail(t, n, "daemon")
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("ipfs daemon stderr lacks %q:\n%s", tc.want, stderr)
			}
		})
	}
	// ProtectedPeers is checked when the plugin loads: every command refuses.
	setPlugin(n, config.Plugin{Config: map[string]any{"ConnMgr": map[string]any{"ProtectedPeers": []string{"/ip4/1.2.3.4/tcp/1"}}}})
	if stderr := mustFail(t, n, "id"); !strings.Contains(stderr, "Config.ConnMgr.ProtectedPeers[0]") {
		t.Errorf("bad ProtectedPeers: stderr:\n%s", stderr)
	}
	// So is a malformed ClusterAPI URL (an unreachable one is only reported).
	setPlugin(n, config.Plugin{Config: map[string]any{"ConnMgr": map[string]any{"ClusterAPI": "127.0.0.1:9094"}}})
	if stderr := mustFail(t, n, "id"); !strings.Contains(stderr, "Config.ConnMgr.ClusterAPI") || !strings.Contains(stderr, "http or https") {
		t.Errorf("bad ClusterAPI: stderr:\n%s", stderr)
	}
}

// TestConnMgrClampFollowsRcmgr: with W7's raised watermarks (9,000/11,000)
// Kubo derives System.ConnsInbound and leaves the stream limits unlimited;
// the manager's clamp is exactly that ConnsInbound, as `ipfs swarm
// resources` shows it, and the configured watermarks stand unclamped.
func TestConnMgrClampFollowsRcmgr(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newNode(t, h)
	n.UpdateConfig(func(cfg *config.Config) {
		cfg.Swarm.ConnMgr.LowWater = config.NewOptionalInteger(9000)
		cfg.Swarm.ConnMgr.HighWater = config.NewOptionalInteger(11000)
		cfg.Swarm.ResourceMgr.MaxFileDescriptors = config.NewOptionalInteger(61440)
	})
	startDaemon(n)
	defer stopDaemon(t, n)

	var res struct {
		System map[string]any
	}
	out := mustRun(t, n, cmdTimeout, nil, "swarm", "resources", "--enc=json").Stdout.Bytes()
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("decoding `ipfs swarm resources --enc=json`: %v\n%s", err, out)
	}
	inbound, ok := res.System["ConnsInbound"].(float64)
	if !ok || inbound < 22000 {
		t.Fatalf("System.ConnsInbound = %v, want a number of at least 2 x HighWater (22000)", res.System["ConnsInbound"])
	}
	for _, k := range []string{"Conns", "Streams", "StreamsInbound"} {
		if v, ok := res.System[k].(float64); ok && v < inbound {
			t.Fatalf("System.%s = %v is below ConnsInbound %v: the test assumes Kubo's computed limits", k, v, inbound)
		}
	}
	s := connMgrStat(t, n)
	if s.Limit != int(inbound) {
		t.Errorf("manager's rcmgr limit %d, want System.ConnsInbound %d", s.Limit, int(inbound))
	}
	if s.HighWater != 11000 || s.LowWater != 9000 || strings.Contains(s.Reason, "clamped") {
		t.Errorf("watermarks %d/%d (%s), want 9000/11000 unclamped", s.LowWater, s.HighWater, s.Reason)
	}
}
