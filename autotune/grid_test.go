package autotune

import (
	"math"
	"math/rand"
	"testing"
)

// serverModel is a synthetic stand-in for a block server: throughput rises
// with workers until contention bites, and with message size until
// latency and memory cost bite. Its peak is not on any round number.
func serverModel(workers, log2Batch float64) float64 {
	w := workers
	b := math.Exp2(log2Batch)
	scale := w / (w + 12) * math.Exp(-w/180)       // parallelism vs contention
	eff := b / (b + 24<<10) * math.Exp(-b/(3<<20)) // per-message overhead vs latency/memory
	return 10000 * scale * eff
}

// TestTunerVsGridOnSyntheticServer is the tuner-vs-grid comparison on a
// synthetic objective (the real-workload bench is not built yet): a grid
// search measures every grid point once, with the same 2% noise the tuner
// sees, and keeps the best-looking; the tuner starts from stock-like
// settings (8 workers, 16 KiB) and must end within 10% of the grid's pick,
// judged on the noiseless model.
func TestTunerVsGridOnSyntheticServer(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	noisy := func(w, lb float64) float64 { v := serverModel(w, lb); return v * (1 + 0.02*rng.NormFloat64()) }

	// Grid: workers 4..256 step 4, message size 1 KiB..4 MiB in quarter
	// powers of two: 64 x 49 = 3136 windows.
	bestW, bestB, bestSeen := 0.0, 0.0, math.Inf(-1)
	for w := 4.0; w <= 256; w += 4 {
		for lb := 10.0; lb <= 22; lb += 0.25 {
			if v := noisy(w, lb); v > bestSeen {
				bestW, bestB, bestSeen = w, lb, v
			}
		}
	}
	grid := serverModel(bestW, bestB)

	wk, kw := newTestKnob("workers", 8, 1, 256, 1)
	bk, kb := newTestKnob("message.log2", 14, 10, 22, 0.25)
	tu, err := newTuner(Config{
		Knobs:     func() []Knob { return []Knob{kw, kb} },
		Objective: func() (float64, error) { return noisy(wk.get(), bk.get()), nil },
		Seed:      3,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := serverModel(wk.get(), bk.get())
	const windows = 600
	reached := -1
	for i := 0; i < windows; i++ {
		tu.step()
		if reached < 0 && serverModel(wk.get(), bk.get()) >= 0.9*grid {
			reached = i + 1
		}
	}
	got := serverModel(wk.get(), bk.get())
	t.Logf("grid (3136 windows): %.0f at %g workers, 2^%g B; tuner from %.0f: within 10%% after %d windows, %.0f at %g workers, 2^%g B after %d (%.1f%% of grid)",
		grid, bestW, bestB, start, reached, got, wk.get(), bk.get(), windows, 100*got/grid)
	if got < 0.9*grid {
		t.Fatalf("tuner reached %.0f, below 90%% of the grid's %.0f", got, grid)
	}
	if wk.outside.Load() != 0 || bk.outside.Load() != 0 {
		t.Fatal("a value left the bounds")
	}
}
