package plugin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubo-highload/highload/autoscale"
)

var (
	isoState = prometheus.NewDesc("highload_health_isolation_state",
		"State of each part reported to the isolator: 0 healthy, 1 isolated, 2 probing.", []string{"name"}, nil)
	isoFailures = prometheus.NewDesc("highload_health_isolation_failures_total",
		"Calls that reached the part and failed (while isolated: one per probe).", []string{"name"}, nil)
	isoRefused = prometheus.NewDesc("highload_health_isolation_refused_total",
		"Calls refused without reaching the part because it was isolated.", []string{"name"}, nil)
	isoIsolations = prometheus.NewDesc("highload_health_isolations_total",
		"Times the part was isolated.", []string{"name"}, nil)
)

// isolationCollector reports the process-wide isolator at scrape time.
type isolationCollector struct{}

// Describe sends the descriptors.
func (isolationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{isoState, isoFailures, isoRefused, isoIsolations} {
		ch <- d
	}
}

// Collect reads every reported name's status.
func (isolationCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range isolation().Statuses() {
		state := 0.0
		switch s.State {
		case autoscale.Isolated:
			state = 1
		case autoscale.Probing:
			state = 2
		}
		ch <- prometheus.MustNewConstMetric(isoState, prometheus.GaugeValue, state, s.Name)
		ch <- prometheus.MustNewConstMetric(isoFailures, prometheus.CounterValue, float64(s.TotalFailures), s.Name)
		ch <- prometheus.MustNewConstMetric(isoRefused, prometheus.CounterValue, float64(s.Refused), s.Name)
		ch <- prometheus.MustNewConstMetric(isoIsolations, prometheus.CounterValue, float64(s.TotalIsolations), s.Name)
	}
}
