package exchange

import (
	"sync"
	"time"
)

// State is a circuit breaker's state.
type State int32

// Breaker states.
const (
	// Closed admits everything.
	Closed State = iota
	// Open denies everything until its cooldown ends.
	Open
	// HalfOpen admits a growing fraction of requests.
	HalfOpen
	numStates
)

// String names the state as the stats and metrics show it.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "unknown"
}

// admitSlots is the resolution of the half-open admission fraction.
const admitSlots = 64

// BreakerConfig sets a breaker's timing. All durations must be positive.
type BreakerConfig struct {
	// Cooldown is how long the breaker stays open after its first trip.
	Cooldown time.Duration
	// MaxCooldown caps the cooldown, which doubles on each re-trip.
	MaxCooldown time.Duration
	// Ramp is how often the admitted fraction doubles while half-open.
	Ramp time.Duration
	// StartSlots is the admitted fraction on entering half-open, in 64ths.
	StartSlots int
}

// Breaker is a closed / open / half-open circuit breaker with gradual
// recovery. Its methods are safe for concurrent use; onChange, if set, is
// called (under the breaker's lock, so it must be quick) on each state
// change.
type Breaker struct {
	mu       sync.Mutex
	cfg      BreakerConfig
	state    State
	since    time.Time     // when the current state (or ramp step) began
	cooldown time.Duration // current open time
	slots    int           // half-open: admitted 64ths
	n        uint64        // half-open admission counter
	trips    uint64
	onChange func(from, to State)
}

// NewBreaker returns a closed breaker.
func NewBreaker(cfg BreakerConfig, onChange func(from, to State)) *Breaker {
	if cfg.StartSlots <= 0 || cfg.StartSlots > admitSlots {
		cfg.StartSlots = admitSlots / 8
	}
	return &Breaker{cfg: cfg, cooldown: cfg.Cooldown, onChange: onChange}
}

func (b *Breaker) set(to State, now time.Time) {
	from := b.state
	b.state = to
	b.since = now
	if from != to && b.onChange != nil {
		b.onChange(from, to)
	}
}

// advance moves the breaker along by time alone: open -> half-open after the
// cooldown, half-open ramps up and closes. Callers hold b.mu.
func (b *Breaker) advance(now time.Time) {
	for {
		switch b.state {
		case Open:
			if now.Sub(b.since) < b.cooldown {
				return
			}
			b.slots = b.cfg.StartSlots
			b.set(HalfOpen, b.since.Add(b.cooldown))
		case HalfOpen:
			if b.cfg.Ramp <= 0 || now.Sub(b.since) < b.cfg.Ramp {
				return
			}
			b.slots *= 2
			if b.slots >= admitSlots {
				b.cooldown = b.cfg.Cooldown // a full recovery forgives past trips
				b.set(Closed, b.since.Add(b.cfg.Ramp))
				return
			}
			b.since = b.since.Add(b.cfg.Ramp)
		default:
			return
		}
	}
}

// Allow reports whether one request is admitted at now.
func (b *Breaker) Allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	switch b.state {
	case Open:
		return false
	case HalfOpen:
		b.n++
		return int(b.n%admitSlots) < b.slots
	}
	return true
}

// Trip opens the breaker at now. Tripping an open breaker does nothing;
// tripping a half-open one reopens it with a doubled cooldown.
func (b *Breaker) Trip(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	switch b.state {
	case Open:
		return
	case HalfOpen:
		b.cooldown *= 2
		if b.cfg.MaxCooldown > 0 && b.cooldown > b.cfg.MaxCooldown {
			b.cooldown = b.cfg.MaxCooldown
		}
	}
	b.trips++
	b.set(Open, now)
}

// OpenFor returns how much longer the breaker stays open at now (0 when it
// is not open).
func (b *Breaker) OpenFor(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	if b.state != Open {
		return 0
	}
	return b.cooldown - now.Sub(b.since)
}

// Reset closes the breaker at once and forgets its past trips.
func (b *Breaker) Reset(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cooldown = b.cfg.Cooldown
	b.set(Closed, now)
}

// BreakerState is a breaker's observable state.
type BreakerState struct {
	// State is closed, open or half-open.
	State State `json:"-"`
	// Name is State as text.
	Name string `json:"state"`
	// AdmitFraction is the share of requests admitted (0 open, 1 closed).
	AdmitFraction float64 `json:"admit_fraction"`
	// Cooldown is the current open time.
	Cooldown time.Duration `json:"cooldown_ns"`
	// Trips counts the times the breaker opened.
	Trips uint64 `json:"trips"`
}

// Snapshot returns the breaker's state at now (advancing it by time).
func (b *Breaker) Snapshot(now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	s := BreakerState{State: b.state, Name: b.state.String(), Cooldown: b.cooldown, Trips: b.trips}
	switch b.state {
	case Closed:
		s.AdmitFraction = 1
	case HalfOpen:
		s.AdmitFraction = float64(b.slots) / admitSlots
	}
	return s
}
