// Package autotune changes live knobs to improve an objective, safely and
// with a record of why, and reads metric series for bottlenecks.
//
// Knobs are plain data (a name, a unit, bounds, a step and get/set
// functions over a component's atomics); the tuner never reaches into a
// component. The Tuner works in observation windows. It measures the
// objective at the current settings (at least two windows, which also
// estimates the measurement noise), then tries one change to one knob,
// observes one window, and keeps the change only if the objective improved;
// a change that makes it worse beyond the noise is rolled back at the end
// of that window, and so is one that gained nothing.
//
// The model is small on purpose. For each knob the tuner keeps the recent
// (setting, objective) points and fits a quadratic by least squares; when
// the fit is concave it proposes its vertex, limited to the knob's current
// step. Until the fit is usable (or when it is convex) a two-armed
// Thompson-sampling bandit per knob picks the direction (up or down) from
// how often each direction paid off, and the step doubles after a gain and
// halves after a loss, within [Step, MaxStepMult*Step]. Every value is
// snapped to the knob's step grid and clamped to [Min, Max].
//
// Every change is logged with its reason and the objective before and
// after; RevertLast and Freeze are the operator's controls.
//
//	t, _ := autotune.New(autotune.Config{Knobs: knobs, Objective: obj, Window: time.Minute})
//	defer t.Close()
//	for _, c := range t.Status().Changes { fmt.Println(c.Knob, c.From, c.To, c.Reason) }
package autotune
