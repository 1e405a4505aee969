package fetch

import (
	"context"
	"fmt"
	"time"

	"github.com/kubo-highload/highload/bench/internal/workload"
)

// single is the outcome of one provider -> one fetcher transfer.
type single struct {
	size    int64
	took    time.Duration
	dag     dagInfo
	peakRSS uint64 // fetcher VmHWM, read right after the fetch
	// cpu is what the provider and the fetcher used over the fetch,
	// together (/proc/PID/stat, 10 ms ticks).
	cpu time.Duration
}

// runSingle starts a provider and a fetcher, imports size random bytes on
// the provider with chunkSize chunks, connects, times the fetcher's pin add
// and verifies the DAG offline.
func runSingle(env *workload.Env, v workload.Variant, id string, size int64, chunkSize int) (single, error) {
	c, err := startNodes(env, v, "provider", "fetcher")
	if err != nil {
		return single{}, err
	}
	defer c.stop()
	provider, fetcher := c.nodes[0], c.nodes[1]

	addStart := time.Now()
	root, dag, err := addFile(env.Ctx, provider, randomFile(id, v.Name, env.Round, 0, size), chunkSize)
	if err != nil {
		return single{}, err
	}
	addTook := time.Since(addStart)
	if err := fetcher.Connect(env.Ctx, provider); err != nil {
		return single{}, fmt.Errorf("fetch: connect: %w", err)
	}

	ctx, cancel := context.WithTimeout(env.Ctx, fetchTimeout(env))
	defer cancel()
	cpu0, err := cpuOf(provider, fetcher)
	if err != nil {
		return single{}, err
	}
	took, err := pinAdd(ctx, fetcher, root)
	if err != nil {
		return single{}, err
	}
	cpu1, err := cpuOf(provider, fetcher)
	if err != nil {
		return single{}, err
	}
	peak, err := fetcher.PeakRSS()
	if err != nil {
		return single{}, err
	}
	if err := verify(env.Ctx, fetcher, root, dag); err != nil {
		return single{}, err
	}
	env.Logf("add %s, fetch %s of %d blocks (%.1f MiB/s)", addTook.Round(time.Millisecond),
		took.Round(time.Millisecond), dag.Blocks, mibPerSec(size, took))
	return single{size: size, took: took, dag: dag, peakRSS: peak, cpu: cpu1 - cpu0}, nil
}

// runW1 is bulk: 256 MiB in 256 KiB chunks.
func runW1(env *workload.Env, v workload.Variant) ([]workload.Figure, error) {
	size := int64(256 * mib)
	if env.Quick {
		size = 8 * mib
	}
	r, err := runSingle(env, v, "W1", size, 256*kib)
	if err != nil {
		return nil, err
	}
	return []workload.Figure{
		{Name: "throughput", Unit: "MiB/s", Value: mibPerSec(r.size, r.took), HigherIsBetter: true},
		{Name: "fetcher peak RSS", Unit: "MB", Value: megabytes(r.peakRSS)},
		cpuFigure(r.cpu),
	}, nil
}

// cpuFigure is the daemons' CPU over a fetch. Where both variants fill
// the two shared cores (W1, W3) the throughput ratio is about its inverse;
// read it against `go run ./bench/floor/cmd/floor` (docs/benchmarks.md,
// "The floor").
func cpuFigure(d time.Duration) workload.Figure {
	return workload.Figure{Name: "daemons' CPU", Unit: "s", Value: d.Seconds(), Note: "provider(s) and fetcher over the fetch"}
}

// runW2 is small-blocks: 64 MiB in 16 KiB chunks.
func runW2(env *workload.Env, v workload.Variant) ([]workload.Figure, error) {
	size := int64(64 * mib)
	if env.Quick {
		size = 2 * mib
	}
	r, err := runSingle(env, v, "W2", size, 16*kib)
	if err != nil {
		return nil, err
	}
	return []workload.Figure{
		{Name: "block rate", Unit: "blocks/s", Value: float64(r.dag.Blocks) / r.took.Seconds(), HigherIsBetter: true},
		{Name: "throughput", Unit: "MiB/s", Value: mibPerSec(r.size, r.took), HigherIsBetter: true},
		{Name: "fetcher peak RSS", Unit: "MB", Value: megabytes(r.peakRSS)},
		cpuFigure(r.cpu),
	}, nil
}
