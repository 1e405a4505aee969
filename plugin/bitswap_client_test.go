package plugin

import (
	"strings"
	"testing"
	"time"

	kconfig "github.com/ipfs/kubo/config"

	"github.com/kubo-highload/highload/plugin/hlconfig"
)

func TestBitswapClientOptionsApplyResolvedNameWritten(t *testing.T) {
	cfg := parse(t, map[string]any{"Bitswap": map[string]any{}})
	opts, applied := bitswapClientOptions(cfg.Bitswap, cfg.Resolved().Bitswap)
	// The plugin's default (no simulated DONT_HAVEs) differs from boxo's,
	// so it is applied even when not written; the timeout equals boxo's.
	if len(opts) != 1 || len(applied) != 0 {
		t.Fatalf("nothing written: %d options (want 1), applied %v (want none)", len(opts), applied)
	}
	if opts, _ := bitswapClientOptions(nil, nil); len(opts) != 0 {
		t.Fatal("nil section produced options")
	}
	cfg = parse(t, map[string]any{"Bitswap": map[string]any{
		"SimulateDontHaveOnTimeout": true, "DontHaveMinTimeout": "2s",
	}})
	opts, applied = bitswapClientOptions(cfg.Bitswap, cfg.Resolved().Bitswap)
	if len(opts) != 2 {
		t.Fatalf("want 2 options, got %d (%v)", len(opts), applied)
	}
	got := strings.Join(applied, ",")
	for _, want := range []string{"SimulateDontHaveOnTimeout=true", "DontHaveMinTimeout=2s"} {
		if !strings.Contains(got, want) {
			t.Errorf("applied %q lacks %q", got, want)
		}
	}
	// The server caps' own list stays free of client keys.
	if _, sa := bitswapOptions(cfg.Bitswap); len(sa) != 0 {
		t.Fatalf("server caps list client keys: %v", sa)
	}
}

func TestBitswapDecoratorAppliesClientDefaults(t *testing.T) {
	cfg := parse(t, map[string]any{"Bitswap": map[string]any{"Adaptive": false}})
	out, err := bitswapDecorator(cfg.Bitswap, cfg.Resolved().Bitswap, nil)(bitswapOptionsIn{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Opts) != 1 {
		t.Fatalf("want the one client option (no simulated DONT_HAVEs), got %d options", len(out.Opts))
	}
}

func TestBitswapClientOptionsRejectBadValues(t *testing.T) {
	for _, raw := range []map[string]any{
		{"DontHaveMinTimeout": "0s"},
		{"DontHaveMinTimeout": "2h"},
		{"DontHaveMinTimeout": "soon"},
		{"SimulateDontHaveOnTimeout": "maybe"},
	} {
		if _, err := hlconfig.Parse(map[string]any{"Bitswap": raw}); err == nil {
			t.Errorf("%v: accepted", raw)
		}
	}
}

func TestDontHaveTimeoutConfigKeepsBoundsOrdered(t *testing.T) {
	c := dontHaveTimeoutConfig(100 * time.Millisecond)
	if c.MinTimeout != 100*time.Millisecond || c.MaxTimeout != 7*time.Second || c.DontHaveTimeout != 5*time.Second {
		t.Fatalf("min 100ms: got min %v max %v default %v; want boxo's max 7s and default 5s kept", c.MinTimeout, c.MaxTimeout, c.DontHaveTimeout)
	}
	c = dontHaveTimeoutConfig(30 * time.Second)
	if c.MinTimeout != 30*time.Second || c.MaxTimeout != 30*time.Second || c.DontHaveTimeout != 30*time.Second {
		t.Fatalf("min 30s: got min %v max %v default %v; want all raised to 30s", c.MinTimeout, c.MaxTimeout, c.DontHaveTimeout)
	}
}

func TestProfileRaisesServerCapsKeepsUserValues(t *testing.T) {
	c := &kconfig.Config{}
	if err := applyProfile(c); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, c.Plugins.Plugins[Name].Config.(map[string]any))
	if got := cfg.Bitswap.TargetMessageSize.WithDefault(0); got != 256<<10 {
		t.Fatalf("TargetMessageSize %d, want 256KiB", got)
	}
	if got := cfg.Bitswap.MaxOutstandingBytesPerPeer.WithDefault(0); got != 1<<20 {
		t.Fatalf("MaxOutstandingBytesPerPeer %d, want Kubo's 1MiB (the comparator's in-flight estimate keeps a peer at that cap from holding the others)", got)
	}
	if got := cfg.Bitswap.TaskWorkerCount.WithDefault(0); got != 16 {
		t.Fatalf("TaskWorkerCount %d, want 16", got)
	}
	if got := cfg.Bitswap.WantHaveReplaceSize.WithDefault(0); got != 1<<10 {
		t.Fatalf("WantHaveReplaceSize %d, want Kubo's 1KiB (12KiB made multi-provider fetches take every block from one provider)", got)
	}
	// A value the user chose survives the profile.
	c = &kconfig.Config{}
	c.Plugins.Plugins = map[string]kconfig.Plugin{Name: {Config: map[string]any{
		"Bitswap": map[string]any{"TargetMessageSize": "64KiB"}}}}
	if err := applyProfile(c); err != nil {
		t.Fatal(err)
	}
	cfg = parse(t, c.Plugins.Plugins[Name].Config.(map[string]any))
	if got := cfg.Bitswap.TargetMessageSize.WithDefault(0); got != 64<<10 {
		t.Fatalf("user's TargetMessageSize replaced: %d", got)
	}
}
