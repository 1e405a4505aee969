package overload

import (
	"testing"

	"github.com/kubo-highload/highload/bench/internal/workload"
)

func TestW9RegisteredAndQuickIsSmaller(t *testing.T) {
	w, ok := workload.Get("W9")
	if !ok || w.Run == nil || w.Name != "tuner" || w.Shape == "" {
		t.Fatalf("W9 registration: %+v, %v", w, ok)
	}
	q, f := w9Sizes(true), w9Sizes(false)
	qPoints := len(q.rateMult) * len(q.pendMult) * len(q.gogc)
	fPoints := len(f.rateMult) * len(f.pendMult) * len(f.gogc)
	if qPoints >= fPoints || q.tune >= f.tune || q.window > f.window || q.repeats > f.repeats {
		t.Errorf("W9 quick %+v is not smaller than full %+v", q, f)
	}
	// The grid spans the tuner's bounds (a quarter to four times the start).
	for _, sz := range []w9Size{q, f} {
		for _, m := range append(append([]float64{}, sz.rateMult...), sz.pendMult...) {
			if m < 0.25 || m > 4 {
				t.Errorf("grid multiple %g is outside the tuner's bounds", m)
			}
		}
		for _, g := range sz.gogc {
			if g < 50 || g > 400 {
				t.Errorf("grid GOGC %g is outside the knob's bounds", g)
			}
		}
	}
	if got := median([]float64{3, 1, 2, 10}); got != 2.5 {
		t.Errorf("median = %g, want 2.5", got)
	}
}
