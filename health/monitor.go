package health

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Snapshot is the monitor's view after one sample: the raw readings, the
// ratios, forecasts and warnings drawn from them, and the level.
type Snapshot struct {
	Sample
	// Level is the pressure level; LevelSince is when it was entered.
	Level      Level
	LevelSince time.Time
	// Pressure is the highest ratio in Ratios other than the disks', and
	// Driver the resource it belongs to. PressureKnown is false when no ratio could be computed;
	// the level then stays where it was.
	Pressure      float64
	PressureKnown bool
	Driver        string `json:",omitempty"`
	// Ratios are used/limit per limited resource: "memory" (RSS against
	// the budget), "cgroup_memory", "system_memory", "fds", and
	// "disk:<path>".
	Ratios map[string]float64
	// MemoryBudget is the configured RSS budget in bytes; 0 is none.
	MemoryBudget uint64
	// Forecasts are the trends of the limited resources.
	Forecasts []Forecast
	// Warnings are in force now.
	Warnings []Warning
	// Samples counts the samples taken, LevelChanges the level changes.
	Samples, LevelChanges uint64
	// SampleCost is the wall time the last sample took.
	SampleCost time.Duration
}

// Forecast is the trend of one limited resource.
type Forecast struct {
	// Resource names it ("memory", "fds", "disk:<path>").
	Resource string
	// Used and Limit are the smoothed use and the limit, in the
	// resource's unit (bytes or descriptors).
	Used, Limit float64
	// PerSecond is the smoothed growth per second.
	PerSecond float64
	// TimeToLimit is the forecast time until Used reaches Limit; valid
	// only when Exhausts is true.
	TimeToLimit time.Duration
	// Exhausts is true when the trend reaches the limit at all.
	Exhausts bool
	// Span is how long the trend has been observed. A forecast warns
	// only once Span reaches the warm-up (1m by default), so a daemon
	// that is still starting up and growing does not raise an alarm.
	Span time.Duration
}

// warns reports whether f is an exhaustion within horizon on a trend
// observed for at least warmup.
func (f Forecast) warns(horizon, warmup time.Duration) bool {
	return horizon > 0 && f.Exhausts && f.TimeToLimit <= horizon && f.Span >= warmup
}

// Warning is a limit that is near, or forecast to be reached.
type Warning struct {
	// Resource names the resource.
	Resource string
	// Message says what, in plain words.
	Message string
}

// Monitor samples resources on a loop and maintains the pressure level.
// Its methods are safe for concurrent use.
type Monitor struct {
	src Source
	cfg config

	level atomic.Int32
	snap  atomic.Pointer[Snapshot]

	// loop-only state
	hyst    hysteresis
	trends  map[string]*Holt
	warned  map[string]bool
	samples uint64
	changes uint64

	// notifyMu orders deliveries: a subscriber's first call (from
	// Subscribe) and the loop's notifications never interleave, so no
	// subscriber sees a stale level after a newer one.
	notifyMu sync.Mutex
	subMu    sync.Mutex
	subs     map[int]func(Level)
	nextID   int

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

var _ Leveler = (*Monitor)(nil)

// New returns a Monitor over src and starts its loop. The first sample is
// taken before New returns, so Snapshot and Level are meaningful at once;
// then one sample per interval. Close stops it.
func New(src Source, opts ...Option) (*Monitor, error) {
	m, err := newMonitor(src, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.step(ctx)
	go m.loop(ctx)
	return m, nil
}

// newMonitor builds a monitor without starting its loop (tests call step).
func newMonitor(src Source, opts ...Option) (*Monitor, error) {
	if src == nil {
		return nil, fmt.Errorf("health: nil Source")
	}
	cfg := config{
		interval:   5 * time.Second,
		thresholds: DefaultThresholds,
		horizon:    30 * time.Minute,
		warmup:     time.Minute,
		alpha:      0.5,
		beta:       0.2,
		now:        time.Now,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	m := &Monitor{
		src:    src,
		cfg:    cfg,
		trends: map[string]*Holt{},
		warned: map[string]bool{},
		subs:   map[int]func(Level){},
		done:   make(chan struct{}),
	}
	m.hyst = hysteresis{t: cfg.thresholds, since: cfg.now()}
	m.snap.Store(&Snapshot{Level: Normal, LevelSince: m.hyst.since, MemoryBudget: cfg.budget})
	return m, nil
}

func (m *Monitor) loop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.step(ctx)
		}
	}
}

// Close stops the loop and waits for it. It is safe to call twice.
func (m *Monitor) Close() error {
	m.closeOnce.Do(func() {
		if m.cancel != nil {
			m.cancel()
			<-m.done
		}
	})
	return nil
}

// Level returns the current pressure level without locking.
func (m *Monitor) Level() Level { return Level(m.level.Load()) }

// Snapshot returns the latest snapshot. Before the first sample it holds
// only the level.
func (m *Monitor) Snapshot() Snapshot { return *m.snap.Load() }

// Interval returns the time between samples.
func (m *Monitor) Interval() time.Duration { return m.cfg.interval }

// Subscribe calls f with the current level now and then with every new
// level, in order, from the monitor's loop; f must not block or call
// Subscribe. The returned function cancels the subscription.
func (m *Monitor) Subscribe(f func(Level)) (cancel func()) {
	m.notifyMu.Lock()
	defer m.notifyMu.Unlock()
	m.subMu.Lock()
	id := m.nextID
	m.nextID++
	m.subs[id] = f
	m.subMu.Unlock()
	f(m.Level())
	return func() {
		m.subMu.Lock()
		delete(m.subs, id)
		m.subMu.Unlock()
	}
}

func (m *Monitor) notify(l Level) {
	m.notifyMu.Lock()
	defer m.notifyMu.Unlock()
	m.subMu.Lock()
	fs := make([]func(Level), 0, len(m.subs))
	for _, f := range m.subs {
		fs = append(fs, f)
	}
	m.subMu.Unlock()
	for _, f := range fs {
		f(l)
	}
}

// step takes one sample and updates everything derived from it.
func (m *Monitor) step(ctx context.Context) {
	start := time.Now()
	s := m.src.Sample(ctx)
	cost := time.Since(start)
	now := m.cfg.now()
	if s.Time.IsZero() {
		s.Time = now
	}
	m.samples++
	snap := m.derive(s, now)
	snap.SampleCost = cost
	snap.Samples = m.samples

	floor := Normal
	for _, f := range snap.Forecasts {
		if f.warns(m.cfg.horizon, m.cfg.warmup) && !strings.HasPrefix(f.Resource, ReadDisk+":") {
			floor = Elevated
		}
	}
	changed := false
	if snap.PressureKnown || floor > Normal {
		ratio := snap.Pressure
		if !snap.PressureKnown {
			ratio = 0
		}
		_, changed = m.hyst.step(ratio, floor, now)
	}
	if changed {
		m.changes++
	}
	snap.Level, snap.LevelSince, snap.LevelChanges = m.hyst.level, m.hyst.since, m.changes

	// Announce warnings once per appearance.
	seen := map[string]bool{}
	for _, w := range snap.Warnings {
		seen[w.Resource] = true
		if !m.warned[w.Resource] && m.cfg.onWarning != nil {
			m.cfg.onWarning(w)
		}
	}
	m.warned = seen

	m.snap.Store(&snap)
	m.level.Store(int32(snap.Level))
	if changed {
		m.notify(snap.Level)
	}
	if m.cfg.onSample != nil {
		m.cfg.onSample(snap)
	}
}

// derive computes ratios, forecasts and warnings for s.
func (m *Monitor) derive(s Sample, now time.Time) Snapshot {
	snap := Snapshot{Sample: s, Ratios: map[string]float64{}, MemoryBudget: m.cfg.budget}
	_, rssUnknown := s.Unknown[ReadRSS]
	_, sysUnknown := s.Unknown[ReadSystemMem]

	// Memory: RSS against the tightest of the budget, the cgroup limit and
	// what the host could still give (RSS + available).
	if !rssUnknown {
		limit := uint64(0)
		if m.cfg.budget > 0 {
			limit = m.cfg.budget
			snap.Ratios[ResourceMemory] = float64(s.RSS) / float64(m.cfg.budget)
		}
		if s.CgroupLimit > 0 && (limit == 0 || s.CgroupLimit < limit) {
			limit = s.CgroupLimit
		}
		if !sysUnknown && s.SystemTotal > 0 {
			if room := s.RSS + s.SystemAvailable; limit == 0 || room < limit {
				limit = room
			}
		}
		if limit > 0 {
			m.trend(&snap, ResourceMemory, now, float64(s.RSS), float64(limit))
		}
	}
	if s.CgroupLimit > 0 {
		snap.Ratios[ReadCgroup] = float64(s.CgroupUsage) / float64(s.CgroupLimit)
	}
	if !sysUnknown && s.SystemTotal > 0 {
		snap.Ratios[ReadSystemMem] = 1 - float64(s.SystemAvailable)/float64(s.SystemTotal)
	}
	_, fdUnknown := s.Unknown[ReadFDs]
	if !fdUnknown && s.FDLimit > 0 {
		snap.Ratios[ResourceFDs] = float64(s.FDs) / float64(s.FDLimit)
		m.trend(&snap, ResourceFDs, now, float64(s.FDs), float64(s.FDLimit))
	}
	for _, d := range s.Disks {
		if d.Total == 0 {
			continue
		}
		name := ReadDisk + ":" + d.Path
		used := float64(d.Total - min(d.Free, d.Total))
		snap.Ratios[name] = used / float64(d.Total)
		m.trend(&snap, name, now, used, float64(d.Total))
	}

	names := make([]string, 0, len(snap.Ratios))
	for n := range snap.Ratios {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := snap.Ratios[n]
		// Disks warn and forecast but do not drive the level: shedding
		// requests or shrinking caches does not free disk space, and a
		// large volume at 85% is no reason to refuse work.
		if !strings.HasPrefix(n, ReadDisk+":") && (!snap.PressureKnown || r > snap.Pressure) {
			snap.Pressure, snap.Driver, snap.PressureKnown = r, n, true
		}
		if r >= m.cfg.thresholds.ElevatedEnter {
			snap.Warnings = append(snap.Warnings, Warning{Resource: n,
				Message: fmt.Sprintf("%s at %.0f%% of its limit", n, 100*r)})
		}
	}
	for _, f := range snap.Forecasts {
		if f.warns(m.cfg.horizon, m.cfg.warmup) && f.TimeToLimit > 0 {
			snap.Warnings = append(snap.Warnings, Warning{Resource: f.Resource + ":forecast",
				Message: fmt.Sprintf("%s forecast to reach its limit in %s", f.Resource, f.TimeToLimit.Round(time.Second))})
		}
	}
	return snap
}

// trend feeds the named series and appends its forecast.
func (m *Monitor) trend(snap *Snapshot, name string, now time.Time, used, limit float64) {
	h := m.trends[name]
	if h == nil {
		h = NewHolt(m.cfg.alpha, m.cfg.beta)
		m.trends[name] = h
	}
	h.Observe(now, used)
	f := Forecast{Resource: name, Used: h.Level(), Limit: limit, PerSecond: h.Slope(), Span: h.Span()}
	f.TimeToLimit, f.Exhausts = h.TimeTo(limit)
	snap.Forecasts = append(snap.Forecasts, f)
}
