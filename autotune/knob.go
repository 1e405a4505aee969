package autotune

import (
	"errors"
	"fmt"
	"math"
)

// Knob is one live setting the tuner may change. It is plain data: the
// component owns the value (usually an atomic) and hands out Get and Set.
type Knob struct {
	// Name identifies the knob, e.g. "bitswap.TaskWorkerCount".
	Name string
	// Unit is what the value counts, e.g. "workers", "bytes".
	Unit string
	// Min and Max bound every value the tuner sets, inclusive.
	Min, Max float64
	// Step is the smallest change worth making; values the tuner sets are
	// Min plus a multiple of Step (or Max).
	Step float64
	// Get returns the current value.
	Get func() float64
	// Set applies a value within [Min, Max]. An error leaves the value as
	// it was.
	Set func(float64) error
}

// Validate reports a knob that cannot be tuned.
func (k Knob) Validate() error {
	switch {
	case k.Name == "":
		return errors.New("autotune: knob without a name")
	case math.IsNaN(k.Min) || math.IsNaN(k.Max) || k.Min >= k.Max:
		return fmt.Errorf("autotune: knob %s: Min %g must be below Max %g", k.Name, k.Min, k.Max)
	case !(k.Step > 0) || k.Step > k.Max-k.Min:
		return fmt.Errorf("autotune: knob %s: Step %g must be in (0, Max-Min]", k.Name, k.Step)
	case k.Get == nil || k.Set == nil:
		return fmt.Errorf("autotune: knob %s: Get and Set are required", k.Name)
	}
	return nil
}

// Snap returns v clamped to [Min, Max] and moved to the nearest point of
// the knob's step grid.
func (k Knob) Snap(v float64) float64 {
	if math.IsNaN(v) {
		return k.Min
	}
	v = math.Round((v-k.Min)/k.Step)*k.Step + k.Min
	return math.Min(k.Max, math.Max(k.Min, v))
}
