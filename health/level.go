package health

import (
	"encoding/json"
	"fmt"
	"time"
)

// Level is a pressure level. Higher is worse.
type Level int

// The pressure levels.
const (
	// Normal: resources are comfortably within their limits.
	Normal Level = iota
	// Elevated: a limit is near, or forecast to be reached within the
	// horizon; components should stop growing and shed optional work.
	Elevated
	// Critical: a limit is about to be hit; components shed all but
	// essential work.
	Critical
)

// String returns "normal", "elevated" or "critical".
func (l Level) String() string {
	switch l {
	case Normal:
		return "normal"
	case Elevated:
		return "elevated"
	case Critical:
		return "critical"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// MarshalJSON writes the level as its name.
func (l Level) MarshalJSON() ([]byte, error) { return json.Marshal(l.String()) }

// UnmarshalJSON reads a level written by MarshalJSON.
func (l *Level) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := ParseLevel(s)
	if err != nil {
		return err
	}
	*l = p
	return nil
}

// ParseLevel reads "normal", "elevated" or "critical".
func ParseLevel(s string) (Level, error) {
	switch s {
	case "normal":
		return Normal, nil
	case "elevated":
		return Elevated, nil
	case "critical":
		return Critical, nil
	}
	return Normal, fmt.Errorf("health: unknown level %q (want normal, elevated or critical)", s)
}

// Leveler is what a component that degrades under pressure takes: a way to
// read the current level, and nothing else of the monitor.
type Leveler interface {
	// Level returns the current pressure level.
	Level() Level
}

// Thresholds are the hysteresis settings of the level state machine. Ratios
// are used/limit in [0, 1]. An Enter threshold must exceed its Exit
// threshold.
type Thresholds struct {
	// ElevatedEnter: the ratio at or above which Normal becomes Elevated.
	ElevatedEnter float64
	// ElevatedExit: the ratio below which Elevated may return to Normal.
	ElevatedExit float64
	// CriticalEnter: the ratio at or above which the level becomes Critical.
	CriticalEnter float64
	// CriticalExit: the ratio below which Critical may step down.
	CriticalExit float64
	// MinDwell is how long a level is held before it may step down. Going
	// up is immediate: pressure is acted on at once, relief is trusted
	// only once it lasts.
	MinDwell time.Duration
}

// DefaultThresholds are the thresholds New uses unless told otherwise.
var DefaultThresholds = Thresholds{
	ElevatedEnter: 0.80, ElevatedExit: 0.70,
	CriticalEnter: 0.95, CriticalExit: 0.85,
	MinDwell: 10 * time.Second,
}

// Validate reports thresholds that cannot work.
func (t Thresholds) Validate() error {
	switch {
	case t.ElevatedExit <= 0 || t.CriticalEnter > 10:
		return fmt.Errorf("health: thresholds must be positive ratios, got %+v", t)
	case t.ElevatedExit >= t.ElevatedEnter:
		return fmt.Errorf("health: ElevatedExit %.2f must be below ElevatedEnter %.2f", t.ElevatedExit, t.ElevatedEnter)
	case t.CriticalExit >= t.CriticalEnter:
		return fmt.Errorf("health: CriticalExit %.2f must be below CriticalEnter %.2f", t.CriticalExit, t.CriticalEnter)
	case t.CriticalEnter <= t.ElevatedEnter:
		return fmt.Errorf("health: CriticalEnter %.2f must be above ElevatedEnter %.2f", t.CriticalEnter, t.ElevatedEnter)
	case t.CriticalExit < t.ElevatedExit:
		return fmt.Errorf("health: CriticalExit %.2f must not be below ElevatedExit %.2f", t.CriticalExit, t.ElevatedExit)
	case t.MinDwell < 0:
		return fmt.Errorf("health: MinDwell %s is negative", t.MinDwell)
	}
	return nil
}

// hysteresis is the level state machine. It is not safe for concurrent use;
// the Monitor calls it from its loop only.
type hysteresis struct {
	t     Thresholds
	level Level
	since time.Time // when level was entered
}

// target is the level the ratio asks for, given the current level.
func (h *hysteresis) target(ratio float64) Level {
	t := h.t
	switch {
	case ratio >= t.CriticalEnter:
		return Critical
	case h.level == Critical && ratio >= t.CriticalExit:
		return Critical
	case ratio >= t.ElevatedEnter:
		return Elevated
	case h.level >= Elevated && ratio >= t.ElevatedExit:
		return Elevated
	}
	return Normal
}

// step feeds one ratio observed at now, with floor as the lowest level
// allowed (Elevated while a forecast warns), and returns the new level and
// whether it changed.
func (h *hysteresis) step(ratio float64, floor Level, now time.Time) (Level, bool) {
	want := h.target(ratio)
	if want < floor {
		want = floor
	}
	switch {
	case want > h.level:
	case want < h.level && now.Sub(h.since) >= h.t.MinDwell:
	default:
		return h.level, false
	}
	h.level, h.since = want, now
	return want, true
}
