package tiered

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	ds "github.com/ipfs/go-datastore"
)

// The spec, in the style of Kubo's Datastore.Spec:
//
//	{"type": "tiered",
//	 "tiers": [
//	   {"type": "memory", "capacity": "512MiB"},
//	   {"name": "fast", "child": {"type": "flatfs", "path": "blocks", ...}, "capacity": "50GiB"},
//	   {"name": "slow", "child": {"type": "flatfs", "path": "/mnt/big/blocks", ...}, "capacity": "2TiB"}],
//	 "compressThreshold": "32KiB", "highWatermark": 0.9, "lowWatermark": 0.8,
//	 "moverRate": "32MiB", "moverInterval": "5s", "promoteHits": 4,
//	 "memoryAdmitReads": 2}
//
// The memory tier is optional and must come first. Each durable tier has a
// child (any datastore spec, built by the caller) and a capacity. Every
// field but the tiers' children is a tunable: it is not part of the store's
// identity on disk.

// Capacity minimums.
const (
	// MinMemoryCapacity is the smallest memory tier a spec may ask for.
	MinMemoryCapacity = 1 << 20
	// MinDurableCapacity is the smallest durable tier a spec may ask for.
	MinDurableCapacity = 16 << 20
)

// Spec is a parsed tiered spec.
type Spec struct {
	// MemoryCapacity is the memory tier's byte budget (0: none).
	MemoryCapacity uint64
	// Tiers are the durable tiers, fastest first.
	Tiers []TierSpec
	// Tunables; zero means the Options default.
	CompressThreshold           int
	HighWatermark, LowWatermark float64
	MoverRate                   uint64
	MoverInterval               time.Duration
	PromoteHits                 int
	MemoryAdmitReads            int
}

// TierSpec is one durable tier of a spec.
type TierSpec struct {
	// Name labels the tier; default "tier<N>" counting durable tiers from 0.
	Name string
	// Child is the child datastore's spec, for the caller to build.
	Child map[string]any
	// Capacity is the tier's size in bytes.
	Capacity uint64
}

// ParseSpec parses and checks a tiered spec. Errors name the field at fault
// ("tiers[1].capacity: ...").
func ParseSpec(m map[string]any) (*Spec, error) {
	if err := onlyKeys(m, "", "type", "tiers", "mountpoint", "prefix", "name",
		"compressThreshold", "highWatermark", "lowWatermark", "moverRate", "moverInterval", "promoteHits", "memoryAdmitReads"); err != nil {
		return nil, err
	}
	if t, ok := m["type"]; ok && t != "tiered" {
		return nil, fmt.Errorf("tiered: type: want \"tiered\", got %v", t)
	}
	raw, ok := m["tiers"].([]any)
	if !ok || len(raw) == 0 {
		return nil, fmt.Errorf("tiered: tiers: want a non-empty list of tiers, got %T", m["tiers"])
	}
	s := &Spec{}
	paths := map[string]int{}
	for i, r := range raw {
		f := fmt.Sprintf("tiers[%d]", i)
		tm, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("tiered: %s: want an object, got %T", f, r)
		}
		if err := onlyKeys(tm, f+".", "type", "name", "child", "capacity"); err != nil {
			return nil, err
		}
		typ := "durable"
		if v, ok := tm["type"]; ok {
			str, ok := v.(string)
			if !ok || (str != "memory" && str != "durable") {
				return nil, fmt.Errorf("tiered: %s.type: unknown tier type %v (want \"memory\" or \"durable\")", f, v)
			}
			typ = str
		}
		c, err := parseBytes(tm["capacity"], f+".capacity")
		if err != nil {
			return nil, err
		}
		if typ == "memory" {
			if i != 0 {
				return nil, fmt.Errorf("tiered: %s.type: the memory tier must be the first tier", f)
			}
			if _, ok := tm["child"]; ok {
				return nil, fmt.Errorf("tiered: %s.child: a memory tier has no child", f)
			}
			if c < MinMemoryCapacity {
				return nil, fmt.Errorf("tiered: %s.capacity: %s is below the minimum %s for a memory tier",
					f, humanize.IBytes(c), humanize.IBytes(MinMemoryCapacity))
			}
			s.MemoryCapacity = c
			continue
		}
		child, ok := tm["child"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("tiered: %s.child: a durable tier needs a child datastore spec (an object), got %T", f, tm["child"])
		}
		if ct, _ := child["type"].(string); ct == "" {
			return nil, fmt.Errorf("tiered: %s.child.type: missing", f)
		} else if ct == "tiered" {
			return nil, fmt.Errorf("tiered: %s.child.type: a tiered store cannot be a tier", f)
		}
		if c < MinDurableCapacity {
			return nil, fmt.Errorf("tiered: %s.capacity: %s is below the minimum %s for a durable tier",
				f, humanize.IBytes(c), humanize.IBytes(MinDurableCapacity))
		}
		if p, ok := child["path"].(string); ok && p != "" {
			cp := filepath.Clean(p)
			if j, dup := paths[cp]; dup {
				return nil, fmt.Errorf("tiered: %s.child.path: %q is also the path of tiers[%d]", f, p, j)
			}
			paths[cp] = i
		}
		name, _ := tm["name"].(string)
		if name == "" {
			name = fmt.Sprintf("tier%d", len(s.Tiers))
		}
		s.Tiers = append(s.Tiers, TierSpec{Name: name, Child: child, Capacity: c})
	}
	if len(s.Tiers) == 0 {
		return nil, fmt.Errorf("tiered: tiers: at least one durable tier (with a child) is required")
	}
	if len(s.Tiers) > 15 {
		return nil, fmt.Errorf("tiered: tiers: at most 15 durable tiers, got %d", len(s.Tiers))
	}
	if v, ok := m["compressThreshold"]; ok {
		if n, ok := v.(float64); ok && n < 0 {
			s.CompressThreshold = -1
		} else {
			c, err := parseBytes(v, "compressThreshold")
			if err != nil {
				return nil, err
			}
			if c == 0 || c > MaxFrameRawSize {
				s.CompressThreshold = -1 // off
			} else {
				s.CompressThreshold = int(c)
			}
		}
	}
	var err error
	if s.HighWatermark, err = parseFraction(m, "highWatermark"); err != nil {
		return nil, err
	}
	if s.LowWatermark, err = parseFraction(m, "lowWatermark"); err != nil {
		return nil, err
	}
	hi, lo := s.HighWatermark, s.LowWatermark
	if hi == 0 {
		hi = 0.9
	}
	if lo == 0 {
		lo = 0.8
	}
	if lo >= hi {
		return nil, fmt.Errorf("tiered: lowWatermark: %v must be below highWatermark %v", lo, hi)
	}
	if v, ok := m["moverRate"]; ok {
		if s.MoverRate, err = parseBytes(v, "moverRate"); err != nil {
			return nil, err
		}
		if s.MoverRate < 64<<10 {
			return nil, fmt.Errorf("tiered: moverRate: %s/s is below the minimum 64 KiB/s", humanize.IBytes(s.MoverRate))
		}
	}
	if v, ok := m["moverInterval"]; ok {
		str, _ := v.(string)
		d, err := time.ParseDuration(str)
		if err != nil || d < 100*time.Millisecond || d > time.Hour {
			return nil, fmt.Errorf("tiered: moverInterval: want a duration from 100ms to 1h, got %v", v)
		}
		s.MoverInterval = d
	}
	if v, ok := m["promoteHits"]; ok {
		n, ok := v.(float64)
		if !ok || n < 1 || n > 1000 || n != math.Trunc(n) {
			return nil, fmt.Errorf("tiered: promoteHits: want an integer from 1 to 1000, got %v", v)
		}
		s.PromoteHits = int(n)
	}
	if v, ok := m["memoryAdmitReads"]; ok {
		n, ok := v.(float64)
		if !ok || n < 1 || n > 100 || n != math.Trunc(n) {
			return nil, fmt.Errorf("tiered: memoryAdmitReads: want an integer from 1 to 100, got %v", v)
		}
		s.MemoryAdmitReads = int(n)
	}
	return s, nil
}

// Options returns the Options for the spec, given its durable children
// built in order.
func (s *Spec) Options(children []ds.Datastore) Options {
	o := Options{
		MemoryCapacity:    s.MemoryCapacity,
		CompressThreshold: s.CompressThreshold,
		HighWatermark:     s.HighWatermark,
		LowWatermark:      s.LowWatermark,
		MoverRate:         s.MoverRate,
		MoverInterval:     s.MoverInterval,
		PromoteHits:       s.PromoteHits,
		MemoryAdmitReads:  s.MemoryAdmitReads,
	}
	for i, t := range s.Tiers {
		o.Tiers = append(o.Tiers, Tier{Name: t.Name, Child: children[i], Capacity: t.Capacity})
	}
	return o
}

func onlyKeys(m map[string]any, prefix string, allowed ...string) error {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	var bad []string
	for k := range m {
		if !ok[k] {
			bad = append(bad, prefix+k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("tiered: %s: unknown field (known: %s)", strings.Join(bad, ", "), strings.Join(allowed, ", "))
	}
	return nil
}

// parseBytes takes "512MiB", "2TB" or a JSON number of bytes.
func parseBytes(v any, field string) (uint64, error) {
	switch x := v.(type) {
	case nil:
		return 0, fmt.Errorf("tiered: %s: missing (want a size such as \"50GiB\")", field)
	case float64:
		if x < 0 || x != math.Trunc(x) || x > 1<<62 {
			return 0, fmt.Errorf("tiered: %s: want a whole number of bytes, got %v", field, x)
		}
		return uint64(x), nil
	case string:
		n, err := humanize.ParseBytes(x)
		if err != nil {
			return 0, fmt.Errorf("tiered: %s: %q is not a size such as \"50GiB\": %v", field, x, err)
		}
		return n, nil
	default:
		return 0, fmt.Errorf("tiered: %s: want a size such as \"50GiB\", got %T", field, v)
	}
}

func parseFraction(m map[string]any, field string) (float64, error) {
	v, ok := m[field]
	if !ok {
		return 0, nil
	}
	f, ok := v.(float64)
	if !ok || f <= 0 || f > 1 {
		return 0, fmt.Errorf("tiered: %s: want a fraction in (0, 1], got %v", field, v)
	}
	return f, nil
}
