package connmgr

import (
	"fmt"
	"sync"
	"time"
)

// adaptState is the adaptation loop's memory, shown in Stats.
type adaptState struct {
	mu           sync.Mutex
	reason       string
	changed      time.Time
	changes      uint64
	lastConnects uint64
	lastAt       time.Time
	churn        float64 // new connections per second over the last interval
	pressure     int
	limit        int
}

// adaptInput is what one adaptation step looks at.
type adaptInput struct {
	pressure int     // 0 none .. 3 critical
	conns    int     // connections now
	churn    float64 // new connections per second
	limit    int     // rcmgr connection limit, <= 0 for none
}

// watermarks are the live values.
type watermarks struct {
	low, high int
	grace     time.Duration
}

// nextWatermarks is one adaptation step, a pure function of the config, the
// current values and the input. It returns the new values and why they
// changed ("" when they did not).
//
//   - pressure 3: HighWater -3 steps, grace to its minimum;
//   - pressure 2: HighWater -1 step, grace halved (not below its minimum);
//   - pressure 1: hold;
//   - pressure 0: HighWater +1 step while the count is at 90% of it or more
//     (demand); back toward the configured value by one step while the count
//     is under half of it; hold in between (hysteresis, no oscillation).
//     Grace shrinks by a quarter while the churn would put more than half of
//     HighWater inside the grace period, else grows back toward its start.
//
// A step is a tenth of the HighWater bounds' span (at least 1). HighWater is
// then clamped to its bounds and strictly below the rcmgr limit; LowWater
// keeps the configured LowWater/HighWater ratio, below HighWater.
func nextWatermarks(c *Config, cur watermarks, in adaptInput) (watermarks, string) {
	step := max(1, (c.MaxHighWater-c.MinHighWater)/10)
	next := cur
	var why string
	switch {
	case in.pressure >= 3:
		next.high -= 3 * step
		next.grace = c.MinGracePeriod
		why = fmt.Sprintf("critical pressure (level %d): HighWater down 3 steps, grace to minimum", in.pressure)
	case in.pressure == 2:
		next.high -= step
		next.grace = max(c.MinGracePeriod, cur.grace/2)
		why = "high pressure (level 2): HighWater down 1 step, grace halved"
	case in.pressure == 1:
		// elevated: hold everything
	default:
		switch {
		case in.conns*10 >= cur.high*9:
			next.high += step
			why = fmt.Sprintf("no pressure and %d connections at HighWater: up 1 step", in.conns)
		case in.conns*2 < cur.high && cur.high != c.HighWater:
			if cur.high > c.HighWater {
				next.high = max(c.HighWater, cur.high-step)
			} else {
				next.high = min(c.HighWater, cur.high+step)
			}
			why = "no pressure and little demand: back toward the configured HighWater"
		}
		inGrace := in.churn * cur.grace.Seconds()
		switch {
		case inGrace*2 > float64(cur.high):
			next.grace = max(c.MinGracePeriod, cur.grace*3/4)
			if next.grace != cur.grace {
				why = joinWhy(why, fmt.Sprintf("churn %.1f conn/s: grace shortened", in.churn))
			}
		case cur.grace < c.GracePeriod:
			next.grace = min(c.GracePeriod, cur.grace*5/4+time.Second)
			why = joinWhy(why, "churn low: grace back toward the configured value")
		case cur.grace > c.GracePeriod:
			next.grace = c.GracePeriod
			why = joinWhy(why, "grace back to the configured value")
		}
	}
	next.high = min(max(next.high, c.MinHighWater), c.MaxHighWater)
	next.grace = min(max(next.grace, c.MinGracePeriod), c.MaxGracePeriod)
	next, clampWhy := clampLimit(c, next, in.limit)
	if next == cur {
		return cur, ""
	}
	if clampWhy != "" {
		why = joinWhy(why, clampWhy)
	}
	return next, why
}

// clampLimit keeps HighWater strictly below limit (when limit > 0) and
// derives LowWater from HighWater with the configured ratio.
func clampLimit(c *Config, w watermarks, limit int) (watermarks, string) {
	var why string
	if limit > 0 && w.high >= limit {
		w.high = max(1, limit-1)
		why = fmt.Sprintf("clamped below the resource manager's connection limit %d", limit)
	}
	w.low = w.high * c.LowWater / c.HighWater
	if w.low >= w.high {
		w.low = w.high - 1
	}
	w.low = max(0, w.low)
	return w, why
}

func joinWhy(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func (m *Manager) current() watermarks {
	return watermarks{low: m.LowWater(), high: m.HighWater(), grace: m.GracePeriod()}
}

func (m *Manager) store(w watermarks, why string) {
	m.highWater.Store(int64(w.high))
	m.lowWater.Store(int64(w.low))
	m.grace.Store(int64(w.grace))
	m.adapt.mu.Lock()
	m.adapt.reason = why
	m.adapt.changed = m.now()
	m.adapt.changes++
	m.adapt.mu.Unlock()
	log.Infow("watermarks changed", "low", w.low, "high", w.high, "grace", w.grace, "reason", why)
}

// clampToLimit applies the rcmgr clamp to the current values.
func (m *Manager) clampToLimit(why string) {
	limit := m.limit()
	cur := m.current()
	w, clampWhy := clampLimit(&m.cfg, cur, limit)
	if w != cur {
		m.store(w, joinWhy(why, clampWhy))
	}
}

func (m *Manager) limit() int {
	if m.cfg.Limit == nil {
		return 0
	}
	return m.cfg.Limit()
}

func (m *Manager) pressure() int {
	if m.cfg.Pressure == nil {
		return 0
	}
	return m.cfg.Pressure()
}

func (m *Manager) adaptLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.AdaptInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.adaptOnce()
		}
	}
}

// adaptOnce measures the load and applies one adaptation step.
func (m *Manager) adaptOnce() {
	now := m.now()
	connects := m.connects.Load()
	in := adaptInput{pressure: m.pressure(), conns: m.ConnCount(), limit: m.limit()}
	m.adapt.mu.Lock()
	if !m.adapt.lastAt.IsZero() {
		if dt := now.Sub(m.adapt.lastAt).Seconds(); dt > 0 {
			m.adapt.churn = float64(connects-m.adapt.lastConnects) / dt
		}
	}
	m.adapt.lastConnects, m.adapt.lastAt = connects, now
	in.churn = m.adapt.churn
	m.adapt.pressure, m.adapt.limit = in.pressure, in.limit
	m.adapt.mu.Unlock()

	next, why := nextWatermarks(&m.cfg, m.current(), in)
	if why != "" {
		m.store(next, why)
		if in.conns > next.high {
			select {
			case m.wake <- struct{}{}:
			default:
			}
		}
	}
}
