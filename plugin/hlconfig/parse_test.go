package hlconfig

import (
	"encoding/json"
	"strings"
	"testing"
)

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return v
}

func TestParseNilIsDefaults(t *testing.T) {
	cfg, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Resolved()
	if got := r.Bitswap.TaskWorkerCount.WithDefault(-1); got != 8 {
		t.Fatalf("default TaskWorkerCount = %d, want 8", got)
	}
	if got := r.Bitswap.MaxOutstandingBytesPerPeer.WithDefault(0); got != 1<<20 {
		t.Fatalf("default MaxOutstandingBytesPerPeer = %d, want 1MiB", got)
	}
	if !r.Metrics.Enabled.WithDefault(false) || r.AutoTune.Enabled.WithDefault(true) {
		t.Fatalf("flag defaults wrong: metrics=%v autotune=%v", r.Metrics.Enabled, r.AutoTune.Enabled)
	}
}

func TestParseValid(t *testing.T) {
	cfg, err := Parse(mustJSON(t, `{"Bitswap":{"MaxOutstandingBytesPerPeer":"32MiB","TaskWorkerCount":32,"Enabled":false},"Metrics":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Bitswap.MaxOutstandingBytesPerPeer.WithDefault(0); got != 32<<20 {
		t.Fatalf("MaxOutstandingBytesPerPeer = %d", got)
	}
	if got := cfg.Bitswap.TaskWorkerCount.WithDefault(0); got != 32 {
		t.Fatalf("TaskWorkerCount = %d", got)
	}
	if cfg.Bitswap.Enabled.WithDefault(true) {
		t.Fatal("Enabled false was lost")
	}
	// Unset leaves stay unset until resolved, so plugin code can tell them apart.
	if !cfg.Bitswap.TargetMessageSize.IsDefault() {
		t.Fatal("TargetMessageSize should be unset")
	}
	if cfg.Resolved().Bitswap.TargetMessageSize.WithDefault(0) != 16<<10 {
		t.Fatal("resolved TargetMessageSize should be 16KiB")
	}
	// A size may also be a plain number of bytes, as in Kubo.
	if cfg, err = Parse(mustJSON(t, `{"Bitswap":{"TargetMessageSize":65536}}`)); err != nil || cfg.Bitswap.TargetMessageSize.WithDefault(0) != 65536 {
		t.Fatalf("numeric size: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"Bitswap":{"MaxOutstandingBytesPerPeer":"12QB"}}`, `highload: Config.Bitswap.MaxOutstandingBytesPerPeer: "12QB" is not a size`},
		{`{"Bitswap":{"MaxOutstandingBytesPerPeer":"16GiB"}}`, `Config.Bitswap.MaxOutstandingBytesPerPeer: "16GiB" is out of range; accepted: 64KiB to 1GiB`},
		{`{"Bitswap":{"TaskWorkerCount":0}}`, `Config.Bitswap.TaskWorkerCount: 0 is out of range; accepted: 1 to 512`},
		{`{"Bitswap":{"TaskWorkerCount":1.5}}`, `Config.Bitswap.TaskWorkerCount: 1.5 is not an integer`},
		{`{"Bitswap":{"TaskWorkerCount":"8"}}`, `Config.Bitswap.TaskWorkerCount: "8" is not an integer`},
		{`{"Bitswap":{"Enabled":"yes"}}`, `Config.Bitswap.Enabled: "yes" is not a boolean`},
		{`{"Bitswap":{"MaxOutstandingBytes":"1MiB"}}`, `Config.Bitswap.MaxOutstandingBytes: unknown key; did you mean "MaxOutstandingBytesPerPeer"?`},
		{`{"Bitswap":{"taskworkercount":4}}`, `did you mean "TaskWorkerCount"?`},
		{`{"Bitswapp":{}}`, `Config.Bitswapp: unknown key; did you mean "Bitswap"?`},
		{`{"Zebra":1}`, `Config.Zebra: unknown key; accepted keys: Bitswap, ConnMgr, Health, AutoTune, Metrics, Runtime`},
		{`{"Bitswap":"fast"}`, `Config.Bitswap: expected an object of settings, got "fast"`},
		{`"fast"`, `highload: Config: expected an object of settings, got "fast"`},
		{`{"Bitswap":{"MaxOutstandingBytesPerPeer":-5}}`, `-5 is not a size`},
	}
	for _, c := range cases {
		_, err := Parse(mustJSON(t, c.in))
		if err == nil {
			t.Errorf("Parse(%s) accepted bad input", c.in)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%s):\n got  %q\n want %q", c.in, err, c.want)
		}
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse(mustJSON(t, `{"Bitswap":{"TaskWorkerCount":0,"EngineTaskWorkerCount":-1},"Nope":true}`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"TaskWorkerCount: 0", "EngineTaskWorkerCount: -1", "Config.Nope"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestDefaultsAreValidAndRoundTrip(t *testing.T) {
	m, err := DefaultMap()
	if err != nil {
		t.Fatal(err)
	}
	// The profile's output must be accepted by the parser and mean the same.
	buf, _ := json.Marshal(m)
	cfg, err := Parse(mustJSON(t, string(buf)))
	if err != nil {
		t.Fatalf("defaults refused by the parser: %v\n%s", err, buf)
	}
	a, _ := json.Marshal(cfg.Resolved())
	b, _ := json.Marshal((&Config{}).Resolved())
	if string(a) != string(b) {
		t.Fatalf("round trip changed the config:\n%s\n%s", a, b)
	}
	for _, f := range cfg.Fields() {
		if f.Default == "" || f.Doc == "" {
			t.Errorf("%s has no default or no doc tag", f.Path)
		}
		if f.Value == "default" {
			t.Errorf("%s is not written by the defaults", f.Path)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"Bitswap", "ConnMgr", "Health", "AutoTune", "Metrics", "Runtime"}
	for in, want := range map[string]string{"Bitswp": "Bitswap", "connmgr": "ConnMgr", "Autotune": "AutoTune", "Metric": "Metrics", "Xylophone": ""} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseStringList(t *testing.T) {
	cfg, err := Parse(mustJSON(t, `{"ConnMgr":{"ProtectedPeers":["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWExample","x"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ConnMgr.ProtectedPeers; len(got) != 2 || got[1] != "x" {
		t.Fatalf("ProtectedPeers = %q", got)
	}
	// Absent or null: an empty list once resolved, never null in the profile.
	for _, in := range []string{`{}`, `{"ConnMgr":{"ProtectedPeers":null}}`} {
		cfg, err := Parse(mustJSON(t, in))
		if err != nil {
			t.Fatal(err)
		}
		r := cfg.Resolved()
		if r.ConnMgr.ProtectedPeers == nil || len(r.ConnMgr.ProtectedPeers) != 0 {
			t.Fatalf("%s: resolved ProtectedPeers = %#v", in, r.ConnMgr.ProtectedPeers)
		}
		m, _ := r.ToMap()
		if l, ok := m["ConnMgr"].(map[string]any)["ProtectedPeers"].([]any); !ok || len(l) != 0 {
			t.Fatalf("%s: profile writes %#v", in, m["ConnMgr"])
		}
	}
	for in, want := range map[string]string{
		`{"ConnMgr":{"ProtectedPeers":"/ip4/1.2.3.4"}}`: `Config.ConnMgr.ProtectedPeers: "/ip4/1.2.3.4" is not a list of strings`,
		`{"ConnMgr":{"ProtectedPeers":["a",3]}}`:        `Config.ConnMgr.ProtectedPeers[1]: 3 is not a string`,
		`{"ConnMgr":{"ProtectedPeers":[{}]}}`:           `Config.ConnMgr.ProtectedPeers[0]: an object is not a string`,
	} {
		_, err := Parse(mustJSON(t, in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
	for _, f := range cfg.Fields() {
		if f.Path == "Config.ConnMgr.ProtectedPeers" && (f.Kind != "string list" || f.Default != "[]" ||
			f.Value != "[/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWExample, x]") {
			t.Errorf("field %+v", f)
		}
	}
}
