package loadgen

import (
	"slices"
	"time"
)

// Percentiles summarises a set of latencies, in milliseconds.
type Percentiles struct {
	// N is the number of samples.
	N int `json:"n"`
	// P50 is the median, in milliseconds (zero when N is zero, as all).
	P50 float64 `json:"p50_ms"`
	// P90 is the 90th percentile.
	P90 float64 `json:"p90_ms"`
	// P99 is the 99th percentile.
	P99 float64 `json:"p99_ms"`
	// Max is the largest sample.
	Max float64 `json:"max_ms"`
}

// Summarise sorts d in place and returns its percentiles (nearest rank).
func Summarise(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(q*float64(len(d))+0.5) - 1
		i = max(0, min(i, len(d)-1))
		return ms(d[i])
	}
	return Percentiles{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(d[len(d)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
