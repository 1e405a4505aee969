package autotune

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestThroughputObjective(t *testing.T) {
	now := time.Unix(0, 0)
	var served float64
	p99 := 50 * time.Millisecond
	var rss uint64 = 100
	obj, err := ThroughputObjective(ThroughputInputs{
		Served:       func() float64 { return served },
		P99:          func() (time.Duration, bool) { return p99, true },
		P99Limit:     100 * time.Millisecond,
		Memory:       func() (uint64, bool) { return rss, true },
		MemoryBudget: 200,
		MinRate:      1,
		Now:          func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	tick := func(n float64) (float64, error) {
		now = now.Add(10 * time.Second)
		served += n
		return obj()
	}
	if v, err := tick(1000); err != nil || v != 100 {
		t.Fatalf("plain rate: %g, %v; want 100", v, err)
	}
	if _, err := tick(5); !errors.Is(err, ErrNoSignal) {
		t.Fatalf("idle window: %v", err)
	}
	p99 = 200 * time.Millisecond
	if v, _ := tick(1000); math.Abs(v-25) > 1e-9 {
		t.Fatalf("p99 twice the limit: %g, want 25", v)
	}
	p99, rss = 10*time.Millisecond, 400
	if v, _ := tick(1000); math.Abs(v-100.0/16) > 1e-9 {
		t.Fatalf("memory twice the budget: %g, want 6.25", v)
	}
	if _, err := ThroughputObjective(ThroughputInputs{}); err == nil {
		t.Fatal("no Served accepted")
	}
}
