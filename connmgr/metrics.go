package connmgr

import "github.com/prometheus/client_golang/prometheus"

var (
	descWater = prometheus.NewDesc("highload_connmgr_watermark_connections",
		"Live connection watermarks of the adaptive connection manager.", []string{"mark"}, nil)
	descGrace = prometheus.NewDesc("highload_connmgr_grace_period_seconds",
		"Live grace period of new connections.", nil, nil)
	descLimit = prometheus.NewDesc("highload_connmgr_rcmgr_limit_connections",
		"Resource manager connection limit the watermarks are clamped below (0: none).", nil, nil)
	descConns = prometheus.NewDesc("highload_connmgr_connections",
		"Connections tracked by the connection manager.", nil, nil)
	descPeers = prometheus.NewDesc("highload_connmgr_peers",
		"Connected peers tracked by the connection manager.", nil, nil)
	descProtected = prometheus.NewDesc("highload_connmgr_protected_peers",
		"Protected peers.", nil, nil)
	descTrimRounds = prometheus.NewDesc("highload_connmgr_trim_rounds_total",
		"Trim rounds that closed connections.", nil, nil)
	descTrimmed = prometheus.NewDesc("highload_connmgr_trimmed_connections_total",
		"Connections closed by trimming.", nil, nil)
	descChanges = prometheus.NewDesc("highload_connmgr_watermark_changes_total",
		"Times the adaptation changed the watermarks or grace period.", nil, nil)
	descChurn = prometheus.NewDesc("highload_connmgr_churn_connections_per_second",
		"New connections per second over the last adaptation interval.", nil, nil)
	descPressure = prometheus.NewDesc("highload_connmgr_pressure_level",
		"Pressure level last seen (0 none .. 3 critical).", nil, nil)
	descPool = prometheus.NewDesc("highload_connmgr_pool_peers",
		"Persistent pool peers by connection state.", []string{"state"}, nil)
)

// Collector exports the manager's Stats as highload_connmgr_* metrics.
type Collector struct {
	// M is the manager reported; it is read at scrape time.
	M *Manager
}

// Describe sends the descriptors.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWater, descGrace, descLimit, descConns, descPeers, descProtected,
		descTrimRounds, descTrimmed, descChanges, descChurn, descPressure, descPool} {
		ch <- d
	}
}

// Collect reads the manager's counters (cheap: no per-peer scoring).
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	m := c.M
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descWater, float64(m.LowWater()), "low")
	gauge(descWater, float64(m.HighWater()), "high")
	gauge(descGrace, m.GracePeriod().Seconds())
	m.adapt.mu.Lock()
	limit, churn, pressure, changes := m.adapt.limit, m.adapt.churn, m.adapt.pressure, m.adapt.changes
	m.adapt.mu.Unlock()
	gauge(descLimit, float64(limit))
	gauge(descChurn, churn)
	gauge(descPressure, float64(pressure))
	counter(descChanges, changes)
	m.mu.Lock()
	conns, peers := m.conns, 0
	for _, pi := range m.peers {
		if len(pi.conns) > 0 {
			peers++
		}
	}
	m.mu.Unlock()
	gauge(descConns, float64(conns))
	gauge(descPeers, float64(peers))
	m.plk.RLock()
	gauge(descProtected, float64(len(m.protected)))
	m.plk.RUnlock()
	counter(descTrimRounds, m.trimRounds.Load())
	counter(descTrimmed, m.trimmedConns.Load())
	if p := m.pool.Load(); p != nil {
		var up, down int
		for _, s := range p.State() {
			if s.Connected {
				up++
			} else {
				down++
			}
		}
		gauge(descPool, float64(up), "connected")
		gauge(descPool, float64(down), "disconnected")
	}
}
