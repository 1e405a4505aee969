package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ipfs/kubo/config"

	"github.com/kubo-highload/highload/plugin/hlstate"
)

// TestPluginLoadedInDaemon: with no plugin config at all, the daemon loads
// the plugin, Bitswap is wired, the collectors are served, and once the
// daemon stops the same command answers from an offline node.
func TestPluginLoadedInDaemon(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newNode(t, h)
	startDaemon(n)

	s := stats(t, n)
	if s.Plugin != "highload" || !s.Loaded || !s.Online {
		t.Fatalf("stats highload in the daemon: want Plugin=highload Loaded=true Online=true, got %+v", s)
	}
	if s.Version != hlstate.Version {
		t.Fatalf("binary reports plugin version %q, source says %q: the binary is stale, rebuild it (make build)", s.Version, hlstate.Version)
	}
	bs, ok := s.component("bitswap")
	if !ok || bs.Status != hlstate.StatusActive {
		t.Fatalf("bitswap component: want status %q, got %+v (found=%v)", hlstate.StatusActive, bs, ok)
	}
	if strings.Contains(bs.Detail, "applied:") {
		t.Errorf("bitswap detail with no Bitswap keys set claims overrides: %q", bs.Detail)
	}
	if m, ok := s.component("metrics"); !ok || m.Status != hlstate.StatusActive {
		t.Errorf("metrics component: want status %q, got %+v (found=%v)", hlstate.StatusActive, m, ok)
	}
	if s.Config == nil {
		t.Errorf("stats highload: Config (effective config) is empty")
	}

	lines := metrics(t, n)
	wantInfo := fmt.Sprintf(`highload_plugin_info{version=%q} 1`, s.Version)
	if got := withPrefix(lines, "highload_plugin_info"); len(got) != 1 || got[0] != wantInfo {
		t.Errorf("metrics: want exactly %q, got %q", wantInfo, got)
	}
	wantBitswap := `highload_plugin_component_status{component="bitswap",status="active"} 1`
	if got := withPrefix(lines, `highload_plugin_component_status{component="bitswap",`); len(got) != 1 || got[0] != wantBitswap {
		t.Errorf("metrics: want exactly %q, got %q", wantBitswap, got)
	}

	stopDaemon(t, n)
	off := stats(t, n)
	if !off.Loaded || off.Online {
		t.Fatalf("stats highload with the daemon stopped: want Loaded=true Online=false, got %+v", off)
	}
	if bs, _ := off.component("bitswap"); bs.Status != hlstate.StatusIdle {
		t.Errorf("offline bitswap component: want status %q, got %+v", hlstate.StatusIdle, bs)
	}
}

// TestBitswapCapsApplied: Bitswap keys set in the plugin config reach the
// decorator, which names exactly the keys it applied.
func TestBitswapCapsApplied(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newNode(t, h)
	setPlugin(n, config.Plugin{Config: map[string]any{
		"Bitswap": map[string]any{
			"TaskWorkerCount":            32,
			"MaxOutstandingBytesPerPeer": "32MiB",
		},
	}})
	startDaemon(n)

	s := stats(t, n)
	if !s.Loaded || !s.Online {
		t.Fatalf("stats highload: want Loaded=true Online=true, got %+v", s)
	}
	bs, ok := s.component("bitswap")
	if !ok || bs.Status != hlstate.StatusActive {
		t.Fatalf("bitswap component: want status %q, got %+v (found=%v)", hlstate.StatusActive, bs, ok)
	}
	for _, want := range []string{"TaskWorkerCount=32", "MaxOutstandingBytesPerPeer=32MiB"} {
		if !strings.Contains(bs.Detail, want) {
			t.Errorf("bitswap detail %q does not name %q", bs.Detail, want)
		}
	}
	// Only the keys the user set are applied; the others stay Kubo's.
	for _, unset := range []string{"TargetMessageSize", "EngineTaskWorkerCount", "EngineBlockstoreWorkerCount"} {
		if strings.Contains(bs.Detail, unset) {
			t.Errorf("bitswap detail %q names %s, which is not set", bs.Detail, unset)
		}
	}

	b, _ := s.Config["Bitswap"].(map[string]any)
	if b["TaskWorkerCount"] != float64(32) || b["MaxOutstandingBytesPerPeer"] != "32MiB" {
		t.Errorf("effective config: want TaskWorkerCount=32 MaxOutstandingBytesPerPeer=32MiB, got %v", s.Config["Bitswap"])
	}
}

// TestDisabledIsPlainKubo: Plugins.Plugins.highload.Disabled makes Kubo skip
// the plugin; the daemon runs, the command says so, no highload metrics.
func TestDisabledIsPlainKubo(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newNode(t, h)
	setPlugin(n, config.Plugin{Disabled: true})
	startDaemon(n)

	s := stats(t, n)
	if s.Loaded || !s.Online {
		t.Fatalf("stats highload with the plugin disabled: want Loaded=false Online=true, got %+v", s)
	}
	if s.Config != nil {
		t.Errorf("stats highload with the plugin disabled shows a config: %v", s.Config)
	}
	if c, ok := s.component("highload"); !ok || c.Status != hlstate.StatusDisabled || len(s.Components) != 1 {
		t.Errorf("stats highload with the plugin disabled: want the single component highload/%s, got %+v", hlstate.StatusDisabled, s.Components)
	}

	lines := metrics(t, n)
	if got := withPrefix(lines, "highload_"); len(got) != 0 {
		t.Errorf("metrics with the plugin disabled: want no highload_* samples, got %q", got)
	}
	// Make sure we looked at a real exposition: Kubo's own metrics are there.
	if len(withPrefix(lines, "ipfs_")) == 0 && len(withPrefix(lines, "go_")) == 0 {
		t.Errorf("metrics: neither ipfs_* nor go_* samples found; is this the right endpoint?")
	}
}
