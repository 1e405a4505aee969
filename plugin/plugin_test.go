package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	kconfig "github.com/ipfs/kubo/config"
	kplugin "github.com/ipfs/kubo/plugin"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kubo-highload/highload/exchange"

	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

func parse(t *testing.T, raw map[string]any) *hlconfig.Config {
	t.Helper()
	cfg, err := hlconfig.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestBitswapOptionsOnlyForSetKeys(t *testing.T) {
	cfg := parse(t, map[string]any{"Bitswap": map[string]any{}})
	if opts, applied := bitswapOptions(cfg.Bitswap); len(opts) != 0 || len(applied) != 0 {
		t.Fatalf("unset keys produced options: %v", applied)
	}
	if opts, _ := bitswapOptions(nil); len(opts) != 0 {
		t.Fatal("nil section produced options")
	}
	cfg = parse(t, map[string]any{"Bitswap": map[string]any{
		"TaskWorkerCount": 32.0, "MaxOutstandingBytesPerPeer": "32MiB", "TargetMessageSize": 65536.0,
		"WantHaveReplaceSize": "12KiB",
	}})
	opts, applied := bitswapOptions(cfg.Bitswap)
	if len(opts) != 4 {
		t.Fatalf("want 4 options, got %d (%v)", len(opts), applied)
	}
	got := strings.Join(applied, ",")
	for _, want := range []string{"TaskWorkerCount=32", "MaxOutstandingBytesPerPeer=32MiB", "TargetMessageSize=65536", "WantHaveReplaceSize=12KiB"} {
		if !strings.Contains(got, want) {
			t.Errorf("applied %q lacks %q", got, want)
		}
	}
}

func TestBitswapDecoratorAppendsAfterKubo(t *testing.T) {
	hlstate.Reset()
	cfg := parse(t, map[string]any{"Bitswap": map[string]any{"TaskWorkerCount": 16.0, "Adaptive": false}})
	out, err := bitswapDecorator(cfg.Bitswap, cfg.Resolved().Bitswap, nil)(bitswapOptionsIn{Opts: nil})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Opts) != 2 { // the cap and the client's DONT_HAVE setting
		t.Fatalf("want our 2 options appended, got %d", len(out.Opts))
	}
	s := hlstate.Get()
	if len(s.Components) != 1 || s.Components[0].Status != hlstate.StatusActive || !strings.Contains(s.Components[0].Detail, "TaskWorkerCount=16") {
		t.Fatalf("state not recorded: %+v", s.Components)
	}
}

func TestBitswapDecoratorInstallsPolicy(t *testing.T) {
	hlstate.Reset()
	extra := "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
	vip := "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	cfg := parse(t, map[string]any{"Bitswap": map[string]any{"PriorityPeers": extra}})
	kc := &kconfig.Config{}
	id, _ := peer.Decode(vip)
	kc.Peering.Peers = []peer.AddrInfo{{ID: id}}
	out, err := bitswapDecorator(cfg.Bitswap, cfg.Resolved().Bitswap, nil)(bitswapOptionsIn{Cfg: kc})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Opts) != 5 {
		t.Fatalf("want the client's DONT_HAVE setting, filter, comparator, and the client's and the server's tracers, got %d options", len(out.Opts))
	}
	p := bsPolicy.Load()
	if p == nil {
		t.Fatal("no policy published")
	}
	defer p.Close()
	xid, _ := peer.Decode(extra)
	if p.ClassOf(id) != exchange.ClassPriority || p.ClassOf(xid) != exchange.ClassPriority || p.ClassOf("other") != exchange.ClassUnknown {
		t.Fatal("Peering.Peers and PriorityPeers are not in the priority class")
	}
	if st, ok := BitswapLive(); !ok || len(st.Classes) != 3 {
		t.Fatalf("live stats %v %+v", ok, st)
	}
	if f, ok := hlstate.Live("bitswap"); !ok || f() == nil {
		t.Fatal("no live view in hlstate")
	}
}

// The direct wants must see replies through the server's tracer, so a node
// whose Bitswap server is off sends none (they would only time out).
func TestBitswapDecoratorAttachesDirectWantsOnlyWithAServer(t *testing.T) {
	for _, serving := range []bool{true, false} {
		hlstate.Reset()
		cfg := parse(t, map[string]any{"Bitswap": map[string]any{"Adaptive": false}})
		kc := &kconfig.Config{}
		kc.Bitswap.ServerEnabled = kconfig.False
		if serving {
			kc.Bitswap.ServerEnabled = kconfig.True
		}
		direct := exchange.NewDirectWants()
		out, err := bitswapDecorator(cfg.Bitswap, cfg.Resolved().Bitswap, direct)(bitswapOptionsIn{Cfg: kc})
		if err != nil {
			t.Fatal(err)
		}
		if direct.Attached() != serving {
			t.Fatalf("server enabled %v: direct wants attached %v", serving, direct.Attached())
		}
		want := 1 // the client's DONT_HAVE setting
		if serving {
			want += 2 // the client's tracer (senders) and the server's (replies)
		}
		if len(out.Opts) != want {
			t.Fatalf("server enabled %v: %d options, want %d", serving, len(out.Opts), want)
		}
	}
}

func TestBitswapConfigErrors(t *testing.T) {
	for raw, want := range map[string]string{
		`{"PriorityPeers": "not-a-peer"}`:                            "Config.Bitswap.PriorityPeers",
		`{"PriorityShare": 90, "GoodShare": 10, "UnknownShare": 10}`: "at most 100",
		`{"BreakerCooldown": "10s", "BreakerMaxCooldown": "1s"}`:     "BreakerMaxCooldown",
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatal(err)
		}
		cfg := parse(t, map[string]any{"Bitswap": m})
		_, _, err := exchangeConfig(cfg.Resolved().Bitswap)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want it to name %q", raw, err, want)
		}
	}
}

func TestProfileWritesDefaultsAndKeepsUserValues(t *testing.T) {
	c := &kconfig.Config{}
	if err := applyProfile(c); err != nil {
		t.Fatal(err)
	}
	pl := c.Plugins.Plugins[Name]
	if pl.Disabled {
		t.Fatal("profile left the plugin disabled")
	}
	cfg := parse(t, pl.Config.(map[string]any))
	for _, f := range cfg.Fields() {
		if f.Value == "default" {
			t.Errorf("profile did not write %s", f.Path)
		}
	}
	// A user's value survives a second application.
	pl.Config.(map[string]any)["Bitswap"].(map[string]any)["TaskWorkerCount"] = 32.0
	c.Plugins.Plugins[Name] = kconfig.Plugin{Disabled: true, Config: pl.Config}
	if err := applyProfile(c); err != nil {
		t.Fatal(err)
	}
	cfg = parse(t, c.Plugins.Plugins[Name].Config.(map[string]any))
	if got := cfg.Bitswap.TaskWorkerCount.WithDefault(0); got != 32 {
		t.Fatalf("user value lost: TaskWorkerCount=%d", got)
	}
	if c.Plugins.Plugins[Name].Disabled {
		t.Fatal("applying the profile should enable the plugin")
	}
	// An invalid config is refused, not overwritten.
	c.Plugins.Plugins[Name] = kconfig.Plugin{Config: map[string]any{"Bitswap": map[string]any{"TaskWorkerCount": "many"}}}
	if err := applyProfile(c); err == nil || !strings.Contains(err.Error(), "Config.Bitswap.TaskWorkerCount") {
		t.Fatalf("invalid config not refused by name: %v", err)
	}
}

func TestInitRefusesBadConfig(t *testing.T) {
	p := &Highload{}
	err := p.Init(&kplugin.Environment{Config: map[string]any{"Bitswap": map[string]any{"MaxOutstandingBytesPerPeer": "12QB"}}})
	if err == nil || !strings.Contains(err.Error(), `highload: Config.Bitswap.MaxOutstandingBytesPerPeer: "12QB" is not a size`) {
		t.Fatalf("Init error = %v", err)
	}
	if err := p.Init(&kplugin.Environment{}); err != nil {
		t.Fatalf("Init with no config: %v", err)
	}
}

func TestIsConfigCommand(t *testing.T) {
	for args, want := range map[string]bool{
		"ipfs config Foo":                   true,
		"ipfs --api /ip4/1 config Foo":      true,
		"ipfs -c /tmp/x config show":        true,
		"ipfs --offline config show":        true,
		"ipfs daemon":                       false,
		"ipfs id":                           false,
		"ipfs -c config daemon":             false, // "config" is -c's value here
		"ipfs":                              false,
		"ipfs --enc json stats highload":    false,
		"ipfs --encoding=json config Foo":   true,
		"ipfs --api-auth x config Foo":      true,
		"ipfs --cid-base base32 config Foo": true,
	} {
		if got := isConfigCommand(strings.Fields(args)); got != want {
			t.Errorf("isConfigCommand(%q) = %v, want %v", args, got, want)
		}
	}
}

func TestProfileProvidePolicy(t *testing.T) {
	c := &kconfig.Config{}
	if err := applyProfile(c); err != nil {
		t.Fatal(err)
	}
	if got := c.Provide.Strategy.WithDefault(""); got != profileProvideStrategy {
		t.Fatalf("Provide.Strategy %q, want %q", got, profileProvideStrategy)
	}
	c.Provide.Strategy = kconfig.NewOptionalString("roots")
	if err := applyProfile(c); err != nil {
		t.Fatal(err)
	}
	if got := c.Provide.Strategy.WithDefault(""); got != "roots" {
		t.Fatalf("the profile overwrote the user's Provide.Strategy: %q", got)
	}
}
