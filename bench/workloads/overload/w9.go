package overload

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubo-highload/highload/bench/internal/daemon"
	"github.com/kubo-highload/highload/bench/internal/workload"
)

// W9 puts the autotuner against a grid search over the same knobs, on one
// provider serving a steady want-have load (the W8 generator: 2 peers that
// get blocks) while 4 flooding peers ask for blocks it does not have. The
// knobs decide how much of the node the flood gets: the unknown class's
// rate limit trips the flooders' breakers (too high and they are served
// DONT_HAVEs at full speed), the global pending budget sets when the
// unknown class is shed as a whole, GOGC trades GC CPU for memory. One
// daemon does everything, with the tuner frozen except in its own phase;
// knobs are set live through `ipfs stats highload autotune set`, so no
// restart separates the points:
//
//  1. grid: every point of a small grid over the tuner's knobs, each held
//     for a settle time and then measured over one window; the three
//     best-looking are measured again, in turn, three times over longer
//     windows, and the best median is the grid's best (one window picks
//     the luckiest point, not the best one);
//  2. tuner: back at the stock-like start (the configured defaults, GOGC
//     100), the tuner runs for a fixed time with a short window, then is
//     frozen where it settled;
//  3. comparison: the start, the grid's best point and the tuner's settled
//     point are measured again in turn, several times, so that drift in the
//     machine's load hits all three alike, in longer windows than the grid's
//     and in an order that rotates. The figures come from this phase; the
//     ratio is the median over repeats of tuner / grid best.
//
// The objective measured is the tuner's own: the bytes the provider's
// Bitswap sent per second (`ipfs stats bitswap` DataSent). The stock
// variant serves the same load with stock Kubo (no knobs), measured the
// same way, for the ratio.

func init() {
	workload.Register(workload.Workload{
		ID:    "W9",
		Name:  "tuner",
		Shape: "want-have load from 2 peers x 32 in flight on 1,007 1 KiB blocks, 4 flooding peers x 1,000 missing wants x 3/s; grid over 3 knobs (18 points x 2 s, the top 3 confirmed 3 x 4 s), then the tuner from stock-like settings for 90 s (2 s windows); 8 interleaved re-measures of 4 s",
		Run:   runW9,
	})
}

// w9Size is one round's sizes.
type w9Size struct {
	chunks   int
	peers    int
	inflight int
	settle   time.Duration // after a knob change, before measuring
	window   time.Duration // one measurement (and the tuner's window)
	tune     time.Duration // the tuner's phase
	repeats  int           // interleaved re-measures of start, best and tuner
	// remeasure is one re-measure window: longer than the grid's and the
	// tuner's, because the final ratio rests on these few windows
	remeasure time.Duration
	// the grid's best-looking confirmTop points are measured again
	// confirmRepeats times (re-measure windows) before one is named best
	confirmTop, confirmRepeats int
	// flooding peers, each sending its 1,000-entry wantlist floodRate times a second
	floodPeers, floodRate int
	// grid values, as multiples of each knob's start value (GOGC in percent)
	rateMult, pendMult []float64
	gogc               []float64
}

func w9Sizes(quick bool) w9Size {
	if quick {
		return w9Size{chunks: 100, peers: 2, inflight: 32, settle: 300 * time.Millisecond, window: time.Second,
			tune: 8 * time.Second, repeats: 1, remeasure: time.Second, confirmTop: 2, confirmRepeats: 1, floodPeers: 2, floodRate: 3, rateMult: []float64{0.25, 4}, pendMult: []float64{1}, gogc: []float64{100}}
	}
	return w9Size{chunks: 1000, peers: 2, inflight: 32, settle: 500 * time.Millisecond, window: 2 * time.Second,
		tune: 90 * time.Second, repeats: 8, remeasure: 4 * time.Second, confirmTop: 3, confirmRepeats: 3, floodPeers: 4, floodRate: 3,
		rateMult: []float64{0.25, 1, 4}, pendMult: []float64{0.25, 4}, gogc: []float64{50, 100, 400}}
}

// The tuner's knobs (plugin/bitswap_knobs.go, plugin/knobs.go).
const (
	knobRate = "bitswap.peer_rate.unknown"
	knobPend = "bitswap.global_pending"
	knobGOGC = "go.GOGC"
)

// w9Point is one setting of the three knobs.
type w9Point struct{ rate, pend, gogc float64 }

func (p w9Point) String() string {
	return fmt.Sprintf("rate %.0f/s, pending %.0f, GOGC %.0f", p.rate, p.pend, p.gogc)
}

func runW9(env *workload.Env, v workload.Variant) ([]workload.Figure, error) {
	sz := w9Sizes(env.Quick)
	ctx := env.Ctx
	ours := v.Name != "stock"
	node, err := initNode(env, v, "provider", func(cfg map[string]any) error {
		if ours {
			daemon.SetPath(cfg, map[string]any{"Enabled": true, "Window": sz.window.String()},
				"Plugins", "Plugins", "highload", "Config", "AutoTune")
			// The flooders stay connected for the whole round, so that
			// every phase sees the same flood. With disconnection on, a
			// trial run served several times more in the re-measure phase
			// than in the grid phase: the load changed between phases.
			daemon.SetPath(cfg, false, "Plugins", "Plugins", "highload", "Config", "Bitswap", "DisconnectAbusive")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := node.Start(ctx); err != nil {
		return nil, err
	}
	defer stopAll(node)
	if ours {
		// Frozen from the start: only its own phase may move a knob.
		if _, err := node.RPC(ctx, "stats/highload/autotune/freeze", url.Values{"reason": {"W9 grid search"}}, nil); err != nil {
			return nil, err
		}
	}
	root, err := node.Add(ctx, randomFile("W9", v.Name, env.Round, 0, int64(sz.chunks)*kib), "size-1024")
	if err != nil {
		return nil, fmt.Errorf("tuner: add on %s: %w", node.Name, err)
	}
	cids, err := refs(ctx, node, root)
	if err != nil {
		return nil, err
	}
	cidFile := filepath.Join(env.Dir, "w9-cids.txt")
	if err := os.WriteFile(cidFile, []byte(strings.Join(cids, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	lg, err := startLoadgen(env, "rate", "-target", node.SwarmAddrs()[0], "-cids", cidFile,
		"-steps", strconv.Itoa(sz.peers), "-inflight", strconv.Itoa(sz.inflight),
		"-warmup", "1s", "-step", "20m")
	if err != nil {
		return nil, err
	}
	defer lg.kill()
	// Abusive peers asking for blocks the provider does not have, faster
	// than the unknown class's default rate: they are what the knobs
	// trade against the served load.
	flood, err := startLoadgen(env, "flood", "-target", node.SwarmAddrs()[0], "-peers", strconv.Itoa(sz.floodPeers),
		"-wants", "1000", "-rate", strconv.Itoa(sz.floodRate), "-duration", "20m")
	if err != nil {
		return nil, err
	}
	defer flood.kill()

	m := &w9Meter{env: env, node: node, lg: lg, window: sz.window, settle: sz.settle}
	// The load is flowing once a window serves something.
	if err := m.waitServing(time.Minute); err != nil {
		return nil, err
	}
	if !ours {
		var xs []float64
		for i := 0; i < 3*sz.repeats; i++ {
			x, err := m.measure()
			if err != nil {
				return nil, err
			}
			xs = append(xs, x)
		}
		env.Logf("stock Kubo serves %s KiB/s", fmtKiBs(xs))
		return []workload.Figure{{Name: "served", Unit: "KiB/s", Value: median(xs) / kib, HigherIsBetter: true,
			Note: fmt.Sprintf("Bitswap bytes sent/s, %d peers x %d want-haves in flight; highload: at the tuner's settled setting", sz.peers, sz.inflight)}}, nil
	}

	start, err := m.knobs()
	if err != nil {
		return nil, err
	}
	peers0 := m.peers()
	// 1. The grid.
	var grid []w9Point
	for _, r := range sz.rateMult {
		for _, p := range sz.pendMult {
			for _, g := range sz.gogc {
				grid = append(grid, w9Point{rate: r * start.rate, pend: p * start.pend, gogc: g})
			}
		}
	}
	best, bestY := start, math.Inf(-1)
	gridY := make([]float64, len(grid))
	var table strings.Builder
	for i, p := range grid {
		if err := m.set(p, "W9 grid point"); err != nil {
			return nil, err
		}
		y, err := m.measure()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&table, " [%s]=%.0f", p, y/kib)
		gridY[i] = y
		if y > bestY {
			best, bestY = p, y
		}
	}
	env.Logf("grid (KiB/s):%s; best-looking %s", table.String(), best)
	// One window per point picks noise as often as a setting: the
	// best-looking point is the luckiest, and comparing the tuner with it
	// flatters the tuner whenever the luck does not repeat. So the
	// best-looking few are measured again, in turn, over the re-measure
	// windows, and the grid's best is the one with the highest median.
	if sz.confirmTop > 1 && sz.confirmRepeats > 0 {
		order := make([]int, len(grid))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return cmpDesc(gridY[a], gridY[b]) })
		top := order[:min(sz.confirmTop, len(order))]
		conf := make([][]float64, len(top))
		for r := 0; r < sz.confirmRepeats; r++ {
			for k := range top {
				j := (r + k) % len(top)
				if err := m.set(grid[top[j]], "W9 grid confirmation"); err != nil {
					return nil, err
				}
				y, err := m.measureFor(sz.remeasure)
				if err != nil {
					return nil, err
				}
				conf[j] = append(conf[j], y)
			}
		}
		bestMed := math.Inf(-1)
		var ct strings.Builder
		for j, i := range top {
			fmt.Fprintf(&ct, " [%s]=%s", grid[i], fmtKiBs(conf[j]))
			if md := median(conf[j]); md > bestMed {
				best, bestMed = grid[i], md
			}
		}
		env.Logf("grid confirmation (KiB/s):%s; best %s", ct.String(), best)
	}

	// 2. The tuner, from the stock-like start.
	if err := m.set(start, "W9 back to the stock-like start"); err != nil {
		return nil, err
	}
	if _, err := node.RPC(ctx, "stats/highload/autotune/resume", nil, nil); err != nil {
		return nil, err
	}
	select {
	case <-time.After(sz.tune):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if _, err := node.RPC(ctx, "stats/highload/autotune/freeze", url.Values{"reason": {"W9 tuner phase over"}}, nil); err != nil {
		return nil, err
	}
	tuned, err := m.knobs()
	if err != nil {
		return nil, err
	}
	var st struct {
		Windows, Trials, Kept, RolledBack uint64
	}
	if err := node.RPCJSON(ctx, "stats/highload/autotune", nil, &st); err != nil {
		return nil, err
	}
	env.Logf("tuner: %d windows, %d trials, %d kept, %d rolled back; settled at %s", st.Windows, st.Trials, st.Kept, st.RolledBack, tuned)

	// 3. Interleaved re-measures, in longer windows than the grid's: the
	// final ratio rests on them. The order rotates each repeat (start,
	// best, tuner; best, tuner, start; ...), so no setting always runs
	// first after a change or always next to the same neighbour.
	var ys [3][]float64
	points := []w9Point{start, best, tuned}
	for i := 0; i < sz.repeats; i++ {
		for k := 0; k < 3; k++ {
			j := (i + k) % 3
			if err := m.set(points[j], "W9 re-measure"); err != nil {
				return nil, err
			}
			y, err := m.measureFor(sz.remeasure)
			if err != nil {
				return nil, err
			}
			ys[j] = append(ys[j], y)
		}
	}
	env.Logf("re-measured KiB/s (%s windows): start %s, grid best %s, tuner %s; connected peers %d at the grid's start, %d now",
		sz.remeasure, fmtKiBs(ys[0]), fmtKiBs(ys[1]), fmtKiBs(ys[2]), peers0, m.peers())
	// The ratio of each repeat's two measures (taken seconds apart), then
	// their median: drift in the machine's load between repeats cancels.
	// The same for start / grid best shows how far apart two static
	// settings measure on this machine when the knobs barely matter.
	ratios := make([]float64, len(ys[1]))
	startRatios := make([]float64, len(ys[1]))
	for i := range ratios {
		ratios[i] = ys[2][i] / ys[1][i]
		startRatios[i] = ys[0][i] / ys[1][i]
	}
	ratio := median(ratios)
	env.Logf("tuner / grid best per repeat: %.3f; median %.3f, ratio of means %.3f; start / grid best median %.3f",
		ratios, ratio, mean(ys[2])/mean(ys[1]), median(startRatios))
	return []workload.Figure{
		{Name: "served", Unit: "KiB/s", Value: median(ys[2]) / kib, HigherIsBetter: true},
		{Name: "served at grid best", Unit: "KiB/s", Value: median(ys[1]) / kib, HigherIsBetter: true,
			Note: fmt.Sprintf("best of %d grid points: %s", len(grid), best)},
		{Name: "served at stock-like start", Unit: "KiB/s", Value: median(ys[0]) / kib, HigherIsBetter: true,
			Note: start.String()},
		{Name: "tuner / grid best", Unit: "ratio", Value: ratio, HigherIsBetter: true,
			Note: fmt.Sprintf("settled at %s after %d windows (%d trials, %d kept); median of %d pairs [%.3f-%.3f]",
				tuned, st.Windows, st.Trials, st.Kept, len(ratios), slices.Min(ratios), slices.Max(ratios))},
		{Name: "start / grid best", Unit: "ratio", Value: median(startRatios), HigherIsBetter: true,
			Note: "the stock-like start against the grid's pick, measured alike: how much the knobs matter here"},
	}, nil
}

// w9Meter measures the provider's served rate and sets its knobs.
type w9Meter struct {
	env    *workload.Env
	node   *daemon.Node
	lg     *lgProc
	window time.Duration
	settle time.Duration
}

// sent is the provider's Bitswap DataSent.
func (m *w9Meter) sent() (float64, error) {
	var s struct{ DataSent uint64 }
	if err := m.node.RPCJSON(m.env.Ctx, "stats/bitswap", nil, &s); err != nil {
		return 0, err
	}
	return float64(s.DataSent), nil
}

// measure returns the bytes sent per second over one window.
func (m *w9Meter) measure() (float64, error) { return m.measureFor(m.window) }

// measureFor returns the bytes sent per second over d.
func (m *w9Meter) measureFor(d time.Duration) (float64, error) {
	a, err := m.sent()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-time.After(d):
	case <-m.env.Ctx.Done():
		return 0, m.env.Ctx.Err()
	}
	b, err := m.sent()
	if err != nil {
		return 0, err
	}
	select {
	case <-m.lg.done:
		return 0, fmt.Errorf("tuner: the load generator exited: %s", m.lg.tail())
	default:
	}
	return (b - a) / time.Since(t0).Seconds(), nil
}

func (m *w9Meter) waitServing(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		y, err := m.measure()
		if err != nil {
			return err
		}
		if y > 0 {
			return nil
		}
	}
	return fmt.Errorf("tuner: the provider served nothing within %s", limit)
}

// peers is the provider's connected peer count (-1 when unknown).
func (m *w9Meter) peers() int {
	var sp struct{ Peers []json.RawMessage }
	if err := m.node.RPCJSON(m.env.Ctx, "swarm/peers", nil, &sp); err != nil {
		return -1
	}
	return len(sp.Peers)
}

// knobs reads the three knobs' current values from the tuner's status.
func (m *w9Meter) knobs() (w9Point, error) {
	var st struct {
		Knobs []struct {
			Name  string
			Value float64
			Error string
		}
	}
	if err := m.node.RPCJSON(m.env.Ctx, "stats/highload/autotune", nil, &st); err != nil {
		return w9Point{}, err
	}
	got := map[string]float64{}
	for _, k := range st.Knobs {
		if k.Error == "" {
			got[k.Name] = k.Value
		}
	}
	p := w9Point{rate: got[knobRate], pend: got[knobPend], gogc: got[knobGOGC]}
	for _, name := range []string{knobRate, knobPend, knobGOGC} {
		if _, ok := got[name]; !ok {
			return p, fmt.Errorf("tuner: the daemon's tuner has no knob %s (knobs %v)", name, got)
		}
	}
	return p, nil
}

// set pins the three knobs (the tuner must be frozen) and waits the settle
// time.
func (m *w9Meter) set(p w9Point, reason string) error {
	for _, kv := range []struct {
		name string
		v    float64
	}{{knobRate, p.rate}, {knobPend, p.pend}, {knobGOGC, p.gogc}} {
		args := url.Values{"arg": {kv.name, strconv.FormatFloat(kv.v, 'f', -1, 64)}, "reason": {reason}}
		if _, err := m.node.RPC(m.env.Ctx, "stats/highload/autotune/set", args, nil); err != nil {
			return err
		}
	}
	select {
	case <-time.After(m.settle):
		return nil
	case <-m.env.Ctx.Done():
		return m.env.Ctx.Err()
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func fmtKiBs(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", x/kib)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
