package plugin

import (
	"errors"

	"github.com/ipfs/kubo/core"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

func init() {
	registerComponent(component{
		name:  "metrics",
		order: 5,
		init: func(_, r *hlconfig.Config) error {
			if r.Metrics.Enabled.WithDefault(true) {
				hlstate.SetComponent("metrics", hlstate.StatusIdle, "registered when the daemon runs")
			} else {
				hlstate.SetComponent("metrics", hlstate.StatusDisabled, "Config.Metrics.Enabled is false")
			}
			return nil
		},
		start: func(_ *core.IpfsNode, _, r *hlconfig.Config) error {
			if !r.Metrics.Enabled.WithDefault(true) {
				return nil
			}
			return registerMetrics()
		},
	})
}

// registerCollector registers c on Kubo's registry (the one served at
// /debug/metrics/prometheus). A second registration of the same collector
// (Kubo may build more than one node per process) is not an error.
func registerCollector(c prometheus.Collector) error {
	err := prometheus.DefaultRegisterer.Register(c)
	var already prometheus.AlreadyRegisteredError
	if err != nil && !errors.As(err, &already) {
		return err
	}
	return nil
}

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
	if err := registerCollector(stateCollector{}); err != nil {
		return err
	}
	hlstate.SetComponent("metrics", hlstate.StatusActive, "highload_* at /debug/metrics/prometheus")
	return nil
}
