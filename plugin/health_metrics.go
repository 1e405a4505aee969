package plugin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubo-highload/highload/health"
)

var (
	hLevel = prometheus.NewDesc("highload_health_level",
		"Pressure level: 0 normal, 1 elevated, 2 critical.", nil, nil)
	hPressure = prometheus.NewDesc("highload_health_pressure_ratio",
		"Used/limit of the most loaded resource.", nil, nil)
	hRatio = prometheus.NewDesc("highload_health_usage_ratio",
		"Used/limit per limited resource.", []string{"resource"}, nil)
	hRSS = prometheus.NewDesc("highload_health_rss_bytes",
		"Resident set size of the daemon.", nil, nil)
	hBudget = prometheus.NewDesc("highload_health_memory_budget_bytes",
		"Configured memory budget (0: none).", nil, nil)
	hHeap = prometheus.NewDesc("highload_health_go_heap_live_bytes",
		"Go heap bytes in live and unswept objects.", nil, nil)
	hFDs = prometheus.NewDesc("highload_health_open_fds",
		"Open file descriptors.", nil, nil)
	hFDLimit = prometheus.NewDesc("highload_health_fd_limit",
		"Soft RLIMIT_NOFILE.", nil, nil)
	hCPU = prometheus.NewDesc("highload_health_process_cpu_cores",
		"CPU used by the daemon over the last interval, in cores.", nil, nil)
	hSysCPU = prometheus.NewDesc("highload_health_system_cpu_ratio",
		"Busy fraction of all the host's cores over the last interval.", nil, nil)
	hDiskFree = prometheus.NewDesc("highload_health_disk_free_bytes",
		"Free bytes on the filesystem of each watched path.", []string{"path"}, nil)
	hTTL = prometheus.NewDesc("highload_health_time_to_limit_seconds",
		"Forecast time until a resource reaches its limit (only for rising ones).", []string{"resource"}, nil)
	hWarnings = prometheus.NewDesc("highload_health_warnings",
		"Warnings in force.", nil, nil)
	hUnknown = prometheus.NewDesc("highload_health_unknown_readings",
		"Readings that could not be taken in the last sample.", nil, nil)
	hSamples = prometheus.NewDesc("highload_health_samples_total",
		"Samples taken.", nil, nil)
	hChanges = prometheus.NewDesc("highload_health_level_changes_total",
		"Pressure level changes.", nil, nil)
	hCost = prometheus.NewDesc("highload_health_sample_duration_seconds",
		"Wall time of the last sample.", nil, nil)
)

// healthCollector reports the running monitor's snapshot at scrape time.
type healthCollector struct{}

// Describe sends the descriptors.
func (healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hLevel, hPressure, hRatio, hRSS, hBudget, hHeap, hFDs, hFDLimit,
		hCPU, hSysCPU, hDiskFree, hTTL, hWarnings, hUnknown, hSamples, hChanges, hCost} {
		ch <- d
	}
}

// Collect reads the latest snapshot; nothing while no monitor runs.
func (healthCollector) Collect(ch chan<- prometheus.Metric) {
	m := currentMonitor()
	if m == nil {
		return
	}
	s := m.Snapshot()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(hLevel, float64(s.Level))
	if s.PressureKnown {
		g(hPressure, s.Pressure)
	}
	for r, v := range s.Ratios {
		g(hRatio, v, r)
	}
	known := func(name string) bool { _, bad := s.Unknown[name]; return !bad }
	if known(health.ReadRSS) {
		g(hRSS, float64(s.RSS))
	}
	g(hBudget, float64(s.MemoryBudget))
	if known(health.ReadGoRuntime) {
		g(hHeap, float64(s.HeapLive))
	}
	if known(health.ReadFDs) {
		g(hFDs, float64(s.FDs))
	}
	if known(health.ReadFDLimit) {
		g(hFDLimit, float64(s.FDLimit))
	}
	if known(health.ReadProcessCPU) {
		g(hCPU, s.ProcessCPU)
	}
	if known(health.ReadSystemCPU) {
		g(hSysCPU, s.SystemCPU)
	}
	for _, d := range s.Disks {
		g(hDiskFree, float64(d.Free), d.Path)
	}
	for _, f := range s.Forecasts {
		if f.Exhausts {
			g(hTTL, f.TimeToLimit.Seconds(), f.Resource)
		}
	}
	g(hWarnings, float64(len(s.Warnings)))
	g(hUnknown, float64(len(s.Unknown)))
	ch <- prometheus.MustNewConstMetric(hSamples, prometheus.CounterValue, float64(s.Samples))
	ch <- prometheus.MustNewConstMetric(hChanges, prometheus.CounterValue, float64(s.LevelChanges))
	g(hCost, s.SampleCost.Seconds())
}
