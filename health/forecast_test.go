package health

import (
	"math"
	"math/rand"
	"testing"
	"time"
)

func TestHoltLinearWithNoise(t *testing.T) {
	// RSS grows 1 MiB/s from 100 MiB with ±2 MiB noise, sampled every 5s;
	// the limit is 1 GiB, so the truth after the last sample is known.
	rng := rand.New(rand.NewSource(1))
	h := NewHolt(0.5, 0.2)
	t0 := time.Unix(1000, 0)
	const mib = 1 << 20
	var now time.Time
	var truth float64
	for i := 0; i < 60; i++ {
		now = t0.Add(time.Duration(i) * 5 * time.Second)
		truth = 100*mib + float64(i*5)*mib
		h.Observe(now, truth+(rng.Float64()*4-2)*mib)
	}
	if math.Abs(h.Slope()-mib)/mib > 0.15 {
		t.Fatalf("slope %.0f B/s, want about %d", h.Slope(), mib)
	}
	got, ok := h.TimeTo(1024 * mib)
	if !ok {
		t.Fatal("no exhaustion forecast for a rising series")
	}
	want := time.Duration((1024*mib - truth) / mib * float64(time.Second))
	if d := math.Abs(float64(got-want)) / float64(want); d > 0.15 {
		t.Fatalf("time to limit %s, want about %s", got, want)
	}
}

func TestHoltFlatAndFalling(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	flat, fall := NewHolt(0.5, 0.2), NewHolt(0.5, 0.2)
	t0 := time.Unix(0, 0)
	for i := 0; i < 40; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		flat.Observe(now, 500+rng.Float64()*0.001)
		fall.Observe(now, 500-float64(i)*3)
	}
	if d, ok := fall.TimeTo(1000); ok {
		t.Fatalf("falling series forecast to reach its limit in %s", d)
	}
	// A flat series may wobble to a tiny positive slope; then the forecast
	// must be far away, not imminent.
	if d, ok := flat.TimeTo(1000); ok && d < 24*time.Hour {
		t.Fatalf("flat series forecast to reach its limit in %s", d)
	}
}

func TestHoltNeedsSamplesAndIgnoresOldOnes(t *testing.T) {
	h := NewHolt(0.5, 0.2)
	t0 := time.Unix(0, 0)
	h.Observe(t0, 10)
	h.Observe(t0.Add(time.Second), 20)
	if _, ok := h.TimeTo(100); ok {
		t.Fatal("forecast from two samples")
	}
	h.Observe(t0.Add(time.Second), 1e9) // same time: ignored
	h.Observe(t0.Add(2*time.Second), 30)
	d, ok := h.TimeTo(100)
	if !ok || d < 6*time.Second || d > 8*time.Second {
		t.Fatalf("TimeTo(100) = %s, %v; want about 7s", d, ok)
	}
	if d, ok := h.TimeTo(25); !ok || d != 0 {
		t.Fatalf("limit already passed: TimeTo = %s, %v; want 0, true", d, ok)
	}
}
