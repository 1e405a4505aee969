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
	descTrimmedProtected = prometheus.NewDesc("highload_connmgr_trimmed_protected_connections_total",
		"Trimmed connections whose peer was protected when closed (expected 0).", nil, nil)
	descPoolLosses = prometheus.NewDesc("highload_connmgr_pool_losses_total",
		"Times a pool peer's last connection closed.", nil, nil)
	descPoolReconnects = prometheus.NewDesc("highload_connmgr_pool_reconnects_total",
		"Successful redials of lost pool peers.", nil, nil)
	descStreams = prometheus.NewDesc("highload_connmgr_stream_failures_total",
		"Stream failures seen on muxed (yamux) connections, by kind (reset by either side, or another error).", []string{"kind"}, nil)
	descClusterPeers = prometheus.NewDesc("highload_connmgr_cluster_peers",
		"Kubo nodes taken from the IPFS Cluster /peers answer.", nil, nil)
	descClusterReads = prometheus.NewDesc("highload_connmgr_cluster_refreshes_total",
		"Reads of the IPFS Cluster /peers API by result.", []string{"result"}, nil)
)

// Collector exports the manager's Stats as highload_connmgr_* metrics.
type Collector struct {
	// M is the manager reported; it is read at scrape time.
	M *Manager
}

// Describe sends the descriptors.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWater, descGrace, descLimit, descConns, descPeers, descProtected,
		descTrimRounds, descTrimmed, descChanges, descChurn, descPressure, descPool,
		descTrimmedProtected, descPoolLosses, descPoolReconnects, descClusterPeers, descClusterReads, descStreams} {
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
	counter(descTrimmedProtected, m.trimmedProtected.Load())
	ch <- prometheus.MustNewConstMetric(descStreams, prometheus.CounterValue, float64(m.streamResets.Load()), "reset")
	ch <- prometheus.MustNewConstMetric(descStreams, prometheus.CounterValue, float64(m.streamErrs.Load()), "error")
	if p := m.pool.Load(); p != nil {
		var up, down int
		var losses, reconnects uint64
		for _, s := range p.State() {
			if s.Connected {
				up++
			} else {
				down++
			}
			losses += s.Losses
			reconnects += s.Reconnects
		}
		gauge(descPool, float64(up), "connected")
		gauge(descPool, float64(down), "disconnected")
		counter(descPoolLosses, losses)
		counter(descPoolReconnects, reconnects)
		if cs, ok := p.ClusterStats(); ok {
			gauge(descClusterPeers, float64(cs.Peers))
			ch <- prometheus.MustNewConstMetric(descClusterReads, prometheus.CounterValue, float64(cs.Refreshes-cs.Failures), "ok")
			ch <- prometheus.MustNewConstMetric(descClusterReads, prometheus.CounterValue, float64(cs.Failures), "error")
		}
	}
}
