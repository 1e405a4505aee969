package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/kubo-highload/highload/plugin/hlconfig"
)

func TestBitswapClientOptionsOnlyForSetKeys(t *testing.T) {
	cfg := parse(t, map[string]any{"Bitswap": map[string]any{}})
	if opts, applied := bitswapClientOptions(cfg.Bitswap); len(opts) != 0 || len(applied) != 0 {
		t.Fatalf("unset keys produced options: %v", applied)
	}
	cfg = parse(t, map[string]any{"Bitswap": map[string]any{
		"SimulateDontHaveOnTimeout": false, "DontHaveMinTimeout": "2s",
	}})
	opts, applied := bitswapOptions(cfg.Bitswap)
	if len(opts) != 2 {
		t.Fatalf("want 2 options, got %d (%v)", len(opts), applied)
	}
	got := strings.Join(applied, ",")
	for _, want := range []string{"SimulateDontHaveOnTimeout=false", "DontHaveMinTimeout=2s"} {
		if !strings.Contains(got, want) {
			t.Errorf("applied %q lacks %q", got, want)
		}
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
