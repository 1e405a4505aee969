package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kubo-highload/highload/bench/internal/workload"
)

// runW3 is multi-provider: three providers import the same bytes with the
// same chunker (hence the same root), one fetcher connects to all three and
// pins the root.
func runW3(env *workload.Env, v workload.Variant) ([]workload.Figure, error) {
	const providers = 3
	size := int64(256 * mib)
	if env.Quick {
		size = 8 * mib
	}
	c, err := startNodes(env, v, "provider-1", "provider-2", "provider-3", "fetcher")
	if err != nil {
		return nil, err
	}
	defer c.stop()
	fetcher := c.nodes[providers]

	roots := make([]string, providers)
	dags := make([]dagInfo, providers)
	errs := make([]error, providers)
	var wg sync.WaitGroup
	for i := range providers {
		wg.Go(func() {
			// File index 0 for every provider: the same bytes.
			roots[i], dags[i], errs[i] = addFile(env.Ctx, c.nodes[i], randomFile("W3", v.Name, env.Round, 0, size), 256*kib)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i := 1; i < providers; i++ {
		if roots[i] != roots[0] || dags[i] != dags[0] {
			return nil, fmt.Errorf("fetch: provider %d has root %s, provider 1 has %s: the same bytes must give the same DAG", i+1, roots[i], roots[0])
		}
	}
	for i := range providers {
		if err := fetcher.Connect(env.Ctx, c.nodes[i]); err != nil {
			return nil, fmt.Errorf("fetch: connect to provider %d: %w", i+1, err)
		}
	}

	ctx, cancel := context.WithTimeout(env.Ctx, fetchTimeout(env))
	defer cancel()
	cpu0, err := cpuOf(c.nodes...)
	if err != nil {
		return nil, err
	}
	took, err := pinAdd(ctx, fetcher, roots[0])
	if err != nil {
		return nil, err
	}
	cpu1, err := cpuOf(c.nodes...)
	if err != nil {
		return nil, err
	}
	if err := verify(env.Ctx, fetcher, roots[0], dags[0]); err != nil {
		return nil, err
	}
	sp, err := readSpread(env.Ctx, fetcher, c.nodes[:providers])
	if err != nil {
		return nil, err
	}
	env.Logf("fetch %s from %d providers (%.1f MiB/s), bytes per provider %v, %d duplicate blocks",
		took.Round(time.Millisecond), providers, mibPerSec(size, took), sp.Recv, sp.DupBlocks)
	return []workload.Figure{
		{Name: "throughput", Unit: "MiB/s", Value: mibPerSec(size, took), HigherIsBetter: true},
		{Name: "top provider's share", Unit: "%", Value: topShare(sp.Recv), Note: "33% is an even split"},
		{Name: "duplicate blocks", Unit: "blocks", Value: float64(sp.DupBlocks)},
		cpuFigure(cpu1 - cpu0),
	}, nil
}
