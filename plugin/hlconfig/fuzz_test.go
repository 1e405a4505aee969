package hlconfig

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary JSON to the parser: it must never panic, every
// error must name the plugin, and whatever it accepts must survive a round
// trip through the profile encoding unchanged.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`null`, `{}`, `"x"`, `[1,2]`,
		`{"Bitswap":{"MaxOutstandingBytesPerPeer":"12QB"}}`,
		`{"Bitswap":{"TaskWorkerCount":1e300,"TargetMessageSize":1.5}}`,
		`{"Bitswap":{"Enabled":true,"MaxOutstandingBytesPerPeer":"1MiB"},"Metrics":{"Enabled":false}}`,
		`{"Health":{"Enabled":null},"AutoTune":[]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var raw any
		if json.Unmarshal([]byte(in), &raw) != nil {
			return
		}
		cfg, err := Parse(raw)
		if err != nil {
			if !strings.HasPrefix(err.Error(), ErrPrefix) {
				t.Fatalf("error without prefix: %q", err)
			}
			return
		}
		m, err := cfg.ToMap()
		if err != nil {
			t.Fatalf("accepted config does not encode: %v", err)
		}
		buf, _ := json.Marshal(m)
		var again any
		_ = json.Unmarshal(buf, &again)
		cfg2, err := Parse(again)
		if err != nil {
			t.Fatalf("re-parse of %s failed: %v", buf, err)
		}
		a, _ := json.Marshal(cfg.Resolved())
		b, _ := json.Marshal(cfg2.Resolved())
		if string(a) != string(b) {
			t.Fatalf("round trip changed config: %s vs %s", a, b)
		}
		_ = cfg.Resolved().Fields()
	})
}
