package autoscale

import (
	"sort"
	"sync"
	"time"
)

// State is a name's place in the Isolator.
type State string

// The states.
const (
	// Healthy: calls are allowed.
	Healthy State = "healthy"
	// Isolated: calls are refused until the backoff ends.
	Isolated State = "isolated"
	// Probing: the backoff ended and one probe call is in flight.
	Probing State = "probing"
)

// IsolatorConfig configures an Isolator. Zero fields take the defaults.
type IsolatorConfig struct {
	// Threshold is the number of consecutive failures that isolate a name
	// (default 5).
	Threshold int
	// Backoff is the first isolation's length (default 5s); each isolation
	// in a row doubles it, up to MaxBackoff (default 5m).
	Backoff, MaxBackoff time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnChange is called, outside the Isolator's lock, when a name changes
	// state; the plugin logs it and tests observe it.
	OnChange func(name string, from, to State, lastErr error)
}

// Isolator tracks failures per name. Its methods are safe for concurrent
// use.
type Isolator struct {
	cfg   IsolatorConfig
	mu    sync.Mutex
	names map[string]*entry
}

type entry struct {
	state      State
	failures   int // consecutive
	isolations int // in a row, for the backoff
	total      uint64
	failed     uint64 // every failure reported
	refused    uint64 // every call Allow refused
	until      time.Time
	lastErr    error
}

// Status is one name's record.
type Status struct {
	// Name is what was reported on.
	Name string
	// State is healthy, isolated or probing.
	State State
	// ConsecutiveFailures counts failures since the last success.
	ConsecutiveFailures int
	// Isolations counts isolations in a row (reset by a success);
	// TotalIsolations counts all.
	Isolations int
	// TotalIsolations counts every isolation of this name.
	TotalIsolations uint64
	// TotalFailures counts every failure reported: the calls that reached
	// the part and failed. While the name is isolated it grows by one per
	// probe only, which is what "not retried hot" means.
	TotalFailures uint64
	// Refused counts the calls Allow refused (they never reached the part).
	Refused uint64
	// Until is when an isolated name gets its probe.
	Until time.Time `json:",omitempty"`
	// LastError is the last failure's message.
	LastError string `json:",omitempty"`
}

// NewIsolator returns an Isolator with cfg's zero fields defaulted.
func NewIsolator(cfg IsolatorConfig) *Isolator {
	if cfg.Threshold <= 0 {
		cfg.Threshold = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 5 * time.Second
	}
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = max(cfg.Backoff, 5*time.Minute)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Isolator{cfg: cfg, names: map[string]*entry{}}
}

func (i *Isolator) get(name string) *entry {
	e := i.names[name]
	if e == nil {
		e = &entry{state: Healthy}
		i.names[name] = e
	}
	return e
}

// Allow reports whether a call to name may go ahead. An isolated name whose
// backoff has ended lets exactly one probe through.
func (i *Isolator) Allow(name string) bool {
	i.mu.Lock()
	e := i.get(name)
	switch e.state {
	case Healthy:
		i.mu.Unlock()
		return true
	case Isolated:
		if i.cfg.Now().Before(e.until) {
			e.refused++
			i.mu.Unlock()
			return false
		}
		e.state = Probing
		err := e.lastErr
		i.mu.Unlock()
		i.changed(name, Isolated, Probing, err)
		return true
	}
	e.refused++
	i.mu.Unlock()
	return false // a probe is already in flight
}

// Report records the outcome of a call to name: nil is a success.
func (i *Isolator) Report(name string, err error) {
	i.mu.Lock()
	e := i.get(name)
	from := e.state
	if err == nil {
		e.failures, e.isolations, e.state = 0, 0, Healthy
	} else {
		e.failures++
		e.failed++
		e.lastErr = err
		if e.state == Probing || (e.state == Healthy && e.failures >= i.cfg.Threshold) {
			e.isolations++
			e.total++
			backoff := i.cfg.Backoff
			for k := 1; k < e.isolations && backoff < i.cfg.MaxBackoff; k++ {
				backoff *= 2
			}
			e.state, e.until = Isolated, i.cfg.Now().Add(min(backoff, i.cfg.MaxBackoff))
		}
	}
	to, lastErr := e.state, e.lastErr
	i.mu.Unlock()
	if from != to {
		i.changed(name, from, to, lastErr)
	}
}

func (i *Isolator) changed(name string, from, to State, err error) {
	if i.cfg.OnChange != nil {
		i.cfg.OnChange(name, from, to, err)
	}
}

// Statuses returns every name's record, sorted by name.
func (i *Isolator) Statuses() []Status {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]Status, 0, len(i.names))
	for n, e := range i.names {
		s := Status{Name: n, State: e.state, ConsecutiveFailures: e.failures,
			Isolations: e.isolations, TotalIsolations: e.total, TotalFailures: e.failed, Refused: e.refused}
		if e.state != Healthy {
			s.Until = e.until
		}
		if e.lastErr != nil {
			s.LastError = e.lastErr.Error()
		}
		out = append(out, s)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}
