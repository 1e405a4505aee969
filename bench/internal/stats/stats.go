// Package stats holds the few statistics the benchmark suite reports: the
// median, min and max of a figure over rounds, the highload/stock ratio
// computed pair by pair (round i against round i), and Jain's fairness index.
//
// The model: a run gives, per figure, one value per round and variant. Values
// are summarised per variant with [Summarize]; the two variants are compared
// with [PairRatios], which divides round i of one by round i of the other and
// skips rounds where either side is missing, so a drifting machine moves both
// sides of a pair together.
//
//	s, ok := stats.Summarize([]float64{3, 1, 2}) // {N:3 Median:2 Min:1 Max:3}
//	r := stats.PairRatios(highload, stock)       // highload[i]/stock[i]
//	j := stats.Jain([]float64{10, 10, 10})       // 1
package stats

import (
	"math"
	"sort"
)

// Summary is the spread of one figure over rounds.
type Summary struct {
	// N is how many values were summarised.
	N int `json:"n"`
	// Median is the middle value (the mean of the two middle ones for even N).
	Median float64 `json:"median"`
	// Min is the smallest value.
	Min float64 `json:"min"`
	// Max is the largest value.
	Max float64 `json:"max"`
}

// Finite reports whether v is neither NaN nor infinite.
func Finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Summarize returns the median, min and max of the finite values of xs; ok is
// false when there are none. xs is not modified.
func Summarize(xs []float64) (s Summary, ok bool) {
	vals := make([]float64, 0, len(xs))
	for _, v := range xs {
		if Finite(v) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return Summary{}, false
	}
	sort.Float64s(vals)
	n := len(vals)
	med := vals[n/2]
	if n%2 == 0 {
		med = (vals[n/2-1] + vals[n/2]) / 2
	}
	return Summary{N: n, Median: med, Min: vals[0], Max: vals[n-1]}, true
}

// Median is the median of the finite values of xs, or NaN when there are none.
func Median(xs []float64) float64 {
	s, ok := Summarize(xs)
	if !ok {
		return math.NaN()
	}
	return s.Median
}

// PairRatios divides num[i] by den[i] for every index both slices have, and
// returns the ratios in index order. A pair is skipped when either value is
// NaN or infinite (the convention for "this round did not report it") or
// when den[i] is zero.
func PairRatios(num, den []float64) []float64 {
	n := min(len(num), len(den))
	out := make([]float64, 0, n)
	for i := range n {
		a, b := num[i], den[i]
		if !Finite(a) || !Finite(b) || b == 0 {
			continue
		}
		out = append(out, a/b)
	}
	return out
}

// Jain is Jain's fairness index of xs, (Σx)² / (n·Σx²): 1 when every value
// is equal, 1/n when one value holds everything. It is NaN for an empty
// slice or when every value is zero.
func Jain(xs []float64) float64 {
	var sum, sq float64
	for _, v := range xs {
		sum += v
		sq += v * v
	}
	if len(xs) == 0 || sq == 0 {
		return math.NaN()
	}
	return sum * sum / (float64(len(xs)) * sq)
}
