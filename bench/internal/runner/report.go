package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubo-highload/highload/bench/internal/stats"
)

// Markdown renders the run as a metadata list and one table row per
// workload figure, followed by the failed rounds if any.
func (r *Result) Markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "## Benchmark run %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- machine: %d cores (nproc), %s, %.1f GiB RAM, %s, kernel %s\n",
		m.NProc, orUnknown(m.CPUModel), float64(m.MemBytes)/(1<<30), m.OSArch, orUnknown(m.Kernel))
	fmt.Fprintf(&b, "- load average (1/5/15 min): %s at start, %s at end\n", orUnknown(m.LoadAvgStart), orUnknown(m.LoadAvgEnd))
	fmt.Fprintf(&b, "- Go: %s\n", m.GoVersion)
	for _, v := range r.Variants {
		prof := "test"
		if len(v.Profiles) > 0 {
			prof += "," + strings.Join(v.Profiles, ",")
		}
		bin := v.Bin
		if v.StagedFrom != "" {
			bin = v.StagedFrom + " (run from a copy)"
		}
		fmt.Fprintf(&b, "- %s: %s (%s), init profiles %s", v.Name, bin, orUnknown(v.Version), prof)
		if len(v.Config) > 0 {
			fmt.Fprintf(&b, ", config %s", strings.Join(v.Config, " "))
		}
		b.WriteString("\n")
	}
	mode := "full size"
	if r.Quick {
		mode = "quick (tiny sizes)"
	}
	fmt.Fprintf(&b, "- %d round(s) per variant, stock and highload alternating; %s\n", r.Rounds, mode)
	fmt.Fprintf(&b, "- total run time: %s", fmtDur(r.Seconds))
	if r.Interrupted {
		b.WriteString(" (interrupted)")
	}
	b.WriteString("\n\n")

	b.WriteString("| workload | figure | unit | stock median [min-max] | highload median [min-max] | ratio highload/stock median [min-max] |\n")
	b.WriteString("|----------|--------|------|------------------------|---------------------------|---------------------------------------|\n")
	for _, w := range r.Workloads {
		name := w.ID + " " + w.Name
		if len(w.Figures) == 0 {
			fmt.Fprintf(&b, "| %s | (no figures: every round failed) | | | | |\n", name)
			continue
		}
		for _, f := range w.Figures {
			fig := f.Name + " " + betterMark(f.HigherIsBetter)
			if f.Note != "" {
				fig += " (" + f.Note + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n",
				name, fig, f.Unit, fmtSummary(f.Stock, false), fmtSummary(f.Highload, false), fmtSummary(f.Ratio, true))
		}
	}
	b.WriteString("\n↑ higher is better, ↓ lower is better; the ratio is highload/stock computed round by round.\n")

	var failed []string
	for _, w := range r.Workloads {
		for _, run := range w.Runs {
			if run.Error != "" {
				failed = append(failed, fmt.Sprintf("- %s round %d %s: %s", w.ID, run.Round+1, run.Variant, firstLine(run.Error)))
			}
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "\n%d round(s) failed (full errors in the JSON):\n\n%s\n", len(failed), strings.Join(failed, "\n"))
	}
	return b.String()
}

func betterMark(higher bool) string {
	if higher {
		return "↑"
	}
	return "↓"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func firstLine(s string) string {
	first, rest, _ := strings.Cut(s, "\n")
	if rest != "" {
		first += " …"
	}
	return first
}

// fmtSummary prints "median [min-max]", or "-" for a missing summary.
func fmtSummary(s *stats.Summary, ratio bool) string {
	if s == nil {
		return "-"
	}
	f := fmtNum
	if ratio {
		f = func(v float64) string { return fmt.Sprintf("%.2f", v) }
	}
	if s.N == 1 {
		return f(s.Median)
	}
	return fmt.Sprintf("%s [%s-%s]", f(s.Median), f(s.Min), f(s.Max))
}

// fmtNum prints about three significant digits without an exponent.
func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// WriteFiles writes dir/bench-<UTC timestamp>.json, dir/latest.json (the
// same content) and dir/ratios.png, creating dir if needed. It returns the
// paths written. With no ratio to draw it removes any older ratios.png and
// returns ErrNoRatios after writing the JSON.
func (r *Result) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	buf, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("runner: encoding JSON: %w", err)
	}
	buf = append(buf, '\n')
	stamped := filepath.Join(dir, "bench-"+r.Started.UTC().Format("20060102T150405Z")+".json")
	latest := filepath.Join(dir, "latest.json")
	var written []string
	for _, p := range []string{stamped, latest} {
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	png := filepath.Join(dir, "ratios.png")
	if err := r.Chart(png); err != nil {
		if errors.Is(err, ErrNoRatios) {
			_ = os.Remove(png) // not a previous run's chart beside this run's JSON
		}
		return written, err
	}
	return append(written, png), nil
}
