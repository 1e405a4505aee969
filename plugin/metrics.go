package plugin

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubo-highload/highload/plugin/hlstate"
)

var (
	infoDesc = prometheus.NewDesc("highload_plugin_info",
		"The highload plugin is loaded; the version label names its release.", []string{"version"}, nil)
	componentDesc = prometheus.NewDesc("highload_plugin_component_status",
		"1 for each component's current status (active, idle, disabled, not built yet).", []string{"component", "status"}, nil)
)

// stateCollector reports hlstate at scrape time.
type stateCollector struct{}

// Describe sends the collector's descriptors.
func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- infoDesc
	ch <- componentDesc
}

// Collect reads the current state.
func (stateCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1, hlstate.Version)
	for _, c := range hlstate.Get().Components {
		ch <- prometheus.MustNewConstMetric(componentDesc, prometheus.GaugeValue, 1, c.Name, c.Status)
	}
}

// registerMetrics registers the collectors on Kubo's registry, which the
// daemon serves at /debug/metrics/prometheus. It runs from the plugin's
// daemon Start hook, so online and --offline daemons both serve them and CLI
// processes never register anything. A second registration (Kubo may build
// more than one node per process) is not an error.
func registerMetrics() error {
	err := prometheus.DefaultRegisterer.Register(stateCollector{})
	var already prometheus.AlreadyRegisteredError
	if err != nil && !errors.As(err, &already) {
		return err
	}
	hlstate.SetComponent("metrics", hlstate.StatusActive, "highload_* at /debug/metrics/prometheus")
	return nil
}
