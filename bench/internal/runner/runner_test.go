package runner

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubo-highload/highload/bench/internal/workload"
)

var (
	stock    = workload.Variant{Name: "stock", Bin: "/bin/true"}
	highload = workload.Variant{Name: "highload", Bin: "/bin/true", StagedFrom: "/repo/build/bin/ipfs", Profiles: []string{"highload"}}
)

// fake returns a workload whose figures are tput[variant][round], plus a
// stock-only figure; round failRound of the highload variant fails.
func fake(id string, tput map[string][]float64, failRound int) workload.Workload {
	return workload.Workload{ID: id, Name: "fake", Shape: "in memory", Run: func(env *workload.Env, v workload.Variant) ([]workload.Figure, error) {
		if fi, err := os.Stat(env.Dir); err != nil || !fi.IsDir() {
			return nil, errors.New("no round dir")
		}
		if v.Name == "highload" && env.Round == failRound {
			return nil, errors.New("boom\nsecond line")
		}
		figs := []workload.Figure{{Name: "throughput", Unit: "MiB/s", Value: tput[v.Name][env.Round], HigherIsBetter: true}}
		if v.Name == "stock" {
			figs = append(figs, workload.Figure{Name: "stock only", Unit: "s", Value: 1})
		}
		return figs, nil
	}}
}

func TestRunAlternatesAndSummarises(t *testing.T) {
	var order []string
	w := fake("W9", map[string][]float64{
		"stock":    {100, 50, 80, 90},
		"highload": {110, 999, 100, 90},
	}, 1)
	inner := w.Run
	w.Run = func(env *workload.Env, v workload.Variant) ([]workload.Figure, error) {
		order = append(order, v.Name)
		return inner(env, v)
	}
	var progress bytes.Buffer
	res := Run(context.Background(), Options{
		Workloads: []workload.Workload{w}, Stock: stock, Highload: highload,
		Rounds: 4, TempDir: t.TempDir(), Progress: &progress,
	})

	if got := strings.Join(order, " "); got != "stock highload stock highload stock highload stock highload" {
		t.Fatalf("order %q, want A B A B", got)
	}
	if res.FailedRounds != 1 {
		t.Fatalf("FailedRounds = %d, want 1", res.FailedRounds)
	}
	if !strings.Contains(progress.String(), "[W9 round 2/4 highload] FAILED") {
		t.Fatalf("progress lacks the failure:\n%s", progress.String())
	}
	if !strings.Contains(progress.String(), "[W9 round 4/4 highload] ") || !strings.Contains(progress.String(), " left") {
		t.Fatalf("progress lacks the last round or the estimate:\n%s", progress.String())
	}
	figs := res.Workloads[0].Figures
	if len(figs) != 2 || figs[0].Name != "throughput" || figs[1].Name != "stock only" {
		t.Fatalf("figures %+v", figs)
	}
	tp := figs[0]
	// stock all four rounds; highload rounds 0, 2, 3 (round 1 failed).
	if tp.Stock.N != 4 || tp.Stock.Median != 85 || tp.Stock.Min != 50 || tp.Stock.Max != 100 {
		t.Fatalf("stock summary %+v", *tp.Stock)
	}
	if tp.Highload.N != 3 || tp.Highload.Median != 100 {
		t.Fatalf("highload summary %+v", *tp.Highload)
	}
	// Pairs: 110/100, 100/80, 90/90; the failed round has no pair.
	want := []float64{1.1, 1.25, 1}
	if len(tp.Ratios) != 3 {
		t.Fatalf("ratios %v, want %v", tp.Ratios, want)
	}
	for i := range want {
		if math.Abs(tp.Ratios[i]-want[i]) > 1e-12 {
			t.Fatalf("ratios %v, want %v", tp.Ratios, want)
		}
	}
	if math.Abs(tp.Ratio.Median-1.1) > 1e-12 || tp.Ratio.Min != 1 || tp.Ratio.Max != 1.25 {
		t.Fatalf("ratio summary %+v", *tp.Ratio)
	}
	if so := figs[1]; so.Stock == nil || so.Highload != nil || so.Ratio != nil {
		t.Fatalf("stock-only figure %+v", so)
	}

	md := res.Markdown()
	for _, want := range []string{
		"| W9 fake | throughput ↑ | MiB/s | 85.0 [50.0-100] | 100 [90.0-110] | 1.10 [1.00-1.25] |",
		"| W9 fake | stock only ↓ | s | 1.00 [1.00-1.00] | - | - |",
		"1 round(s) failed",
		"- W9 round 2 highload: boom …",
		"total run time:",
		"- stock: /bin/true (",
		"- highload: /repo/build/bin/ipfs (run from a copy) (",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestRunRemovesRoundDirs(t *testing.T) {
	parent := t.TempDir()
	w := fake("W9", map[string][]float64{"stock": {1}, "highload": {1}}, -1)
	Run(context.Background(), Options{Workloads: []workload.Workload{w}, Stock: stock, Highload: highload,
		Rounds: 1, TempDir: parent, Progress: &bytes.Buffer{}})
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Fatalf("round dirs left behind: %v", ents)
	}
}

func TestRunRecoversPanicAndRejectsNaN(t *testing.T) {
	panicky := workload.Workload{ID: "W8", Name: "panicky", Run: func(*workload.Env, workload.Variant) ([]workload.Figure, error) {
		panic("oops")
	}}
	nan := workload.Workload{ID: "W9", Name: "nan", Run: func(*workload.Env, workload.Variant) ([]workload.Figure, error) {
		return []workload.Figure{{Name: "x", Value: math.NaN()}}, nil
	}}
	res := Run(context.Background(), Options{Workloads: []workload.Workload{panicky, nan}, Stock: stock, Highload: highload,
		Rounds: 1, TempDir: t.TempDir(), Progress: &bytes.Buffer{}})
	if res.FailedRounds != 4 || len(res.Workloads) != 2 {
		t.Fatalf("FailedRounds = %d, workloads %d; want 4, 2", res.FailedRounds, len(res.Workloads))
	}
	if !strings.Contains(res.Workloads[0].Runs[0].Error, "panicked: oops") {
		t.Fatalf("error %q", res.Workloads[0].Runs[0].Error)
	}
	if !strings.Contains(res.Markdown(), "(no figures: every round failed)") {
		t.Fatalf("markdown:\n%s", res.Markdown())
	}
	// JSON must encode: no NaN reaches it.
	if _, err := res.WriteFiles(t.TempDir()); !errors.Is(err, ErrNoRatios) {
		t.Fatalf("WriteFiles: %v, want ErrNoRatios (JSON written, no chart)", err)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	w := workload.Workload{ID: "W1", Name: "x", Run: func(*workload.Env, workload.Variant) ([]workload.Figure, error) {
		calls++
		cancel()
		return []workload.Figure{{Name: "x", Value: 1}}, nil
	}}
	res := Run(ctx, Options{Workloads: []workload.Workload{w, w}, Stock: stock, Highload: highload,
		Rounds: 3, TempDir: t.TempDir(), Progress: &bytes.Buffer{}})
	if calls != 1 || !res.Interrupted || len(res.Workloads) != 1 {
		t.Fatalf("calls %d, interrupted %v, workloads %d", calls, res.Interrupted, len(res.Workloads))
	}
}

func TestWriteFiles(t *testing.T) {
	w := fake("W9", map[string][]float64{"stock": {100, 90}, "highload": {120, 80}}, -1)
	res := Run(context.Background(), Options{Workloads: []workload.Workload{w}, Stock: stock, Highload: highload,
		Rounds: 2, TempDir: t.TempDir(), Progress: &bytes.Buffer{}})
	dir := filepath.Join(t.TempDir(), "results")
	paths, err := res.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Fatalf("paths %v", paths)
	}
	a, _ := os.ReadFile(paths[0])
	b, _ := os.ReadFile(filepath.Join(dir, "latest.json"))
	if !bytes.Equal(a, b) || !bytes.Contains(a, []byte(`"ratios"`)) || !bytes.Contains(a, []byte(`"runs"`)) || !bytes.Contains(a, []byte(`"value": 120`)) {
		t.Fatalf("JSON files differ or lack raw data:\n%s", a)
	}
	f, err := os.Open(filepath.Join(dir, "ratios.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("ratios.png: %v", err)
	}
}

func TestFmtNum(t *testing.T) {
	for v, want := range map[float64]string{1234.4: "1234", 98.12: "98.1", 1.005: "1.00", 0.9999: "1.000", 0.5: "0.500"} {
		if got := fmtNum(v); got != want {
			t.Errorf("fmtNum(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestFmtDur(t *testing.T) {
	for secs, want := range map[float64]string{3.14: "3.1s", 80: "1m20s", 3720: "1h02m"} {
		if got := fmtDur(secs); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", secs, got, want)
		}
	}
}
