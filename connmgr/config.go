package connmgr

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Config configures a Manager. LowWater, HighWater and GracePeriod are the
// starting values (Kubo's Swarm.ConnMgr); the Min/Max fields bound where the
// adaptation may move them. Zero values get the defaults documented on each
// field.
type Config struct {
	// LowWater is the starting low watermark: trimming stops here.
	LowWater int
	// HighWater is the starting high watermark: trimming starts above it.
	HighWater int
	// GracePeriod is the starting grace period of new connections.
	GracePeriod time.Duration

	// MinHighWater is the lowest HighWater under pressure (default HighWater/2).
	MinHighWater int
	// MaxHighWater is the highest HighWater without pressure (default 2*HighWater).
	MaxHighWater int
	// MinGracePeriod is the shortest grace period under pressure or churn
	// (default GracePeriod/4).
	MinGracePeriod time.Duration
	// MaxGracePeriod is the longest grace period (default GracePeriod).
	MaxGracePeriod time.Duration

	// TrimInterval is how often the background loop checks the count
	// (default 10s, Kubo's Swarm.ConnMgr.SilencePeriod).
	TrimInterval time.Duration
	// MaxTrimPerRound caps the connections closed in one round
	// (default HighWater/10, at least 16).
	MaxTrimPerRound int
	// RoundPause separates trim rounds while the count is above LowWater
	// (default 1s).
	RoundPause time.Duration
	// AdaptInterval is how often the watermarks are reconsidered (default 5s).
	AdaptInterval time.Duration
	// SlowLatency marks a peer slow when its latency EWMA exceeds it
	// (default 1s).
	SlowLatency time.Duration
	// DecayResolution is the tick of decaying tags (default 1m, as libp2p).
	DecayResolution time.Duration

	// Pressure returns the current resource pressure level: 0 none,
	// 1 elevated (hold), 2 high (shrink), 3 critical (shrink faster). Nil
	// means always 0. The plugin feeds it from its health monitor.
	Pressure func() int
	// Limit returns the resource manager's live connection limit; the
	// watermarks stay strictly below it. Nil or a result <= 0 means no limit.
	Limit func() int
	// Latency returns a peer's latency EWMA (a peerstore's LatencyEWMA); nil
	// means unknown. It may also be set later with SetLatencySource.
	Latency func(peer.ID) time.Duration
	// Bandwidth reports per-peer bandwidth (libp2p's BandwidthCounter); nil
	// means unknown.
	Bandwidth metrics.Reporter

	// Now returns the current time (tests); nil means time.Now.
	Now func() time.Time
}

// withDefaults fills the zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.HighWater <= 0 {
		return c, fmt.Errorf("connmgr: HighWater must be positive, got %d", c.HighWater)
	}
	if c.LowWater < 0 || c.LowWater >= c.HighWater {
		return c, fmt.Errorf("connmgr: LowWater (%d) must be at least 0 and below HighWater (%d)", c.LowWater, c.HighWater)
	}
	if c.GracePeriod <= 0 {
		c.GracePeriod = 20 * time.Second
	}
	if c.MinHighWater <= 0 {
		c.MinHighWater = max(c.HighWater/2, c.LowWater+1)
	}
	if c.MaxHighWater <= 0 {
		c.MaxHighWater = 2 * c.HighWater
	}
	if c.MinHighWater > c.HighWater || c.MaxHighWater < c.HighWater {
		return c, fmt.Errorf("connmgr: HighWater (%d) must lie within MinHighWater (%d) and MaxHighWater (%d)",
			c.HighWater, c.MinHighWater, c.MaxHighWater)
	}
	if c.MinGracePeriod <= 0 {
		c.MinGracePeriod = c.GracePeriod / 4
	}
	if c.MaxGracePeriod <= 0 {
		c.MaxGracePeriod = c.GracePeriod
	}
	if c.MinGracePeriod > c.GracePeriod || c.MaxGracePeriod < c.GracePeriod {
		return c, fmt.Errorf("connmgr: GracePeriod (%s) must lie within MinGracePeriod (%s) and MaxGracePeriod (%s)",
			c.GracePeriod, c.MinGracePeriod, c.MaxGracePeriod)
	}
	if c.TrimInterval <= 0 {
		c.TrimInterval = 10 * time.Second
	}
	if c.MaxTrimPerRound <= 0 {
		c.MaxTrimPerRound = max(c.HighWater/10, 16)
	}
	if c.RoundPause <= 0 {
		c.RoundPause = time.Second
	}
	if c.AdaptInterval <= 0 {
		c.AdaptInterval = 5 * time.Second
	}
	if c.SlowLatency <= 0 {
		c.SlowLatency = time.Second
	}
	if c.DecayResolution <= 0 {
		c.DecayResolution = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
