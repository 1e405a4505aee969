package plugin

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"

	"github.com/kubo-highload/highload/autotune"
)

// The tuner's knobs, registered by components. Components call addKnobs
// from their start hook (order below 90, so before the tuner starts; the
// tuner also re-reads the knob list every window).
var (
	knobsMu     sync.Mutex
	knobSources []func() []autotune.Knob
)

// addKnobs registers a source of live knobs for the tuner. f is called once
// per observation window and returns the component's knobs (plain data over
// its atomics); it may return none.
func addKnobs(f func() []autotune.Knob) {
	knobsMu.Lock()
	defer knobsMu.Unlock()
	knobSources = append(knobSources, f)
}

// registeredKnobs returns every registered knob.
func registeredKnobs() []autotune.Knob {
	knobsMu.Lock()
	srcs := append([]func() []autotune.Knob(nil), knobSources...)
	knobsMu.Unlock()
	var out []autotune.Knob
	for _, f := range srcs {
		out = append(out, f()...)
	}
	return out
}

// gogcKnob is the Go GC target: a real live setting of this process that
// trades GC CPU (throughput) for memory, which the default objective's
// memory budget prices.
func gogcKnob() autotune.Knob {
	return autotune.Knob{
		Name: "go.GOGC", Unit: "percent", Min: 50, Max: 400, Step: 25,
		Get: func() float64 {
			s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
			metrics.Read(s)
			if s[0].Value.Kind() != metrics.KindUint64 {
				return 100
			}
			return float64(s[0].Value.Uint64())
		},
		Set: func(v float64) error {
			debug.SetGCPercent(int(v))
			return nil
		},
	}
}
