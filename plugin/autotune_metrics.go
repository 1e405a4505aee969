package plugin

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	tWindows = prometheus.NewDesc("highload_autotune_windows_total",
		"Observation windows measured (skipped ones included).", nil, nil)
	tSkipped = prometheus.NewDesc("highload_autotune_skipped_windows_total",
		"Windows without signal (no traffic).", nil, nil)
	tChanges = prometheus.NewDesc("highload_autotune_changes_total",
		"Knob changes by outcome.", []string{"outcome"}, nil)
	tFrozen = prometheus.NewDesc("highload_autotune_frozen",
		"1 while an operator has frozen the tuner.", nil, nil)
	tObjective = prometheus.NewDesc("highload_autotune_objective",
		"The last measured objective.", nil, nil)
	tKnobs = prometheus.NewDesc("highload_autotune_knobs",
		"Registered knobs.", nil, nil)
	tKnob = prometheus.NewDesc("highload_autotune_knob_value",
		"Current value of each knob.", []string{"knob", "unit"}, nil)
)

// tuneCollector reports the running tuner at scrape time.
type tuneCollector struct{}

// Describe sends the descriptors.
func (tuneCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tWindows, tSkipped, tChanges, tFrozen, tObjective, tKnobs, tKnob} {
		ch <- d
	}
}

// Collect reads the tuner's status; nothing while no tuner runs.
func (tuneCollector) Collect(ch chan<- prometheus.Metric) {
	t := currentTuner()
	if t == nil {
		return
	}
	s := t.Status()
	c := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	c(tWindows, s.Windows)
	c(tSkipped, s.Skipped)
	c(tChanges, s.Trials, "tried")
	c(tChanges, s.Kept, "kept")
	c(tChanges, s.RolledBack, "rolled_back")
	c(tChanges, s.Reverts, "reverted")
	frozen := 0.0
	if s.Frozen {
		frozen = 1
	}
	g(tFrozen, frozen)
	if s.Objective != nil {
		g(tObjective, *s.Objective)
	}
	g(tKnobs, float64(len(s.Knobs)))
	for _, k := range s.Knobs {
		if k.Error == "" {
			g(tKnob, k.Value, k.Name, k.Unit)
		}
	}
}
