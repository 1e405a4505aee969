package runner

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// ErrNoRatios is returned by Chart when no figure has a ratio to draw.
var ErrNoRatios = errors.New("runner: no figure has a highload/stock ratio to chart")

var (
	colorBetter = color.RGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0xff} // every pair: highload better
	colorWorse  = color.RGBA{R: 0xc0, G: 0x39, B: 0x2b, A: 0xff} // every pair: highload worse
	colorMixed  = color.RGBA{R: 0x9a, G: 0x9a, B: 0x9a, A: 0xff} // pairs disagree, or within chartTie of 1
)

// chartTie is how far from 1 a round pair's ratio must be to count as
// better or worse when colouring a bar: 1%.
const chartTie = 0.01

// chartRow is one bar: a workload figure's median ratio and its spread.
type chartRow struct {
	label          string
	median, lo, hi float64
	color          color.Color
}

// chartRows lists the figures with a ratio, first workload first.
func (r *Result) chartRows() []chartRow {
	var rows []chartRow
	for _, w := range r.Workloads {
		for _, f := range w.Figures {
			if f.Ratio == nil {
				continue
			}
			unit := ""
			if f.Unit != "" {
				unit = " (" + f.Unit + ")"
			}
			// Colour by what every pair says: all better, all worse, or
			// mixed; a pair within chartTie of 1 says neither.
			c := colorMixed
			lo, hi := f.Ratio.Min, f.Ratio.Max
			switch {
			case f.HigherIsBetter && lo > 1+chartTie, !f.HigherIsBetter && hi < 1-chartTie:
				c = colorBetter
			case f.HigherIsBetter && hi < 1-chartTie, !f.HigherIsBetter && lo > 1+chartTie:
				c = colorWorse
			}
			rows = append(rows, chartRow{
				label:  fmt.Sprintf("%s %s: %s%s %s", w.ID, w.Name, f.Name, unit, betterMark(f.HigherIsBetter)),
				median: f.Ratio.Median, lo: lo, hi: hi, color: c,
			})
		}
	}
	return rows
}

// Chart draws the median highload/stock ratio of every figure as a
// horizontal bar, with the min-max of the per-round ratios as an error bar
// and a dashed line at 1 (no difference), and saves it as a PNG at path.
// A bar is green when every round pair says highload is better by more than
// 1%, red when every pair says it is worse by more than 1%, grey otherwise.
func (r *Result) Chart(path string) error {
	rows := r.chartRows()
	if len(rows) == 0 {
		return ErrNoRatios
	}
	p := plot.New()
	mode := ""
	if r.Quick {
		mode = ", quick sizes"
	}
	p.Title.Text = fmt.Sprintf("highload / stock, median and min-max of %d round pair(s)%s\n%s, %d cores, %s",
		r.Rounds, mode, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Machine.NProc, orUnknown(r.Machine.CPUModel))
	p.X.Label.Text = "ratio highload/stock, dashed line = no difference (↑ higher is better, ↓ lower is better)\n" +
		"green: every round pair >1% better, red: every pair >1% worse, grey: otherwise"
	p.X.Min = 0

	// NominalY puts index 0 at the bottom; reverse so the first workload is on top.
	n := len(rows)
	labels := make([]string, n)
	errs := make(errPoints, n)
	values := plotter.XYLabels{}
	maxX := 1.0
	for i, row := range rows {
		y := float64(n - 1 - i)
		labels[n-1-i] = row.label
		bar, err := plotter.NewBarChart(plotter.Values{row.median}, vg.Points(14))
		if err != nil {
			return fmt.Errorf("runner: chart bar %q: %w", row.label, err)
		}
		bar.Horizontal = true
		bar.XMin = y
		bar.LineStyle.Width = 0
		bar.Color = row.color
		p.Add(bar)
		errs[i] = errPoint{x: row.median, y: y, lo: row.median - row.lo, hi: row.hi - row.median}
		values.XYs = append(values.XYs, plotter.XY{X: row.hi, Y: y})
		values.Labels = append(values.Labels, fmt.Sprintf("%.2f", row.median))
		maxX = max(maxX, row.hi)
	}
	eb, err := plotter.NewXErrorBars(errs)
	if err != nil {
		return fmt.Errorf("runner: chart error bars: %w", err)
	}
	eb.LineStyle.Width = vg.Points(1.5)
	eb.CapWidth = vg.Points(8)
	p.Add(eb)

	one, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.6}, {X: 1, Y: float64(n) - 0.4}})
	if err != nil {
		return err
	}
	one.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	one.LineStyle.Color = color.Gray{Y: 0x40}
	p.Add(one)

	lbl, err := plotter.NewLabels(values)
	if err != nil {
		return err
	}
	for i := range lbl.TextStyle {
		lbl.TextStyle[i].YAlign = -0.5 // vertically centred on the row
	}
	lbl.Offset = vg.Point{X: vg.Points(8)}
	p.Add(lbl)

	p.NominalY(labels...)
	p.X.Max = maxX * 1.15
	p.X.Tick.Marker = ratioTicks{}
	grid := plotter.NewGrid()
	grid.Horizontal.Width = 0 // the rows are categories
	p.Add(grid)

	height := vg.Length(n)*vg.Points(26) + vg.Inch*1.6
	return p.Save(11*vg.Inch, height, path)
}

// errPoint is one error bar: the median at (x, y), and the distances from it
// down to the min and up to the max.
type errPoint struct{ x, y, lo, hi float64 }

// errPoints adapts errPoint to plotter.XYer and plotter.XErrorer.
type errPoints []errPoint

// Len implements plotter.XYer.
func (e errPoints) Len() int { return len(e) }

// XY implements plotter.XYer.
func (e errPoints) XY(i int) (float64, float64) { return e[i].x, e[i].y }

// XError implements plotter.XErrorer: the distances down to the min and up
// to the max.
func (e errPoints) XError(i int) (float64, float64) { return e[i].lo, e[i].hi }

// ratioTicks labels the ratio axis at round steps that always include 1.
type ratioTicks struct{}

// Ticks implements plot.Ticker.
func (ratioTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 0.1
	for _, s := range []float64{0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100} {
		step = s
		if (hi-lo)/s <= 10 {
			break
		}
	}
	var ticks []plot.Tick
	for i := math.Ceil(lo / step); i*step <= hi+1e-9; i++ {
		v := math.Round(i*step*1e6) / 1e6
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ticks
}
