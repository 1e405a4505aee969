package tiered

import (
	"encoding/json"
	"strings"
	"testing"
)

func specOf(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const goodSpec = `{"type":"tiered","tiers":[
 {"type":"memory","capacity":"512MiB"},
 {"name":"fast","child":{"type":"flatfs","path":"blocks","sync":false,"shardFunc":"/repo/flatfs/shard/v1/next-to-last/2"},"capacity":"50GiB"},
 {"child":{"type":"pebbleds","path":"/mnt/big/pebble"},"capacity":"2TiB"}],
 "compressThreshold":"64KiB","highWatermark":0.95,"lowWatermark":0.85,"moverRate":"8MiB","moverInterval":"2s","promoteHits":3}`

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec(specOf(t, goodSpec))
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryCapacity != 512<<20 || len(s.Tiers) != 2 || s.Tiers[0].Capacity != 50<<30 ||
		s.Tiers[1].Capacity != 2<<40 || s.Tiers[0].Name != "fast" || s.Tiers[1].Name != "tier1" {
		t.Fatalf("parsed %+v", s)
	}
	if s.CompressThreshold != 64<<10 || s.HighWatermark != 0.95 || s.LowWatermark != 0.85 ||
		s.MoverRate != 8<<20 || s.MoverInterval.Seconds() != 2 || s.PromoteHits != 3 {
		t.Fatalf("tunables %+v", s)
	}
}

func TestParseSpecRefusals(t *testing.T) {
	dur := `{"child":{"type":"flatfs","path":"a"},"capacity":"1GiB"}`
	cases := map[string]string{
		`{"tiers":[]}`: "tiers",
		`{"tiers":[{"type":"ssd","capacity":"1GiB"}]}`:                                       "tiers[0].type",
		`{"tiers":[{"capacity":"1GiB"}]}`:                                                    "tiers[0].child",
		`{"tiers":[{"child":{"path":"x"},"capacity":"1GiB"}]}`:                               "tiers[0].child.type",
		`{"tiers":[{"child":{"type":"flatfs"},"capacity":"1MiB"}]}`:                          "tiers[0].capacity",
		`{"tiers":[{"child":{"type":"flatfs"}}]}`:                                            "tiers[0].capacity",
		`{"tiers":[` + dur + `,{"type":"memory","capacity":"1GiB"}]}`:                        "tiers[1].type",
		`{"tiers":[{"type":"memory","capacity":"100KiB"},` + dur + `]}`:                      "tiers[0].capacity",
		`{"tiers":[` + dur + `,{"child":{"type":"flatfs","path":"./a"},"capacity":"1GiB"}]}`: "tiers[1].child.path",
		`{"tiers":[` + dur + `],"lowWatermark":0.95}`:                                        "lowWatermark",
		`{"tiers":[` + dur + `],"colour":1}`:                                                 "colour",
		`{"tiers":[{"child":{"type":"flatfs"},"capacity":"1GiB","speed":1}]}`:                "tiers[0].speed",
		`{"tiers":[` + dur + `],"moverInterval":"1ns"}`:                                      "moverInterval",
		`{"tiers":[` + dur + `],"type":"flatfs"}`:                                            "type",
		`{"tiers":[` + dur + `],"memoryAdmitReads":0}`:                                       "memoryAdmitReads",
		`{"tiers":[` + dur + `],"memoryAdmitReads":1.5}`:                                     "memoryAdmitReads",
		`{"tiers":[{"type":"memory","capacity":"1GiB"}]}`:                                    "durable tier",
	}
	for spec, field := range cases {
		_, err := ParseSpec(specOf(t, spec))
		if err == nil {
			t.Fatalf("%s accepted", spec)
		}
		if !strings.Contains(err.Error(), field) || !strings.HasPrefix(err.Error(), "tiered: ") {
			t.Fatalf("%s: error %q does not name %q", spec, err, field)
		}
	}
}

// FuzzParseSpec: any JSON object either parses to a spec with at least one
// durable tier and sane capacities, or is refused with an error; never a
// panic.
func FuzzParseSpec(f *testing.F) {
	f.Add(goodSpec)
	f.Add(`{"tiers":[{"child":{"type":"flatfs","path":"a"},"capacity":16777216}]}`)
	f.Add(`{"tiers":[{"type":"memory","capacity":"1GiB"},{"child":{"type":"x"},"capacity":"1e3GB"}],"promoteHits":2.5}`)
	f.Fuzz(func(t *testing.T, js string) {
		var m map[string]any
		if json.Unmarshal([]byte(js), &m) != nil {
			return
		}
		s, err := ParseSpec(m)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "tiered: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		if len(s.Tiers) == 0 {
			t.Fatal("spec accepted without a durable tier")
		}
		for _, tr := range s.Tiers {
			if tr.Capacity < MinDurableCapacity || tr.Child == nil {
				t.Fatalf("bad tier accepted: %+v", tr)
			}
		}
		if s.MemoryCapacity != 0 && s.MemoryCapacity < MinMemoryCapacity {
			t.Fatal("tiny memory tier accepted")
		}
	})
}
