package plugin

import (
	"testing"

	"github.com/kubo-highload/highload/exchange"
)

func TestTunerKnobBoundsStayAroundTheFirstValue(t *testing.T) {
	v := int64(1000)
	k := exchange.Knob{Name: "test.knob", Unit: "entries", Min: 0, Max: 1 << 24,
		Get: func() int64 { return v }, Set: func(n int64) error { v = n; return nil }}
	tk := tunerKnob(k)
	if err := tk.Validate(); err != nil {
		t.Fatal(err)
	}
	if tk.Min != 250 || tk.Max != 4000 || tk.Step != 250 {
		t.Fatalf("bounds %v..%v step %v, want 250..4000 step 250", tk.Min, tk.Max, tk.Step)
	}
	if err := tk.Set(3000); err != nil || v != 3000 || tk.Get() != 3000 {
		t.Fatalf("Set(3000): err %v, value %d", err, v)
	}
	// Seen again after the tuner moved it, the bounds do not drift.
	if again := tunerKnob(k); again.Min != 250 || again.Max != 4000 {
		t.Fatalf("bounds moved to %v..%v", again.Min, again.Max)
	}
}

func TestBitswapPressureLevel(t *testing.T) {
	if got := bitswapPressureLevel(); got != 0 {
		t.Fatalf("no monitor running: level %d, want 0", got)
	}
}
