package health

import (
	"testing"
	"time"
)

func TestHysteresis(t *testing.T) {
	t0 := time.Unix(0, 0)
	h := hysteresis{t: DefaultThresholds, since: t0}
	steps := []struct {
		at    time.Duration
		ratio float64
		want  Level
	}{
		{0, 0.50, Normal},
		{1 * time.Second, 0.79, Normal},
		{2 * time.Second, 0.80, Elevated},  // enter at once
		{3 * time.Second, 0.75, Elevated},  // above exit: stays
		{4 * time.Second, 0.60, Elevated},  // below exit, but dwell not over
		{13 * time.Second, 0.60, Normal},   // dwell over
		{14 * time.Second, 0.97, Critical}, // jump straight up
		{15 * time.Second, 0.90, Critical}, // above critical exit
		{30 * time.Second, 0.80, Elevated}, // steps down to what the ratio asks
		{31 * time.Second, 0.96, Critical},
		{32 * time.Second, 0.10, Critical}, // dwell again
		{45 * time.Second, 0.10, Normal},   // straight to normal after dwell
	}
	for _, s := range steps {
		got, _ := h.step(s.ratio, Normal, t0.Add(s.at))
		if got != s.want {
			t.Fatalf("at %s ratio %.2f: level %s, want %s", s.at, s.ratio, got, s.want)
		}
	}
}

func TestHysteresisFloor(t *testing.T) {
	t0 := time.Unix(0, 0)
	h := hysteresis{t: DefaultThresholds, since: t0}
	if l, _ := h.step(0.1, Elevated, t0); l != Elevated {
		t.Fatalf("floor Elevated gave %s", l)
	}
	if l, _ := h.step(0.1, Normal, t0.Add(time.Minute)); l != Normal {
		t.Fatalf("floor lifted gave %s", l)
	}
}

func TestThresholdsValidate(t *testing.T) {
	if err := DefaultThresholds.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultThresholds
	bad.ElevatedExit = 0.9
	if err := bad.Validate(); err == nil {
		t.Fatal("exit above enter accepted")
	}
	bad = DefaultThresholds
	bad.CriticalEnter = 0.7
	if err := bad.Validate(); err == nil {
		t.Fatal("critical below elevated accepted")
	}
}

func TestLevelText(t *testing.T) {
	for _, l := range []Level{Normal, Elevated, Critical} {
		b, err := l.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Level
		if err := back.UnmarshalJSON(b); err != nil || back != l {
			t.Fatalf("%s round trip: %s, %v", l, back, err)
		}
	}
	if _, err := ParseLevel("panic"); err == nil {
		t.Fatal("bad level accepted")
	}
}
