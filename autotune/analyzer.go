package autotune

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Point is one observation of a metric.
type Point struct {
	T time.Time
	V float64
}

// Direction says which way a metric goes wrong.
type Direction int

// Directions.
const (
	// BadWhenHigh: rising is bad (latency, memory, errors).
	BadWhenHigh Direction = iota
	// BadWhenLow: falling is bad (throughput, free space).
	BadWhenLow
)

// Rule tells the analyzer what a metric means and what to do about it.
type Rule struct {
	// Metric is the series' name.
	Metric string
	// What names it in plain words, e.g. "blocks served per second".
	What string
	// Counter: the series is a monotonic count; the analyzer works on its
	// rate per second.
	Counter bool
	// Bad is the direction that is a problem.
	Bad Direction
	// Limit, when non-zero, is a level that is a problem on its own
	// (reached from the Bad side).
	Limit float64
	// MinDelta is the smallest move that matters, in the metric's unit
	// (per second for counters): an anomaly or trend smaller than this is
	// not reported, however unusual. It keeps a near-idle series (CPU at
	// 0.01 cores, say) from reporting noise as a finding.
	MinDelta float64
	// Advice is the config change to make when the metric goes wrong.
	Advice string
}

// Finding is one thing the analyzer noticed.
type Finding struct {
	// Metric is the series behind the finding, What its plain name.
	Metric, What string
	// Kind is "anomaly" (the latest value is far from the recent median),
	// "trend" (a steady move over the window) or "limit".
	Kind string
	// Message says what was seen, in plain words with the figures.
	Message string
	// Value is the latest value (a rate for counters), Median the recent
	// typical value, Z the robust z-score, and SlopePerMin the Theil-Sen
	// trend per minute.
	Value, Median, Z, SlopePerMin float64
	// Advice is the config change recommended.
	Advice string
}

// Analyzer finds anomalies and trends in metric series.
type Analyzer struct {
	// Rules are the metrics to look at.
	Rules []Rule
	// Window is how many recent points are used (default 30).
	Window int
	// ZThreshold is the robust z-score of an anomaly (default 3.5, the
	// usual cut-off for the modified z-score).
	ZThreshold float64
	// TrendChange is the relative move over the window that makes a
	// trend worth reporting (default 0.2, i.e. 20%).
	TrendChange float64
}

// minPoints is the fewest points a series needs before it is judged.
const minPoints = 8

// Analyze returns the findings for the series, by rule order.
func (a Analyzer) Analyze(series map[string][]Point) []Finding {
	window := a.Window
	if window <= 0 {
		window = 30
	}
	zt := a.ZThreshold
	if zt <= 0 {
		zt = 3.5
	}
	tc := a.TrendChange
	if tc <= 0 {
		tc = 0.2
	}
	var out []Finding
	for _, r := range a.Rules {
		ps := series[r.Metric]
		if r.Counter {
			ps = rates(ps)
		}
		if len(ps) > window {
			ps = ps[len(ps)-window:]
		}
		if len(ps) < minPoints {
			continue
		}
		out = append(out, judge(r, ps, zt, tc)...)
	}
	return out
}

// judge looks at one series for a limit, an anomaly and a trend.
func judge(r Rule, ps []Point, zt, tc float64) []Finding {
	last := ps[len(ps)-1].V
	hist := make([]float64, len(ps)-1)
	for i, p := range ps[:len(ps)-1] {
		hist[i] = p.V
	}
	med := median(hist)
	z := robustZ(last, hist, med)
	slope := theilSen(ps) * 60
	base := Finding{Metric: r.Metric, What: r.What, Value: last, Median: med, Z: z, SlopePerMin: slope, Advice: r.Advice}
	bad := func(x float64) bool { // x is a signed deviation
		if r.Bad == BadWhenHigh {
			return x > 0
		}
		return x < 0
	}
	var out []Finding
	if r.Limit != 0 && ((r.Bad == BadWhenHigh && last >= r.Limit) || (r.Bad == BadWhenLow && last <= r.Limit)) {
		f := base
		f.Kind = "limit"
		f.Message = fmt.Sprintf("%s is %s, past the limit %s", r.What, num(last), num(r.Limit))
		out = append(out, f)
	}
	if math.Abs(z) >= zt && bad(z) && math.Abs(last-med) >= r.MinDelta {
		f := base
		f.Kind = "anomaly"
		word := "rose"
		if z < 0 {
			word = "fell"
		}
		f.Message = fmt.Sprintf("%s %s to %s against a typical %s (robust z-score %.1f)", r.What, word, num(last), num(med), z)
		out = append(out, f)
	}
	span := ps[len(ps)-1].T.Sub(ps[0].T)
	move := theilSen(ps) * span.Seconds()
	scale := math.Max(math.Abs(med), 1e-9)
	if rel := move / scale; math.Abs(rel) >= tc && bad(move) && math.Abs(move) >= r.MinDelta && math.Abs(kendallTau(ps)) >= 0.5 {
		f := base
		f.Kind = "trend"
		word := "risen"
		if move < 0 {
			word = "fallen"
		}
		f.Message = fmt.Sprintf("%s has %s steadily: %+.0f%% over the last %s (%s per minute)",
			r.What, word, 100*rel, span.Round(time.Second), num(slope))
		out = append(out, f)
	}
	return out
}

// rates turns a counter series into per-second rates between points; a
// counter that went down (a restart) restarts the series.
func rates(ps []Point) []Point {
	var out []Point
	for i := 1; i < len(ps); i++ {
		dt := ps[i].T.Sub(ps[i-1].T).Seconds()
		dv := ps[i].V - ps[i-1].V
		if dt <= 0 {
			continue
		}
		if dv < 0 {
			out = out[:0]
			continue
		}
		out = append(out, Point{T: ps[i].T, V: dv / dt})
	}
	return out
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// robustZ is the modified z-score 0.6745*(x-median)/MAD. With a zero MAD
// (a flat history) a move of more than 5% of the median counts as ±10.
func robustZ(x float64, hist []float64, med float64) float64 {
	dev := make([]float64, len(hist))
	for i, h := range hist {
		dev[i] = math.Abs(h - med)
	}
	mad := median(dev)
	if mad == 0 {
		if math.Abs(x-med) > 0.05*math.Abs(med) && x != med {
			return math.Copysign(10, x-med)
		}
		return 0
	}
	return 0.6745 * (x - med) / mad
}

// theilSen is the median of the pairwise slopes, per second: a trend that
// a few outliers do not move.
func theilSen(ps []Point) float64 {
	var slopes []float64
	for i := 0; i < len(ps); i++ {
		for j := i + 1; j < len(ps); j++ {
			if dt := ps[j].T.Sub(ps[i].T).Seconds(); dt > 0 {
				slopes = append(slopes, (ps[j].V-ps[i].V)/dt)
			}
		}
	}
	return median(slopes)
}

// kendallTau is Kendall's rank correlation between time and value: +1
// for a series that only rises, -1 for one that only falls, near 0 for
// noise. It guards the trend finding against a slope fitted to noise.
func kendallTau(ps []Point) float64 {
	var conc, disc int
	for i := 0; i < len(ps); i++ {
		for j := i + 1; j < len(ps); j++ {
			switch d := ps[j].V - ps[i].V; {
			case d > 0:
				conc++
			case d < 0:
				disc++
			}
		}
	}
	n := len(ps) * (len(ps) - 1) / 2
	if n == 0 {
		return 0
	}
	return float64(conc-disc) / float64(n)
}

// num formats a figure compactly.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1<<30:
		return fmt.Sprintf("%.2fGi", v/(1<<30))
	case a >= 1<<20:
		return fmt.Sprintf("%.1fMi", v/(1<<20))
	case a >= 10000:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// Report is the analyzer's output for `ipfs stats highload advise`.
type Report struct {
	// Findings are what the analyzer noticed; empty is good news.
	Findings []Finding
	// Series is how many metric series were analysed and Points the
	// longest one's length; Since is the oldest point.
	Series, Points int
	Since          time.Time
	// Note explains a report with little to go on.
	Note string `json:",omitempty"`
}
