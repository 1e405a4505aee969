package exchange

import (
	"errors"
	"fmt"
	"time"
)

// Class is a request class; lower values are served first.
type Class int

// Request classes, highest priority first.
const (
	// ClassPriority holds peers we are peered or clustered with.
	ClassPriority Class = iota
	// ClassGood holds peers with a good exchange record.
	ClassGood
	// ClassUnknown holds everyone else.
	ClassUnknown
	// NumClasses is the number of classes.
	NumClasses
)

// String names the class as the stats and metrics show it.
func (c Class) String() string {
	switch c {
	case ClassPriority:
		return "priority"
	case ClassGood:
		return "good"
	case ClassUnknown:
		return "unknown"
	}
	return "invalid"
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("exchange: invalid config")

// Config is the policy's starting configuration. The per-class arrays are
// indexed by [Class]. Limits that are 0 mean "no limit".
type Config struct {
	// MinShare is each class's weight, in percent: while it has work
	// queued a class gets at least this share of the entries the server
	// sends, and spare service is split in proportion. Each must be at
	// least 1 and the sum at most 100.
	MinShare [NumClasses]int
	// PeerRate is the want entries per second one peer of the class may
	// send before its breaker trips (0: no limit), at no load.
	PeerRate [NumClasses]int
	// PeerPending is the entries one peer of the class may have queued
	// before new wants are denied (0: no limit), at no load.
	PeerPending [NumClasses]int
	// GlobalPending is the number of queued entries (all peers) that counts
	// as full load.
	GlobalPending int
	// Breaker times the per-peer and global breakers.
	Breaker BreakerConfig
	// GarbageStrikes is how many malformed or oversized messages within
	// Breaker.MaxCooldown trip a peer's breaker.
	GarbageStrikes int
	// MaxEntries is the most wantlist entries one message may carry before
	// it counts as oversized.
	MaxEntries int
	// GoodMinBlocks is how many blocks a peer must have fetched from us
	// (or given us) to enter the good class.
	GoodMinBlocks int
	// Tick is how often load, limits and global breakers are updated.
	Tick time.Duration
	// Hold is the longest one wantlist of a non-priority peer waits before
	// boxo handles it when the peer's breaker is open or the peer is at its
	// live pending limit (0: no hold). The wait is back-pressure on that
	// peer's stream: its flood is not parsed, looked up and answered at the
	// rate it is sent.
	Hold time.Duration
}

// DefaultConfig returns the defaults: priority peers unlimited, good peers
// 20,000 entries/s and 8,192 pending, unknown peers 5,000 entries/s and
// 2,048 pending; minimum shares 10% for good and unknown.
func DefaultConfig() Config {
	return Config{
		MinShare:       [NumClasses]int{ClassPriority: 80, ClassGood: 10, ClassUnknown: 10},
		PeerRate:       [NumClasses]int{ClassPriority: 0, ClassGood: 20000, ClassUnknown: 5000},
		PeerPending:    [NumClasses]int{ClassPriority: 0, ClassGood: 8192, ClassUnknown: 2048},
		GlobalPending:  65536,
		Breaker:        BreakerConfig{Cooldown: 5 * time.Second, MaxCooldown: 60 * time.Second, Ramp: time.Second, StartSlots: admitSlots / 8},
		GarbageStrikes: 3,
		MaxEntries:     16384,
		GoodMinBlocks:  16,
		Tick:           200 * time.Millisecond,
		Hold:           time.Second,
	}
}

// Validate reports the first bad field, by name.
func (c *Config) Validate() error {
	sum := 0
	for cl := Class(0); cl < NumClasses; cl++ {
		if c.MinShare[cl] < 1 || c.MinShare[cl] > 100 {
			return fmt.Errorf("%w: MinShare[%s] = %d, want 1 to 100", ErrConfig, cl, c.MinShare[cl])
		}
		sum += c.MinShare[cl]
		if c.PeerRate[cl] < 0 {
			return fmt.Errorf("%w: PeerRate[%s] = %d is negative", ErrConfig, cl, c.PeerRate[cl])
		}
		if c.PeerPending[cl] < 0 {
			return fmt.Errorf("%w: PeerPending[%s] = %d is negative", ErrConfig, cl, c.PeerPending[cl])
		}
	}
	if sum > 100 {
		return fmt.Errorf("%w: MinShare adds up to %d%%, more than 100", ErrConfig, sum)
	}
	switch {
	case c.GlobalPending <= 0:
		return fmt.Errorf("%w: GlobalPending = %d, want > 0", ErrConfig, c.GlobalPending)
	case c.Breaker.Cooldown <= 0:
		return fmt.Errorf("%w: Breaker.Cooldown = %v, want > 0", ErrConfig, c.Breaker.Cooldown)
	case c.Breaker.MaxCooldown < c.Breaker.Cooldown:
		return fmt.Errorf("%w: Breaker.MaxCooldown %v is below Cooldown %v", ErrConfig, c.Breaker.MaxCooldown, c.Breaker.Cooldown)
	case c.Breaker.Ramp <= 0:
		return fmt.Errorf("%w: Breaker.Ramp = %v, want > 0", ErrConfig, c.Breaker.Ramp)
	case c.GarbageStrikes <= 0:
		return fmt.Errorf("%w: GarbageStrikes = %d, want > 0", ErrConfig, c.GarbageStrikes)
	case c.MaxEntries <= 0:
		return fmt.Errorf("%w: MaxEntries = %d, want > 0", ErrConfig, c.MaxEntries)
	case c.GoodMinBlocks <= 0:
		return fmt.Errorf("%w: GoodMinBlocks = %d, want > 0", ErrConfig, c.GoodMinBlocks)
	case c.Tick <= 0:
		return fmt.Errorf("%w: Tick = %v, want > 0", ErrConfig, c.Tick)
	case c.Hold < 0:
		return fmt.Errorf("%w: Hold = %v is negative", ErrConfig, c.Hold)
	}
	return nil
}
