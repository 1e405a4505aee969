package runner

import (
	"math"
	"time"

	"github.com/kubo-highload/highload/bench/internal/stats"
	"github.com/kubo-highload/highload/bench/internal/workload"
)

// Result is everything one run measured; it is what the JSON file holds.
type Result struct {
	// Started and Finished bound the run.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Seconds is the total run time.
	Seconds float64 `json:"seconds"`
	// Machine describes where the run happened.
	Machine Machine `json:"machine"`
	// Quick is true for a -quick run (tiny sizes).
	Quick bool `json:"quick"`
	// Rounds is the number of rounds per variant and workload.
	Rounds int `json:"rounds"`
	// Variants are stock then highload.
	Variants []VariantInfo `json:"variants"`
	// Workloads are in run order.
	Workloads []WorkloadResult `json:"workloads"`
	// FailedRounds counts rounds (of either variant) that returned an error.
	FailedRounds int `json:"failed_rounds"`
	// Interrupted is true when the run was cancelled before the end.
	Interrupted bool `json:"interrupted"`
}

// VariantInfo is a variant plus what its binary says of itself.
type VariantInfo struct {
	// Name is "stock" or "highload".
	Name string `json:"name"`
	// Bin is the binary's path; StagedFrom the binary it was copied from
	// for the run, if it was.
	Bin        string `json:"bin"`
	StagedFrom string `json:"staged_from,omitempty"`
	// Profiles are the init profiles besides "test".
	Profiles []string `json:"profiles"`
	// Config lists the -config settings written into its repos
	// ("Dotted.Path=value").
	Config []string `json:"config,omitempty"`
	// Version is the first line of `<bin> version --all`.
	Version string `json:"version"`
}

// WorkloadResult holds one workload's raw rounds and their summary.
type WorkloadResult struct {
	// ID, Name and Shape come from the workload.
	ID    string `json:"id"`
	Name  string `json:"name"`
	Shape string `json:"shape"`
	// Runs are every round of every variant, in run order.
	Runs []RunResult `json:"runs"`
	// Figures summarise Runs per figure name, in order of first appearance.
	Figures []FigureResult `json:"figures"`
}

// RunResult is one round of one variant.
type RunResult struct {
	// Round counts from 0.
	Round int `json:"round"`
	// Variant is the variant's name.
	Variant string `json:"variant"`
	// Seconds is the wall time of the round, set-up included.
	Seconds float64 `json:"seconds"`
	// Error is set when the round failed; its figures are then dropped.
	Error string `json:"error,omitempty"`
	// Figures are what the round measured.
	Figures []Figure `json:"figures,omitempty"`
}

// Figure is a workload.Figure as the JSON file spells it; the fields mean
// what workload.Figure's do.
type Figure struct {
	// Name identifies the figure within its workload.
	Name string `json:"name"`
	// Unit is printed beside the value.
	Unit string `json:"unit"`
	// Value is the measurement.
	Value float64 `json:"value"`
	// HigherIsBetter orients the reading of the ratio.
	HigherIsBetter bool `json:"higher_is_better"`
	// Note is an optional remark from the workload.
	Note string `json:"note,omitempty"`
}

func toFigures(fs []workload.Figure) []Figure {
	out := make([]Figure, len(fs))
	for i, f := range fs {
		out[i] = Figure{Name: f.Name, Unit: f.Unit, Value: f.Value, HigherIsBetter: f.HigherIsBetter, Note: f.Note}
	}
	return out
}

// FigureResult summarises one figure of one workload over the rounds.
type FigureResult struct {
	// Name, Unit, HigherIsBetter and Note come from the workload's figures.
	Name           string `json:"name"`
	Unit           string `json:"unit"`
	HigherIsBetter bool   `json:"higher_is_better"`
	Note           string `json:"note,omitempty"`
	// Stock and Highload summarise each variant's values; nil when that
	// variant never reported the figure.
	Stock    *stats.Summary `json:"stock,omitempty"`
	Highload *stats.Summary `json:"highload,omitempty"`
	// Ratio summarises highload/stock computed round by round; nil when no
	// round has both.
	Ratio *stats.Summary `json:"ratio,omitempty"`
	// Ratios are the per-round ratios behind Ratio.
	Ratios []float64 `json:"ratios,omitempty"`
}

// summarizeFigures groups the runs' figures by name and variant, with NaN
// standing for a round that did not report a figure, and summarises them.
func summarizeFigures(runs []RunResult, stock, highload string, rounds int) []FigureResult {
	type series struct {
		meta     Figure
		stock    []float64
		highload []float64
	}
	byName := map[string]*series{}
	var order []string
	nanSlice := func() []float64 {
		s := make([]float64, rounds)
		for i := range s {
			s[i] = math.NaN()
		}
		return s
	}
	for _, r := range runs {
		if r.Error != "" || r.Round < 0 || r.Round >= rounds {
			continue
		}
		for _, f := range r.Figures {
			s, ok := byName[f.Name]
			if !ok {
				s = &series{meta: f, stock: nanSlice(), highload: nanSlice()}
				byName[f.Name] = s
				order = append(order, f.Name)
			}
			switch r.Variant {
			case stock:
				s.stock[r.Round] = f.Value
			case highload:
				s.highload[r.Round] = f.Value
			}
			if s.meta.Note == "" {
				s.meta.Note = f.Note
			}
		}
	}
	out := make([]FigureResult, 0, len(order))
	for _, name := range order {
		s := byName[name]
		fr := FigureResult{Name: name, Unit: s.meta.Unit, HigherIsBetter: s.meta.HigherIsBetter, Note: s.meta.Note}
		if sum, ok := stats.Summarize(s.stock); ok {
			fr.Stock = &sum
		}
		if sum, ok := stats.Summarize(s.highload); ok {
			fr.Highload = &sum
		}
		if fr.Stock != nil && fr.Highload != nil {
			fr.Ratios = stats.PairRatios(s.highload, s.stock)
			if sum, ok := stats.Summarize(fr.Ratios); ok {
				fr.Ratio = &sum
			}
		}
		out = append(out, fr)
	}
	return out
}
