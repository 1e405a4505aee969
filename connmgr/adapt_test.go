package connmgr

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

func adaptCfg(t *testing.T) Config {
	t.Helper()
	c, err := Config{LowWater: 300, HighWater: 900, GracePeriod: 20 * time.Second,
		MinHighWater: 500, MaxHighWater: 1500, MinGracePeriod: 5 * time.Second}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWatermarksFollowPressure(t *testing.T) {
	c := adaptCfg(t)
	w := watermarks{low: 300, high: 900, grace: 20 * time.Second}
	// High pressure: one step (a tenth of 1000) down per interval, grace
	// halved, until the minimum; then it stays.
	var highs []int
	for range 8 {
		var why string
		w, why = nextWatermarks(&c, w, adaptInput{pressure: 2, conns: 800})
		highs = append(highs, w.high)
		if w.high > 500 && !strings.Contains(why, "high pressure") {
			t.Errorf("reason %q does not name the pressure", why)
		}
	}
	want := []int{800, 700, 600, 500, 500, 500, 500, 500}
	for i := range want {
		if highs[i] != want[i] {
			t.Fatalf("HighWater under pressure: %v, want %v", highs, want)
		}
	}
	if w.grace != c.MinGracePeriod || w.low != 500*300/900 {
		t.Errorf("under pressure: grace %s low %d", w.grace, w.low)
	}
	// Elevated: hold.
	if next, why := nextWatermarks(&c, w, adaptInput{pressure: 1, conns: 800}); next != w || why != "" {
		t.Errorf("elevated pressure changed %+v to %+v (%s)", w, next, why)
	}
	// Critical from the start: three steps at once.
	start := watermarks{low: 300, high: 900, grace: 20 * time.Second}
	if next, _ := nextWatermarks(&c, start, adaptInput{pressure: 3}); next.high != 600 || next.grace != c.MinGracePeriod {
		t.Errorf("critical: %+v", next)
	}
	// Pressure gone, demand low: back to the configured values, then stable.
	for range 20 {
		w, _ = nextWatermarks(&c, w, adaptInput{pressure: 0, conns: 100})
	}
	if w.high != 900 || w.low != 300 || w.grace != 20*time.Second {
		t.Errorf("did not return to the configured values: %+v", w)
	}
	// Demand without pressure grows HighWater up to its maximum.
	for range 20 {
		w, _ = nextWatermarks(&c, w, adaptInput{pressure: 0, conns: w.high})
	}
	if w.high != 1500 {
		t.Errorf("HighWater under demand: %d, want MaxHighWater 1500", w.high)
	}
}

func TestWatermarksDoNotOscillate(t *testing.T) {
	c := adaptCfg(t)
	w := watermarks{low: 300, high: 900, grace: 20 * time.Second}
	// A steady count between half and 90% of HighWater: nothing moves.
	for i := range 50 {
		next, why := nextWatermarks(&c, w, adaptInput{conns: 700})
		if next != w {
			t.Fatalf("step %d: steady load moved %+v to %+v (%s)", i, w, next, why)
		}
	}
	// Once grown under demand to 1000, a count that no longer presses on it
	// (700 of 1000) does not shrink it: growth and return need different
	// conditions.
	w, _ = nextWatermarks(&c, w, adaptInput{conns: 850})
	if w.high != 1000 {
		t.Fatalf("grew to %d", w.high)
	}
	for range 10 {
		if next, _ := nextWatermarks(&c, w, adaptInput{conns: 700}); next != w {
			t.Fatalf("oscillation: %+v -> %+v", w, next)
		}
	}
}

func TestChurnShortensGrace(t *testing.T) {
	c := adaptCfg(t)
	w := watermarks{low: 300, high: 900, grace: 20 * time.Second}
	// 100 new connections per second with a 20s grace would shield 2000
	// connections: grace shrinks until churn*grace < HighWater/2.
	for range 20 {
		w, _ = nextWatermarks(&c, w, adaptInput{conns: 700, churn: 100})
	}
	if w.grace != c.MinGracePeriod {
		t.Errorf("grace under churn: %s, want %s", w.grace, c.MinGracePeriod)
	}
	w, why := nextWatermarks(&c, w, adaptInput{conns: 700, churn: 1})
	if w.grace <= c.MinGracePeriod || !strings.Contains(why, "grace back") {
		t.Errorf("grace does not recover after churn: %s (%s)", w.grace, why)
	}
}

func TestClampBelowRcmgrLimit(t *testing.T) {
	limit := 400
	m := newTestManager(t, Config{LowWater: 300, HighWater: 900, MaxHighWater: 2000,
		Limit: func() int { return limit }})
	if m.HighWater() != 399 || m.LowWater() != 399*300/900 {
		t.Fatalf("at start: low %d high %d, want high 399 below limit 400", m.LowWater(), m.HighWater())
	}
	if r := m.Stats().Reason; !strings.Contains(r, "resource manager") {
		t.Errorf("reason %q does not name the clamp", r)
	}
	// Demand does not push it past the limit.
	for range 150 {
		connect(t, m, network.DirInbound)
	}
	for range 5 {
		m.adaptOnce()
		if m.HighWater() >= limit {
			t.Fatalf("HighWater %d reached the limit %d", m.HighWater(), limit)
		}
	}
	// The limit rises live: the demand can now grow HighWater past 400.
	limit = 100000
	for range 10 {
		m.adaptOnce()
	}
	// 150 connections are under half of 399, so it drifts back toward the
	// configured 900 and may not exceed the bounds.
	if m.HighWater() <= 400 || m.HighWater() > 900 {
		t.Errorf("after the limit rose: HighWater %d", m.HighWater())
	}
	// The limit drops live: clamped at once on the next step.
	limit = 50
	m.adaptOnce()
	if m.HighWater() != 49 || m.LowWater() >= 49 {
		t.Errorf("after the limit fell: low %d high %d", m.LowWater(), m.HighWater())
	}
	if err := m.CheckLimit(fixedLimit(100)); err == nil {
		t.Error("CheckLimit accepted a limit below MinHighWater 450")
	}
	if err := m.CheckLimit(fixedLimit(5000)); err != nil {
		t.Errorf("CheckLimit: %v", err)
	}
}

type fixedLimit int

func (l fixedLimit) GetConnLimit() int { return int(l) }

func TestAdaptLoopFeedsOnPressure(t *testing.T) {
	var level atomic.Int64
	m := newTestManager(t, Config{LowWater: 30, HighWater: 90, AdaptInterval: 20 * time.Millisecond,
		Pressure: func() int { return int(level.Load()) }})
	level.Store(3)
	waitFor(t, 5*time.Second, "HighWater to reach its minimum under critical pressure", func() bool {
		return m.HighWater() == 45
	})
	if s := m.Stats(); s.Pressure != 3 || !strings.Contains(s.Reason, "critical") {
		t.Errorf("stats: pressure %d reason %q", s.Pressure, s.Reason)
	}
}
