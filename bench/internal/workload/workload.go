// Package workload defines what a benchmark workload is and keeps the
// registry the bench command runs from.
//
// The model: a workload (W1..W8) runs one round at a time against one
// Variant, the stock Kubo binary or ours, and returns named Figures. The
// runner alternates variants round by round (stock, highload, stock, ...),
// pairs the figures of the same round by name, and reports each figure's
// median, min and max per variant plus the highload/stock ratio computed
// pair by pair. A workload never compares variants itself.
//
//	workload.Register(workload.Workload{ID: "W1", Name: "bulk", Run: runW1})
//	figs, err := w.Run(env, variant)
package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Variant is one side of an A/B comparison.
type Variant struct {
	// Name is "stock" or "highload".
	Name string
	// Bin is the ipfs binary.
	Bin string
	// StagedFrom is the binary Bin was copied from when the bench stages
	// copies for its run ("" when Bin is used in place).
	StagedFrom string
	// Profiles are the extra init profiles this variant's repos get besides
	// "test" (none for stock, "highload" for ours).
	Profiles []string
	// Config holds config values written into this variant's repos after
	// init, before the daemon starts (the bench's -config flag), in the
	// order given.
	Config []Setting
}

// Setting is one config value: Path is the dotted Kubo config path (e.g.
// Plugins.Plugins.highload.Config.Bitswap.Prefetch), Value its JSON value.
type Setting struct {
	Path  string
	Value any
}

// ParseSetting reads "Dotted.Path=JSON" (a value that is not JSON is taken
// as a string), naming what is wrong.
func ParseSetting(s string) (Setting, error) {
	path, raw, ok := strings.Cut(s, "=")
	path = strings.TrimSpace(path)
	if !ok || path == "" {
		return Setting{}, fmt.Errorf("config setting %q: want Dotted.Path=value", s)
	}
	for _, k := range strings.Split(path, ".") {
		if k == "" {
			return Setting{}, fmt.Errorf("config setting %q: empty key in path %q", s, path)
		}
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		v = raw
	}
	return Setting{Path: path, Value: v}, nil
}

// Apply writes v's config settings into cfg (a repo config as a JSON map),
// creating objects on the way; a path through a non-object is an error.
func (v Variant) Apply(cfg map[string]any) error {
	for _, st := range v.Config {
		keys := strings.Split(st.Path, ".")
		m := cfg
		for i, k := range keys[:len(keys)-1] {
			next, ok := m[k]
			if !ok || next == nil {
				nm := map[string]any{}
				m[k] = nm
				m = nm
				continue
			}
			nm, ok := next.(map[string]any)
			if !ok {
				return fmt.Errorf("config setting %s: %s is not an object", st.Path, strings.Join(keys[:i+1], "."))
			}
			m = nm
		}
		m[keys[len(keys)-1]] = st.Value
	}
	return nil
}

// Edit returns an EditConfig callback that runs edit (if any) and then
// applies v's settings, or nil when there is nothing to do.
func (v Variant) Edit(edit func(cfg map[string]any) error) func(cfg map[string]any) error {
	if len(v.Config) == 0 {
		return edit
	}
	return func(cfg map[string]any) error {
		if edit != nil {
			if err := edit(cfg); err != nil {
				return err
			}
		}
		return v.Apply(cfg)
	}
}

// Env is what a round gets from the runner.
type Env struct {
	// Ctx is cancelled when the run is interrupted.
	Ctx context.Context
	// Dir is an empty directory for this round only (repos, data files);
	// the runner removes it after the round.
	Dir string
	// Quick asks for the tiny size used by the test suite (seconds per round).
	Quick bool
	// Round counts from 0; workloads use it to seed fresh random data, so
	// that no round fetches CIDs an earlier round already moved.
	Round int
	// Logf prints a progress line on stderr.
	Logf func(format string, args ...any)
	// Tools holds paths of helper binaries the runner built (e.g. "loadgen").
	Tools map[string]string
}

// Figure is one measured number of one round.
type Figure struct {
	// Name identifies the figure within its workload, e.g. "MiB/s".
	Name string
	// Unit is printed beside the value ("MiB/s", "MB", "s", "ratio").
	Unit string
	// Value is the measurement.
	Value float64
	// HigherIsBetter orients the ratio's reading in the report; the ratio
	// itself is always highload/stock.
	HigherIsBetter bool
	// Note is an optional remark shown in the report (e.g. "emulated slow tier").
	Note string
}

// Workload is one named benchmark.
type Workload struct {
	// ID is "W1".."W8".
	ID string
	// Name is a short name ("bulk", "small-blocks", ...).
	Name string
	// Shape says in one line what runs (sizes, peers), for the report.
	Shape string
	// Run executes one round for one variant. It must stop every process it
	// started before it returns, error or not.
	Run func(env *Env, v Variant) ([]Figure, error)
}

var registry = map[string]Workload{}

// Register adds w to the registry; registering an ID twice panics at init,
// which is a programming error.
func Register(w Workload) {
	if _, dup := registry[w.ID]; dup {
		panic(fmt.Sprintf("workload %s registered twice", w.ID))
	}
	registry[w.ID] = w
}

// All returns the registered workloads sorted by ID.
func All() []Workload {
	out := make([]Workload, 0, len(registry))
	for _, w := range registry {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Get returns the workload with the given ID.
func Get(id string) (Workload, bool) {
	w, ok := registry[id]
	return w, ok
}
