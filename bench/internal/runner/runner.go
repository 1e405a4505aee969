package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/kubo-highload/highload/bench/internal/stats"
	"github.com/kubo-highload/highload/bench/internal/workload"
)

// Options say what to run.
type Options struct {
	// Workloads run in this order.
	Workloads []workload.Workload
	// Stock is the baseline variant (the ratio's denominator).
	Stock workload.Variant
	// Highload is our variant (the ratio's numerator).
	Highload workload.Variant
	// Rounds is how many rounds each variant runs per workload (at least 1).
	Rounds int
	// Quick asks every workload for its tiny size.
	Quick bool
	// Tools are helper binaries handed to workloads (Env.Tools).
	Tools map[string]string
	// TempDir is the parent of the per-round directories; "" means the
	// system default (os.TempDir, i.e. $TMPDIR or /tmp).
	TempDir string
	// RoundTimeout bounds one round of one variant; 0 means 30 minutes.
	RoundTimeout time.Duration
	// Progress receives one line when a round starts and one when it ends;
	// nil means os.Stderr.
	Progress io.Writer
}

// Run executes every round of every workload and returns the result. It
// never stops early because a round failed; it stops starting rounds when ctx
// is cancelled, and marks the result as interrupted.
func Run(ctx context.Context, o Options) *Result {
	if o.Rounds < 1 {
		o.Rounds = 1
	}
	if o.RoundTimeout <= 0 {
		o.RoundTimeout = 30 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
	res := &Result{
		Started:  time.Now(),
		Machine:  probeMachine(),
		Quick:    o.Quick,
		Rounds:   o.Rounds,
		Variants: []VariantInfo{variantInfo(o.Stock), variantInfo(o.Highload)},
	}
	eta := newETA(o.Workloads, o.Rounds)

	for _, w := range o.Workloads {
		wr := WorkloadResult{ID: w.ID, Name: w.Name, Shape: w.Shape}
	rounds:
		for round := 0; round < o.Rounds; round++ {
			for _, v := range []workload.Variant{o.Stock, o.Highload} {
				if ctx.Err() != nil {
					res.Interrupted = true
					break rounds
				}
				label := fmt.Sprintf("[%s round %d/%d %s]", w.ID, round+1, o.Rounds, v.Name)
				fmt.Fprintf(o.Progress, "%s running\n", label)
				rr := runOne(ctx, o, w, v, round, label)
				eta.done(w.ID, rr.Seconds)
				left := eta.left(w.ID)
				if rr.Error != "" {
					res.FailedRounds++
					fmt.Fprintf(o.Progress, "%s FAILED after %s, ~%s left: %s\n", label, fmtDur(rr.Seconds), left, rr.Error)
				} else {
					fmt.Fprintf(o.Progress, "%s %s, ~%s left\n", label, fmtDur(rr.Seconds), left)
				}
				wr.Runs = append(wr.Runs, rr)
			}
		}
		wr.Figures = summarizeFigures(wr.Runs, o.Stock.Name, o.Highload.Name, o.Rounds)
		res.Workloads = append(res.Workloads, wr)
		if res.Interrupted {
			break
		}
	}
	res.Finished = time.Now()
	res.Seconds = res.Finished.Sub(res.Started).Seconds()
	res.Machine.LoadAvgEnd = loadAvg()
	return res
}

// runOne runs one round of one variant in a fresh directory, turning a panic
// or a non-finite figure into a failed round.
func runOne(ctx context.Context, o Options, w workload.Workload, v workload.Variant, round int, label string) (rr RunResult) {
	rr = RunResult{Round: round, Variant: v.Name}
	start := time.Now()
	defer func() { rr.Seconds = time.Since(start).Seconds() }()

	dir, err := os.MkdirTemp(o.TempDir, fmt.Sprintf("bench-%s-r%d-%s-", w.ID, round, v.Name))
	if err != nil {
		rr.Error = fmt.Sprintf("runner: temp dir: %v", err)
		return rr
	}
	defer os.RemoveAll(dir)

	rctx, cancel := context.WithTimeout(ctx, o.RoundTimeout)
	defer cancel()
	env := &workload.Env{
		Ctx:   rctx,
		Dir:   dir,
		Quick: o.Quick,
		Round: round,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(o.Progress, "%s %s\n", label, fmt.Sprintf(format, args...))
		},
		Tools: o.Tools,
	}
	figs, err := func() (figs []workload.Figure, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("runner: workload panicked: %v\n%s", p, debug.Stack())
			}
		}()
		return w.Run(env, v)
	}()
	if err != nil {
		rr.Error = err.Error()
		return rr
	}
	for _, f := range figs {
		if !stats.Finite(f.Value) {
			rr.Error = fmt.Sprintf("runner: figure %q is %v", f.Name, f.Value)
			return rr
		}
	}
	rr.Figures = toFigures(figs)
	return rr
}

// eta estimates the time left: the mean duration of the current workload's
// runs for its remaining runs, and the mean of all runs so far for the
// workloads not yet started.
type eta struct {
	order   []string
	perWork int
	secs    map[string][]float64
}

func newETA(ws []workload.Workload, rounds int) *eta {
	e := &eta{perWork: 2 * rounds, secs: map[string][]float64{}}
	for _, w := range ws {
		e.order = append(e.order, w.ID)
	}
	return e
}

func (e *eta) done(id string, secs float64) { e.secs[id] = append(e.secs[id], secs) }

func (e *eta) left(current string) string {
	var all []float64
	for _, s := range e.secs {
		all = append(all, s...)
	}
	mean := func(xs []float64) float64 {
		t := 0.0
		for _, x := range xs {
			t += x
		}
		return t / float64(len(xs))
	}
	total, after := 0.0, false
	for _, id := range e.order {
		switch {
		case id == current:
			cur := e.secs[id]
			total += float64(e.perWork-len(cur)) * mean(cur)
			after = true
		case after:
			total += float64(e.perWork) * mean(all)
		}
	}
	return fmtDur(total)
}

// fmtDur prints seconds as "3.1s", "1m20s" or "1h02m".
func fmtDur(secs float64) string {
	switch d := time.Duration(secs * float64(time.Second)); {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
