package autotune

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testKnob is a knob over a float with a bounds check on every Set.
type testKnob struct {
	v        atomic.Uint64
	outside  atomic.Int32
	min, max float64
}

func (k *testKnob) get() float64 { return math.Float64frombits(k.v.Load()) }
func (k *testKnob) set(v float64) error {
	if v < k.min || v > k.max {
		k.outside.Add(1)
	}
	k.v.Store(math.Float64bits(v))
	return nil
}

func newTestKnob(name string, start, min, max, step float64) (*testKnob, Knob) {
	tk := &testKnob{min: min, max: max}
	tk.set(start)
	return tk, Knob{Name: name, Unit: "units", Min: min, Max: max, Step: step, Get: tk.get, Set: tk.set}
}

// twoKnobs is a synthetic objective over two knobs: a concave bowl with
// its peak (1000) at x=37, y=600, plus Gaussian noise.
func twoKnobs(t *testing.T, noise float64) (*testKnob, *testKnob, func(x, y float64) float64, Config) {
	xk, kx := newTestKnob("workers", 8, 1, 128, 1)
	yk, ky := newTestKnob("batch", 128, 64, 2048, 16)
	f := func(x, y float64) float64 { return 1000 - 0.5*(x-37)*(x-37) - 0.002*(y-600)*(y-600) }
	rng := rand.New(rand.NewSource(42))
	cfg := Config{
		Knobs:     func() []Knob { return []Knob{kx, ky} },
		Objective: func() (float64, error) { return f(xk.get(), yk.get()) + rng.NormFloat64()*noise, nil },
		Window:    time.Minute,
		Seed:      7,
	}
	return xk, yk, f, cfg
}

func TestTunerConvergesOnNoisyObjective(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		xk, yk, f, cfg := twoKnobs(t, 5)
		cfg.Seed = seed
		tu, err := newTuner(cfg)
		if err != nil {
			t.Fatal(err)
		}
		start := f(xk.get(), yk.get())
		for i := 0; i < 400; i++ {
			tu.step()
		}
		got := f(xk.get(), yk.get())
		if got < 980 {
			t.Fatalf("seed %d: objective %.1f at x=%g y=%g after 400 windows (from %.1f); optimum 1000 at x=37 y=600\n%s",
				seed, got, xk.get(), yk.get(), start, changeLog(tu))
		}
		if xk.outside.Load() != 0 || yk.outside.Load() != 0 {
			t.Fatalf("seed %d: %d/%d values set outside the bounds", seed, xk.outside.Load(), yk.outside.Load())
		}
		st := tu.Status()
		if st.Kept == 0 || st.RolledBack == 0 {
			t.Fatalf("seed %d: kept %d, rolled back %d", seed, st.Kept, st.RolledBack)
		}
		for _, c := range st.Changes {
			if c.Reason == "" || c.Before == nil {
				t.Fatalf("seed %d: change without reason or before figure: %+v", seed, c)
			}
		}
	}
}

func changeLog(tu *Tuner) string {
	var b strings.Builder
	for _, c := range tu.Status().Changes {
		after := math.NaN()
		if c.After != nil {
			after = *c.After
		}
		fmt.Fprintf(&b, "%d %s %s %g->%g %s after=%.1f: %s\n", c.Seq, c.Knob, c.Kind, c.From, c.To, c.Outcome, after, c.Reason)
	}
	return b.String()
}

func TestTunerStaysInBoundsWhenOptimumIsOutside(t *testing.T) {
	xk, kx := newTestKnob("size", 10, 1, 50, 1)
	rng := rand.New(rand.NewSource(3))
	tu, err := newTuner(Config{
		Knobs: func() []Knob { return []Knob{kx} },
		// Keeps rising well past Max.
		Objective: func() (float64, error) { return 10*xk.get() + rng.NormFloat64()*3, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		tu.step()
		if v := xk.get(); v < 1 || v > 50 {
			t.Fatalf("window %d: value %g outside [1, 50]", i, v)
		}
	}
	if xk.outside.Load() != 0 {
		t.Fatalf("%d values set outside the bounds", xk.outside.Load())
	}
	if xk.get() < 45 {
		t.Fatalf("value %g after 200 windows, want near the bound 50", xk.get())
	}
	if err := tu.Propose("size", 51, ""); err == nil {
		t.Fatal("proposal outside the bounds accepted")
	}
}

func TestTunerRollsBackInjectedBadChangeInOneWindow(t *testing.T) {
	xk, yk, _, cfg := twoKnobs(t, 5)
	tu, err := newTuner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		tu.step()
	}
	// Wait for a window boundary with no trial in flight.
	for tu.Status().State == "trial" {
		tu.step()
	}
	goodX, goodY := xk.get(), yk.get()
	if err := tu.Propose("workers", 128, "injected bad change"); err != nil {
		t.Fatal(err)
	}
	// At most BaselineWindows windows until it is applied.
	applied := false
	for i := 0; i < 3 && !applied; i++ {
		tu.step()
		applied = xk.get() == 128
	}
	if !applied {
		t.Fatalf("proposal not applied; state %+v", tu.Status())
	}
	tu.step() // one observation window
	if xk.get() != goodX || yk.get() != goodY {
		t.Fatalf("after one window: workers=%g batch=%g, want %g, %g restored", xk.get(), yk.get(), goodX, goodY)
	}
	ch := tu.Status().Changes
	last, trial := ch[len(ch)-1], ch[len(ch)-2]
	if last.Kind != KindRollback || !strings.HasPrefix(last.Reason, "worse:") || last.From != 128 || last.To != goodX {
		t.Fatalf("last change %+v, want a rollback of the injected value", last)
	}
	if trial.Reason != "injected bad change" || trial.Outcome != "rolled back" || trial.After == nil || *trial.After >= *trial.Before {
		t.Fatalf("trial record %+v", trial)
	}
	tu.step()
	if c := tu.Status().Changes[len(ch)-1]; c.After == nil {
		t.Fatalf("rollback's after-figure not filled by the next window: %+v", c)
	}
}

func TestTunerRevertFreezeResume(t *testing.T) {
	xk, _, _, cfg := twoKnobs(t, 1)
	tu, err := newTuner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tu.RevertLast(""); !errors.Is(err, ErrNothingToRevert) {
		t.Fatalf("revert with an empty log: %v", err)
	}
	for tu.Status().Kept == 0 {
		tu.step()
	}
	for tu.Status().State == "trial" {
		tu.step()
	}
	var kept Change
	for _, c := range tu.Status().Changes {
		if c.Outcome == "kept" {
			kept = c
		}
	}
	ch, err := tu.RevertLast("")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Kind != KindRevert || ch.To != kept.From || !strings.Contains(ch.Reason, "operator") {
		t.Fatalf("revert %+v of %+v", ch, kept)
	}
	if kept.Knob == "workers" && xk.get() != kept.From {
		t.Fatalf("workers %g after revert, want %g", xk.get(), kept.From)
	}

	// Freeze mid-trial: the trial is rolled back and nothing moves.
	for tu.Status().State != "trial" {
		tu.step()
	}
	tu.Freeze("maintenance")
	frozen := tu.Status()
	if !frozen.Frozen || frozen.State != "frozen" || frozen.Changes[len(frozen.Changes)-1].Kind != KindRollback {
		t.Fatalf("after Freeze: %+v", frozen)
	}
	n := len(frozen.Changes)
	x := xk.get()
	for i := 0; i < 20; i++ {
		tu.step()
	}
	if len(tu.Status().Changes) != n || xk.get() != x {
		t.Fatal("a frozen tuner changed something")
	}
	tu.Resume()
	for i := 0; i < 20; i++ {
		tu.step()
	}
	if len(tu.Status().Changes) == n {
		t.Fatal("no change after Resume")
	}
}

func TestTunerSetWhileFrozen(t *testing.T) {
	xk, _, _, cfg := twoKnobs(t, 1)
	tu, err := newTuner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tu.Set("workers", 20, ""); !errors.Is(err, ErrNotFrozen) {
		t.Fatalf("Set on a running tuner: %v, want ErrNotFrozen", err)
	}
	tu.Freeze("grid search")
	if _, err := tu.Set("workers", 500, ""); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("Set outside the bounds: %v", err)
	}
	if _, err := tu.Set("nope", 5, ""); !errors.Is(err, ErrUnknownKnob) {
		t.Fatalf("Set of an unknown knob: %v", err)
	}
	ch, err := tu.Set("workers", 20.4, "")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Kind != KindSet || ch.From != 8 || ch.To != 20 || xk.get() != 20 || !strings.Contains(ch.Reason, "operator") {
		t.Fatalf("Set returned %+v, knob at %g", ch, xk.get())
	}
	n := len(tu.Status().Changes)
	for i := 0; i < 10; i++ {
		tu.step()
	}
	if xk.get() != 20 || len(tu.Status().Changes) != n {
		t.Fatal("a frozen tuner moved a hand-set knob")
	}
}

func TestTunerNoKnobsSkipsAndGate(t *testing.T) {
	tu, err := newTuner(Config{Objective: func() (float64, error) { return 1, nil }})
	if err != nil {
		t.Fatal(err)
	}
	tu.step()
	if st := tu.Status(); st.State != "no knobs registered" || st.Windows != 0 {
		t.Fatalf("status without knobs: %+v", st)
	}

	xk, kx := newTestKnob("k", 5, 1, 10, 1)
	signal, open := false, true
	tu, err = newTuner(Config{
		Knobs: func() []Knob { return []Knob{kx} },
		Objective: func() (float64, error) {
			if !signal {
				return 0, ErrNoSignal
			}
			return -math.Abs(xk.get() - 8), nil
		},
		Gate: func() (bool, string) { return open, "health: critical" },
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		tu.step()
	}
	if st := tu.Status(); st.Skipped != 5 || len(st.Changes) != 0 {
		t.Fatalf("windows without signal: %+v", st)
	}
	signal = true
	for tu.Status().State != "trial" {
		tu.step()
	}
	trialValue := xk.get()
	open = false
	tu.step()
	st := tu.Status()
	if st.State != "paused" || xk.get() == trialValue || !strings.Contains(st.Changes[len(st.Changes)-1].Reason, "health: critical") {
		t.Fatalf("gate closed mid-trial: value %g, status %+v", xk.get(), st)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("no objective accepted")
	}
	if _, err := New(Config{Objective: func() (float64, error) { return 0, nil }, Window: -time.Second}); err == nil {
		t.Fatal("negative window accepted")
	}
	tu, err := New(Config{Objective: func() (float64, error) { return 0, nil }, Window: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tu.Close()
	tu.Close()
}

func TestKnobValidateAndSnap(t *testing.T) {
	_, k := newTestKnob("k", 5, 1, 10, 2)
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[float64]float64{-5: 1, 2.1: 3, 4: 5, 10.4: 10, 100: 10} {
		if got := k.Snap(in); got != want {
			t.Fatalf("Snap(%g) = %g, want %g", in, got, want)
		}
	}
	for _, bad := range []Knob{
		{Name: "", Min: 0, Max: 1, Step: 1, Get: k.Get, Set: k.Set},
		{Name: "a", Min: 2, Max: 1, Step: 1, Get: k.Get, Set: k.Set},
		{Name: "a", Min: 0, Max: 1, Step: 0, Get: k.Get, Set: k.Set},
		{Name: "a", Min: 0, Max: 1, Step: 1},
	} {
		if bad.Validate() == nil {
			t.Fatalf("invalid knob accepted: %+v", bad)
		}
	}
}

func TestFitQuadratic(t *testing.T) {
	var ps []point
	for x := 10.0; x <= 60; x += 10 {
		ps = append(ps, point{x, 100 - (x-42)*(x-42)})
	}
	v, concave, ok := fitQuadratic(ps)
	if !ok || !concave || math.Abs(v-42) > 1e-6 {
		t.Fatalf("vertex %g concave %v ok %v, want 42", v, concave, ok)
	}
	if _, concave, ok := fitQuadratic([]point{{1, 1}, {2, 4}, {3, 9}, {4, 16}}); !ok || concave {
		t.Fatal("convex series fitted as concave")
	}
	if _, _, ok := fitQuadratic([]point{{1, 1}, {1, 2}, {2, 3}, {2, 4}}); ok {
		t.Fatal("fit from two settings")
	}
}

// A knob whose effect per Step is far below the measurement noise (GOGC
// in steps of 25, where the whole range is worth 25% and one window's
// noise is 10%): one-Step trials can never show a gain above the noise,
// so a tuner that shrinks its step after every trial without a gain stays
// where it started. Trials that are neither kept nor worse must grow the
// step instead, until a trial's effect can show above the noise. In 60
// windows (W9's tuner phase is 45) the tuner must climb most of the way.
func TestTunerGrowsStepsBelowTheNoise(t *testing.T) {
	var finals []float64
	for seed := int64(1); seed <= 7; seed++ {
		gk, kg := newTestKnob("gogc", 100, 50, 400, 25)
		rng := rand.New(rand.NewSource(seed * 11))
		f := func(x float64) float64 { return 1000 * (1 + 0.25*(x-100)/300) }
		tu, err := newTuner(Config{
			Knobs:     func() []Knob { return []Knob{kg} },
			Objective: func() (float64, error) { return f(gk.get()) * (1 + 0.1*rng.NormFloat64()), nil },
			Seed:      seed,
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 60; i++ {
			tu.step()
		}
		if gk.outside.Load() != 0 {
			t.Fatalf("seed %d: a value outside the bounds was set", seed)
		}
		finals = append(finals, gk.get())
	}
	s := append([]float64(nil), finals...)
	sortFloats(s)
	if med := s[len(s)/2]; med < 250 {
		t.Fatalf("after 60 windows the knob ended at %v (median %g); want the median at 250 or above (start 100, best 400)", finals, med)
	}
	t.Logf("ended at %v", finals)
}

func sortFloats(s []float64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
