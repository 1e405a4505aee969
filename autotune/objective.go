package autotune

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// ThroughputInputs are the figures the default objective reads. Only
// Served is required; a nil constraint reader disables that constraint.
type ThroughputInputs struct {
	// Served returns a monotonic count of work served (blocks, bytes,
	// requests). The objective's base is its rate over the window.
	Served func() float64
	// P99 returns the current p99 latency and whether it is known.
	P99 func() (time.Duration, bool)
	// P99Limit is the latency constraint; 0 disables it.
	P99Limit time.Duration
	// Memory returns the bytes in use (RSS) and whether it is known.
	Memory func() (uint64, bool)
	// MemoryBudget is the memory constraint; 0 disables it.
	MemoryBudget uint64
	// MinRate is the served rate per second below which a window is
	// treated as idle (ErrNoSignal): tuning on no traffic learns nothing.
	MinRate float64
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ThroughputObjective returns the default objective: the served rate over
// the window, multiplied by a penalty for each constraint that is broken,
// (limit/value)^2 for latency and (budget/memory)^4 for memory, so a
// setting that breaks a constraint scores below one that keeps it unless
// it serves far more. Penalties are soft because a hard cut-off would hide
// from the model how far a setting is from being acceptable.
func ThroughputObjective(in ThroughputInputs) (Objective, error) {
	if in.Served == nil {
		return nil, fmt.Errorf("autotune: ThroughputInputs.Served is required")
	}
	now := in.Now
	if now == nil {
		now = time.Now
	}
	var mu sync.Mutex
	lastN, lastT := in.Served(), now()
	return func() (float64, error) {
		mu.Lock()
		defer mu.Unlock()
		n, t := in.Served(), now()
		dn, dt := n-lastN, t.Sub(lastT).Seconds()
		lastN, lastT = n, t
		if dt <= 0 || dn < 0 {
			return 0, fmt.Errorf("%w: counter reset or no time passed", ErrNoSignal)
		}
		rate := dn / dt
		if rate < in.MinRate || rate == 0 {
			return 0, fmt.Errorf("%w: served %.3g/s, below %.3g/s", ErrNoSignal, rate, in.MinRate)
		}
		score := rate
		if in.P99 != nil && in.P99Limit > 0 {
			if p, ok := in.P99(); ok && p > in.P99Limit {
				score *= math.Pow(float64(in.P99Limit)/float64(p), 2)
			}
		}
		if in.Memory != nil && in.MemoryBudget > 0 {
			if m, ok := in.Memory(); ok && m > in.MemoryBudget {
				score *= math.Pow(float64(in.MemoryBudget)/float64(m), 4)
			}
		}
		return score, nil
	}, nil
}
