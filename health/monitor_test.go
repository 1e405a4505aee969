package health

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// rssSource reports a settable RSS and nothing else.
type rssSource struct{ rss atomic.Uint64 }

func (s *rssSource) Sample(context.Context) Sample {
	return Sample{RSS: s.rss.Load(), Unknown: map[string]string{ReadSystemMem: "test"}}
}

func TestMonitorLevelsAndRecovery(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	src := &rssSource{}
	m, err := newMonitor(src, WithMemoryBudget(1000), WithClock(clk.Now), WithHorizon(0))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []Level
	cancel := m.Subscribe(func(l Level) { mu.Lock(); seen = append(seen, l); mu.Unlock() })
	defer cancel()
	ctx := context.Background()
	for _, s := range []struct {
		rss  uint64
		wait time.Duration
		want Level
	}{
		{500, time.Second, Normal},
		{850, time.Second, Elevated},
		{990, time.Second, Critical},
		{100, time.Second, Critical}, // dwell
		{100, 10 * time.Second, Normal},
	} {
		clk.Add(s.wait)
		src.rss.Store(s.rss)
		m.step(ctx)
		if m.Level() != s.want {
			t.Fatalf("rss %d: level %s, want %s (snapshot %+v)", s.rss, m.Level(), s.want, m.Snapshot())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []Level{Normal, Elevated, Critical, Normal}
	if len(seen) != len(want) {
		t.Fatalf("subscriber saw %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("subscriber saw %v, want %v", seen, want)
		}
	}
	snap := m.Snapshot()
	if snap.LevelChanges != 3 || snap.Driver != ResourceMemory || snap.Samples != 5 {
		t.Fatalf("snapshot %+v", snap)
	}
}

func TestMonitorForecastWarnsAndHoldsElevated(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	src := &rssSource{}
	var warned []Warning
	m, err := newMonitor(src, WithMemoryBudget(1<<30), WithClock(clk.Now), WithHorizon(time.Hour),
		WithOnWarning(func(w Warning) { warned = append(warned, w) }))
	if err != nil {
		t.Fatal(err)
	}
	// 100 MiB growing 1 MiB/s: 1 GiB reached in about 15 minutes, well
	// inside the horizon while the ratio is still low. Within the first
	// minute (the warm-up) it must not warn yet.
	for i := 0; i < 16; i++ {
		src.rss.Store(uint64(100+i*5) << 20)
		m.step(context.Background())
		clk.Add(5 * time.Second)
		if i == 10 && (m.Level() != Normal || len(warned) != 0) {
			t.Fatalf("warned within the warm-up: level %s, warnings %+v", m.Level(), warned)
		}
	}
	snap := m.Snapshot()
	if snap.Level != Elevated {
		t.Fatalf("level %s with a forecast exhaustion inside the horizon; snapshot %+v", snap.Level, snap)
	}
	if len(warned) != 1 || warned[0].Resource != "memory:forecast" {
		t.Fatalf("warnings announced: %+v (want one memory forecast, announced once)", warned)
	}
	var f *Forecast
	for i := range snap.Forecasts {
		if snap.Forecasts[i].Resource == ResourceMemory {
			f = &snap.Forecasts[i]
		}
	}
	if f == nil || !f.Exhausts || f.TimeToLimit < 8*time.Minute || f.TimeToLimit > 20*time.Minute {
		t.Fatalf("memory forecast %+v, want exhaustion in about 15m", f)
	}
}

func TestMonitorAllUnknown(t *testing.T) {
	src := SourceFunc(func(context.Context) Sample {
		return Sample{Unknown: map[string]string{ReadRSS: "no", ReadSystemMem: "no", ReadFDs: "no"}}
	})
	m, err := New(src, WithInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	deadline := time.Now().Add(5 * time.Second)
	for m.Snapshot().Samples < 3 {
		if time.Now().After(deadline) {
			t.Fatal("monitor took no samples")
		}
		time.Sleep(5 * time.Millisecond)
	}
	snap := m.Snapshot()
	if snap.PressureKnown || snap.Level != Normal || len(snap.Ratios) != 0 {
		t.Fatalf("all-unknown snapshot %+v", snap)
	}
	m.Close()
	m.Close() // twice is fine
}

func TestSystemSource(t *testing.T) {
	dir := t.TempDir()
	src := NewSystemSource([]string{dir, dir + "/does-not-exist"})
	s1 := src.Sample(context.Background())
	if _, ok := s1.Unknown[ReadProcessCPU]; !ok {
		t.Fatal("first sample claims a CPU rate without an interval")
	}
	// Burn until the kernel has charged this process at least 50 ms of CPU
	// (a wall-clock loop gets little CPU on a loaded machine, and /proc
	// counts in 10 ms ticks); bounded, so a broken clock cannot hang it.
	cpu := func() time.Duration { return time.Duration(processCPU()) }
	start, deadline := cpu(), time.Now().Add(30*time.Second)
	for cpu()-start < 50*time.Millisecond && time.Now().Before(deadline) {
	}
	s := src.Sample(context.Background())
	if s.RSS == 0 || s.HeapLive == 0 || s.Goroutines == 0 || s.NumCPU == 0 {
		t.Fatalf("process readings missing: %+v", s)
	}
	if _, ok := s.Unknown[ReadFDs]; !ok && (s.FDs == 0 || s.FDLimit < s.FDs) {
		t.Fatalf("fds %d of %d", s.FDs, s.FDLimit)
	}
	if len(s.Disks) != 1 || s.Disks[0].Path != dir || s.Disks[0].Total == 0 {
		t.Fatalf("disks %+v", s.Disks)
	}
	if _, ok := s.Unknown[ReadDisk+":"+dir+"/does-not-exist"]; !ok {
		t.Fatalf("missing path not reported unknown: %v", s.Unknown)
	}
	if _, ok := s.Unknown[ReadProcessCPU]; !ok && s.ProcessCPU <= 0 {
		t.Fatalf("process CPU %.3f after a busy loop", s.ProcessCPU)
	}
	// The cgroup reading either worked or says why; it never fails the
	// sample.
	if _, ok := s.Unknown[ReadCgroup]; !ok && s.CgroupUsage == 0 {
		t.Fatalf("cgroup reading neither known nor unknown: %+v", s)
	}
}

func TestReadCgroupValue(t *testing.T) {
	dir := t.TempDir()
	for text, want := range map[string]uint64{"max\n": ^uint64(0), "1048576\n": 1 << 20} {
		p := dir + "/v"
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readCgroupValue(p)
		if err != nil || got != want {
			t.Fatalf("%q: %d, %v", text, got, err)
		}
	}
	if err := os.WriteFile(dir+"/v", []byte("lots"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readCgroupValue(dir + "/v"); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := readCgroupValue(dir + "/none"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestOptionsRefuseBadValues(t *testing.T) {
	src := &rssSource{}
	for name, o := range map[string]Option{
		"interval":  WithInterval(time.Microsecond),
		"horizon":   WithHorizon(-time.Second),
		"smoothing": WithSmoothing(0, 0.5),
		"thresholds": WithThresholds(Thresholds{ElevatedEnter: 0.5, ElevatedExit: 0.6,
			CriticalEnter: 0.9, CriticalExit: 0.8}),
	} {
		if _, err := New(src, o); err == nil {
			t.Fatalf("%s: bad option accepted", name)
		}
	}
	if _, err := New(nil); err == nil {
		t.Fatal("nil source accepted")
	}
}

// BenchmarkSystemSample measures one real sample (gopsutil + cgroup files +
// runtime/metrics + one disk path). Its cost divided by the interval is the
// monitor's overhead: see docs/health.md.
func BenchmarkSystemSample(b *testing.B) {
	src := NewSystemSource([]string{b.TempDir()})
	ctx := context.Background()
	src.Sample(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		src.Sample(ctx)
	}
	reportOverhead(b, processCPU()-cpu0)
}

// reportOverhead reports the CPU time per sample and what it is as a share
// of one core at the default 5s interval.
func reportOverhead(b *testing.B, cpuNs int64) {
	if cpuNs <= 0 {
		return
	}
	per := float64(cpuNs) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/op")
	b.ReportMetric(100*per/float64(5*time.Second), "%core@5s")
}

// BenchmarkMonitorStep adds the derivation (ratios, forecasts, hysteresis)
// to a real sample.
func BenchmarkMonitorStep(b *testing.B) {
	m, err := newMonitor(NewSystemSource([]string{b.TempDir()}), WithMemoryBudget(1<<30))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		m.step(ctx)
	}
	reportOverhead(b, processCPU()-cpu0)
}

func TestNewSamplesBeforeReturning(t *testing.T) {
	src := &rssSource{}
	src.rss.Store(900)
	m, err := New(src, WithMemoryBudget(1000), WithInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if s := m.Snapshot(); s.Samples != 1 || m.Level() != Elevated || s.MemoryBudget != 1000 {
		t.Fatalf("right after New: level %s, snapshot %+v", m.Level(), s)
	}
}

func TestSubscribeWhileLevelsChange(t *testing.T) {
	src := &rssSource{}
	var n atomic.Int64
	flip := SourceFunc(func(ctx context.Context) Sample {
		// Alternate between critical and normal every sample.
		if n.Add(1)%2 == 0 {
			src.rss.Store(990)
		} else {
			src.rss.Store(10)
		}
		return src.Sample(ctx)
	})
	m, err := New(flip, WithMemoryBudget(1000), WithInterval(10*time.Millisecond), WithHorizon(0),
		WithThresholds(Thresholds{ElevatedEnter: 0.8, ElevatedExit: 0.7, CriticalEnter: 0.95, CriticalExit: 0.85}))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		var mu sync.Mutex
		var last Level
		cancel := m.Subscribe(func(l Level) { mu.Lock(); last = l; mu.Unlock() })
		time.Sleep(15 * time.Millisecond)
		cancel()
		// After cancel no more calls arrive once the current one ends;
		// what the subscriber saw last must be a level the monitor had.
		mu.Lock()
		if last != Normal && last != Critical {
			t.Fatalf("subscriber saw %s", last)
		}
		mu.Unlock()
	}
	m.Close()
	var mu sync.Mutex
	var last Level = -1
	m.Subscribe(func(l Level) { mu.Lock(); last = l; mu.Unlock() })
	if last != m.Level() {
		t.Fatalf("after Close: subscriber's level %s, monitor's %s", last, m.Level())
	}
}

func TestFullDiskWarnsButDoesNotRaiseLevel(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	free := uint64(100)
	src := SourceFunc(func(context.Context) Sample {
		return Sample{RSS: 10, Disks: []DiskUsage{{Path: "/repo", Total: 10000, Free: free}},
			Unknown: map[string]string{ReadSystemMem: "test"}}
	})
	m, err := newMonitor(src, WithMemoryBudget(1000), WithClock(clk.Now), WithForecastWarmup(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		free -= 10 // filling up: forecast within the horizon too
		m.step(context.Background())
		clk.Add(time.Second)
	}
	s := m.Snapshot()
	if s.Level != Normal || s.Driver != ResourceMemory {
		t.Fatalf("a 99%% full disk moved the level: %+v", s)
	}
	var warned, forecast bool
	for _, w := range s.Warnings {
		warned = warned || w.Resource == "disk:/repo"
		forecast = forecast || w.Resource == "disk:/repo:forecast"
	}
	if !warned || !forecast {
		t.Fatalf("warnings %+v: want the disk's level and forecast warnings", s.Warnings)
	}
}
