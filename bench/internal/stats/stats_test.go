package stats

import (
	"math"
	"reflect"
	"testing"
)

func TestSummarize(t *testing.T) {
	cases := []struct {
		name string
		in   []float64
		want Summary
		ok   bool
	}{
		{"empty", nil, Summary{}, false},
		{"only NaN", []float64{math.NaN(), math.Inf(1)}, Summary{}, false},
		{"one", []float64{4}, Summary{N: 1, Median: 4, Min: 4, Max: 4}, true},
		{"odd unsorted", []float64{5, 1, 3}, Summary{N: 3, Median: 3, Min: 1, Max: 5}, true},
		{"even takes mean of middle", []float64{4, 1, 2, 10}, Summary{N: 4, Median: 3, Min: 1, Max: 10}, true},
		{"skips non-finite", []float64{2, math.NaN(), 8, math.Inf(-1), 4}, Summary{N: 3, Median: 4, Min: 2, Max: 8}, true},
		{"negative", []float64{-1, -3, -2}, Summary{N: 3, Median: -2, Min: -3, Max: -1}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := Summarize(c.in)
			if ok != c.ok || got != c.want {
				t.Fatalf("Summarize(%v) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
			}
		})
	}
}

func TestSummarizeDoesNotModifyInput(t *testing.T) {
	in := []float64{3, 1, 2}
	Summarize(in)
	if !reflect.DeepEqual(in, []float64{3, 1, 2}) {
		t.Fatalf("input reordered: %v", in)
	}
}

func TestMedian(t *testing.T) {
	if got := Median([]float64{9, 1, 5}); got != 5 {
		t.Fatalf("Median = %v, want 5", got)
	}
	if got := Median(nil); !math.IsNaN(got) {
		t.Fatalf("Median(nil) = %v, want NaN", got)
	}
}

func TestPairRatios(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name     string
		num, den []float64
		want     []float64
	}{
		{"pairs by index, not by sorted value", []float64{2, 9, 3}, []float64{1, 3, 6}, []float64{2, 3, 0.5}},
		{"missing round on either side is skipped", []float64{nan, 4, 6}, []float64{2, 2, nan}, []float64{2}},
		{"zero denominator is skipped", []float64{1, 2}, []float64{0, 4}, []float64{0.5}},
		{"unequal lengths use the common prefix", []float64{1, 2, 3}, []float64{1}, []float64{1}},
		{"none", nil, nil, []float64{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := PairRatios(c.num, c.den)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("PairRatios(%v, %v) = %v, want %v", c.num, c.den, got, c.want)
			}
		})
	}
}

// The median of pair ratios differs from the ratio of medians when the
// machine drifts; the report uses the former.
func TestPairRatiosFollowDrift(t *testing.T) {
	stock := []float64{100, 50, 100}
	high := []float64{110, 55, 110}
	s, _ := Summarize(PairRatios(high, stock))
	if math.Abs(s.Min-1.1) > 1e-12 || math.Abs(s.Max-1.1) > 1e-12 {
		t.Fatalf("ratios %+v, want all 1.1", s)
	}
}

func TestJain(t *testing.T) {
	cases := []struct {
		name string
		in   []float64
		want float64
	}{
		{"equal", []float64{5, 5, 5, 5}, 1},
		{"one holds all", []float64{8, 0, 0, 0}, 0.25},
		{"two of four", []float64{1, 1, 0, 0}, 0.5},
		{"mixed", []float64{1, 2, 3}, 36.0 / 42.0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Jain(c.in); math.Abs(got-c.want) > 1e-12 {
				t.Fatalf("Jain(%v) = %v, want %v", c.in, got, c.want)
			}
		})
	}
	for _, in := range [][]float64{nil, {0, 0}} {
		if got := Jain(in); !math.IsNaN(got) {
			t.Fatalf("Jain(%v) = %v, want NaN", in, got)
		}
	}
}
