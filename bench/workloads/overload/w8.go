package overload

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kubo-highload/highload/bench/internal/workload"
	"github.com/kubo-highload/highload/bench/loadgen"
)

// w8Size is one round's sizes.
type w8Size struct {
	chunks       int // 1 KiB chunks of the provider's file
	steps        []int
	inflight     int
	warmup, step time.Duration
}

func w8Sizes(quick bool) w8Size {
	if quick {
		return w8Size{chunks: 100, steps: []int{1, 4, 16, 64}, inflight: 32, warmup: 500 * time.Millisecond, step: time.Second}
	}
	// 1,000 chunks of 1 KiB: 1,000 leaves plus 7 inner nodes. Kubo sends a
	// block of up to WantHaveReplaceSize (1 KiB) instead of its HAVE, so the
	// leaves come back whole and the inner nodes as HAVEs; both count as
	// answers.
	return w8Size{chunks: 1000, steps: []int{1, 2, 4, 8, 16, 32, 64}, inflight: 32, warmup: time.Second, step: 5 * time.Second}
}

// w8P99At are the peer counts whose p99 latency is reported.
var w8P99At = []int{4, 16, 64}

// runW8 is the request-rate workload.
func runW8(env *workload.Env, v workload.Variant) ([]workload.Figure, error) {
	sz := w8Sizes(env.Quick)
	ctx := env.Ctx
	node, err := initNode(env, v, "provider", nil)
	if err != nil {
		return nil, err
	}
	if err := node.Start(ctx); err != nil {
		return nil, err
	}
	defer stopAll(node)
	root, err := node.Add(ctx, randomFile("W8", v.Name, env.Round, 0, int64(sz.chunks)*kib), "size-1024")
	if err != nil {
		return nil, fmt.Errorf("overload: add on %s: %w", node.Name, err)
	}
	cids, err := refs(ctx, node, root)
	if err != nil {
		return nil, err
	}
	cidFile := filepath.Join(env.Dir, "w8-cids.txt")
	if err := os.WriteFile(cidFile, []byte(strings.Join(cids, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	steps := make([]string, len(sz.steps))
	for i, s := range sz.steps {
		steps[i] = strconv.Itoa(s)
	}
	cpu0, err := node.CPUTime()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	lg, err := startLoadgen(env, "rate", "-target", node.SwarmAddrs()[0], "-cids", cidFile,
		"-steps", strings.Join(steps, ","), "-inflight", strconv.Itoa(sz.inflight),
		"-warmup", sz.warmup.String(), "-step", sz.step.String())
	if err != nil {
		return nil, err
	}
	defer lg.kill()
	bound := 3*time.Minute + time.Duration(len(sz.steps))*(sz.warmup+sz.step+3*time.Second)
	var res loadgen.RateResult
	if _, err := lg.waitFor(ctx, "result", bound, &res); err != nil {
		return nil, err
	}
	cpu1, err := node.CPUTime()
	if err != nil {
		return nil, err
	}
	lg.kill() // it has printed its result; make sure it is gone before reading its CPU
	busy := time.Since(start)

	var table bytes.Buffer
	for _, s := range res.Steps {
		fmt.Fprintf(&table, " %dp:%.0f/s,p50=%.1fms,p99=%.1fms", s.Peers, s.PerSec, s.Latency.P50, s.Latency.P99)
		if s.Resent > 0 || s.TimedOut > 0 || s.SendErrors > 0 || s.DontHaves > 0 {
			fmt.Fprintf(&table, "(%d resent after 1s,%d timed out,%d send errors,%d DONT_HAVE)", s.Resent, s.TimedOut, s.SendErrors, s.DontHaves)
		}
	}
	env.Logf("%d blocks; sweep%s; provider CPU %.0f%% of a core, generator CPU %.1fs",
		len(cids), table.String(), 100*(cpu1-cpu0).Seconds()/busy.Seconds(), lg.cpu().Seconds())

	figs := []workload.Figure{
		{Name: "saturation", Unit: "req/s", Value: res.SaturationPerSec, HigherIsBetter: true,
			Note: fmt.Sprintf("best of the sweep, at %d peers x %d in flight; %d blocks", res.SaturationPeers, sz.inflight, len(cids))},
	}
	for _, at := range w8P99At {
		s, ok := stepAt(res.Steps, at)
		if !ok {
			return nil, fmt.Errorf("overload: the sweep has no step with %d peers (connected %d, %s)", at, res.Peers, res.FirstError)
		}
		if s.Latency.N == 0 {
			return nil, fmt.Errorf("overload: nothing answered with %d peers", at)
		}
		figs = append(figs, workload.Figure{Name: fmt.Sprintf("p99 @%d peers", at), Unit: "ms", Value: s.Latency.P99})
	}
	figs = append(figs, workload.Figure{Name: "provider CPU", Unit: "% core", Value: 100 * (cpu1 - cpu0).Seconds() / busy.Seconds(),
		Note: "over the whole sweep; the generator shares the cores"})
	return figs, nil
}

func stepAt(steps []loadgen.RateStep, peers int) (loadgen.RateStep, bool) {
	for _, s := range steps {
		if s.Peers == peers {
			return s, true
		}
	}
	return loadgen.RateStep{}, false
}
