package health

import (
	"fmt"
	"time"
)

// Option configures a Monitor. Options validate themselves.
type Option func(*config) error

type config struct {
	interval   time.Duration
	thresholds Thresholds
	budget     uint64
	horizon    time.Duration
	warmup     time.Duration
	alpha      float64
	beta       float64
	now        func() time.Time
	onSample   func(Snapshot)
	onWarning  func(Warning)
}

// WithInterval sets the time between samples (default 5s).
func WithInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("health: interval %s is below 10ms", d)
		}
		c.interval = d
		return nil
	}
}

// WithThresholds sets the level thresholds (default DefaultThresholds).
func WithThresholds(t Thresholds) Option {
	return func(c *config) error {
		if err := t.Validate(); err != nil {
			return err
		}
		c.thresholds = t
		return nil
	}
}

// WithMemoryBudget sets the bytes of RSS this process may use; 0 (the
// default) means no budget of its own, only the cgroup and host limits.
func WithMemoryBudget(bytes uint64) Option {
	return func(c *config) error { c.budget = bytes; return nil }
}

// WithHorizon sets how far ahead a forecast exhaustion raises a warning and
// holds the level at Elevated (default 30m; 0 turns forecast warnings off).
func WithHorizon(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("health: horizon %s is negative", d)
		}
		c.horizon = d
		return nil
	}
}

// WithForecastWarmup sets how long a trend must be observed before its
// forecast may warn or hold the level (default 1m).
func WithForecastWarmup(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("health: forecast warm-up %s is negative", d)
		}
		c.warmup = d
		return nil
	}
}

// WithSmoothing sets Holt's level and slope factors (default 0.5 and 0.2).
func WithSmoothing(alpha, beta float64) Option {
	return func(c *config) error {
		if alpha <= 0 || alpha > 1 || beta <= 0 || beta > 1 {
			return fmt.Errorf("health: smoothing factors must be in (0, 1], got %g and %g", alpha, beta)
		}
		c.alpha, c.beta = alpha, beta
		return nil
	}
}

// WithClock sets the time source used for dwell and forecasts (default
// time.Now). Samples keep their own Time.
func WithClock(now func() time.Time) Option {
	return func(c *config) error { c.now = now; return nil }
}

// WithOnSample calls f with every new snapshot, from the monitor's loop.
// f must not block.
func WithOnSample(f func(Snapshot)) Option {
	return func(c *config) error { c.onSample = f; return nil }
}

// WithOnWarning calls f when a warning appears (not again while it lasts),
// from the monitor's loop. f must not block.
func WithOnWarning(f func(Warning)) Option {
	return func(c *config) error { c.onWarning = f; return nil }
}
