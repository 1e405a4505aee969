package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kubo-highload/highload/bench/internal/stats"
	"github.com/kubo-highload/highload/bench/internal/workload"
)

// runW4 is fan-out: one provider holds eight files, eight fetchers connect
// to it and then all pin their own file at the same moment. Each fetcher's
// time runs from the common start to the end of its own pin add.
func runW4(env *workload.Env, v workload.Variant) ([]workload.Figure, error) {
	const fetchers = 8
	size := int64(32 * mib)
	if env.Quick {
		size = 1 * mib
	}
	names := []string{"provider"}
	for i := range fetchers {
		names = append(names, fmt.Sprintf("fetcher-%d", i+1))
	}
	c, err := startNodes(env, v, names...)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	provider := c.nodes[0]

	// Import one after the other: the adds compete with nothing timed.
	roots := make([]string, fetchers)
	dags := make([]dagInfo, fetchers)
	for i := range fetchers {
		roots[i], dags[i], err = addFile(env.Ctx, provider, randomFile("W4", v.Name, env.Round, i, size), 256*kib)
		if err != nil {
			return nil, err
		}
	}
	for i := range fetchers {
		if err := c.nodes[1+i].Connect(env.Ctx, provider); err != nil {
			return nil, fmt.Errorf("fetch: connect fetcher %d: %w", i+1, err)
		}
	}
	// The provider's peak RSS should cover serving, not the import above.
	peakNote := ""
	if err := resetPeakRSS(provider); err != nil {
		peakNote = "includes the import"
		env.Logf("cannot reset the provider's peak RSS (%v); it includes the import", err)
	}

	ctx, cancel := context.WithTimeout(env.Ctx, fetchTimeout(env))
	defer cancel()
	took := make([]time.Duration, fetchers)
	errs := make([]error, fetchers)
	begin := make(chan struct{})
	var wg sync.WaitGroup
	var start time.Time
	for i := range fetchers {
		wg.Go(func() {
			<-begin
			if _, errs[i] = pinAdd(ctx, c.nodes[1+i], roots[i]); errs[i] == nil {
				took[i] = time.Since(start)
			}
		})
	}
	start = time.Now()
	close(begin)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	peak, err := provider.PeakRSS()
	if err != nil {
		return nil, err
	}
	for i := range fetchers {
		if err := verify(env.Ctx, c.nodes[1+i], roots[i], dags[i]); err != nil {
			return nil, err
		}
	}

	var last time.Duration
	tput := make([]float64, fetchers)
	for i, d := range took {
		last = max(last, d)
		tput[i] = mibPerSec(size, d)
	}
	aggregate := mibPerSec(size*fetchers, last)
	env.Logf("%d fetchers done in %s (first %s), %.1f MiB/s aggregate",
		fetchers, last.Round(time.Millisecond), minDur(took).Round(time.Millisecond), aggregate)
	return []workload.Figure{
		{Name: "aggregate throughput", Unit: "MiB/s", Value: aggregate, HigherIsBetter: true},
		{Name: "Jain fairness", Unit: "index", Value: stats.Jain(tput), HigherIsBetter: true},
		{Name: "provider peak RSS", Unit: "MB", Value: megabytes(peak), Note: peakNote},
	}, nil
}

func minDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds[1:] {
		m = min(m, d)
	}
	return m
}
