package plugin

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestIsolationMetrics(t *testing.T) {
	name := "test/metrics"
	for i := 0; i < 5; i++ {
		isolation().Report(name, errors.New("read-only file system"))
	}
	isolation().Allow(name) // refused: the backoff is 5s
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(isolationCollector{}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() != name {
				continue // other tests report their own names
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got[mf.GetName()] = v
		}
	}
	want := map[string]float64{
		"highload_health_isolation_state":          1,
		"highload_health_isolation_failures_total": 5,
		"highload_health_isolation_refused_total":  1,
		"highload_health_isolations_total":         1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
