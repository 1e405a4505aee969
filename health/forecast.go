package health

import (
	"math"
	"time"
)

// Holt is Holt's linear-trend (double exponential) smoother over an
// irregularly sampled series: a smoothed level and a smoothed slope per
// second. It forecasts when the series will reach a limit.
//
// The update for an observation x after dt seconds is
//
//	level' = Alpha*x + (1-Alpha)*(level + slope*dt)
//	slope' = Beta*(level'-level)/dt + (1-Beta)*slope
//
// The zero value is not usable; use NewHolt.
type Holt struct {
	alpha, beta  float64
	level, slope float64
	first, last  time.Time
	n            int
}

// minForecastSamples is how many observations a Holt needs before it
// forecasts: two fix a slope, the third lets smoothing start to act.
const minForecastSamples = 3

// NewHolt returns a forecaster with smoothing factors alpha (level) and
// beta (slope), each in (0, 1].
func NewHolt(alpha, beta float64) *Holt {
	return &Holt{alpha: alpha, beta: beta}
}

// Observe adds x observed at t. Observations at or before the previous one
// are ignored.
func (h *Holt) Observe(t time.Time, x float64) {
	switch {
	case h.n == 0:
		h.level, h.first = x, t
	case !t.After(h.last):
		return
	case h.n == 1:
		dt := t.Sub(h.last).Seconds()
		h.slope = (x - h.level) / dt
		h.level = x
	default:
		dt := t.Sub(h.last).Seconds()
		prev := h.level
		h.level = h.alpha*x + (1-h.alpha)*(h.level+h.slope*dt)
		h.slope = h.beta*(h.level-prev)/dt + (1-h.beta)*h.slope
	}
	h.last = t
	h.n++
}

// Level returns the smoothed current value.
func (h *Holt) Level() float64 { return h.level }

// Slope returns the smoothed change per second.
func (h *Holt) Slope() float64 { return h.slope }

// Span is the time between the first and the latest observation.
func (h *Holt) Span() time.Duration { return h.last.Sub(h.first) }

// Ready reports whether enough observations arrived to forecast.
func (h *Holt) Ready() bool { return h.n >= minForecastSamples }

// TimeTo returns the time until the trend reaches limit, and true, when the
// forecaster is ready, the series rises toward limit and has not yet
// reached it. A reached limit returns 0, true.
func (h *Holt) TimeTo(limit float64) (time.Duration, bool) {
	if !h.Ready() {
		return 0, false
	}
	if h.level >= limit {
		return 0, true
	}
	if h.slope <= 0 {
		return 0, false
	}
	secs := (limit - h.level) / h.slope
	if secs > float64(math.MaxInt64/int64(time.Second)) {
		return 0, false
	}
	return time.Duration(secs * float64(time.Second)), true
}
