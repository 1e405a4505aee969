package fetch

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/kubo-highload/highload/bench/internal/workload"
)

// runW10 is stream: a gateway-like read. The fetcher streams a 256 MiB file
// (256 KiB chunks) from one provider with `cat`, which reads the DAG in
// order through Kubo's DAG reader (it asks for the next 10 children at a
// time), so the order in which the provider serves one peer's wants, not
// only how fast, decides the throughput. The bytes are hashed as they
// arrive and must match what the provider imported.
func runW10(env *workload.Env, v workload.Variant) ([]workload.Figure, error) {
	size := int64(256 * mib)
	if env.Quick {
		size = 8 * mib
	}
	c, err := startNodes(env, v, "provider", "fetcher")
	if err != nil {
		return nil, err
	}
	defer c.stop()
	provider, fetcher := c.nodes[0], c.nodes[1]

	want := sha256.New()
	root, dag, err := addFile(env.Ctx, provider, io.TeeReader(randomFile("W10", v.Name, env.Round, 0, size), want), 256*kib)
	if err != nil {
		return nil, err
	}
	if err := fetcher.Connect(env.Ctx, provider); err != nil {
		return nil, fmt.Errorf("fetch: connect: %w", err)
	}
	ctx, cancel := context.WithTimeout(env.Ctx, fetchTimeout(env))
	defer cancel()
	got := sha256.New()
	start := time.Now()
	ttfb, n, err := fetcher.RPCStream(ctx, "cat", url.Values{"arg": {"/ipfs/" + root}, "progress": {"false"}}, got)
	took := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("fetch: cat on %s after %s (%d bytes): %w", fetcher.Name, took.Round(time.Millisecond), n, err)
	}
	if n != size || string(got.Sum(nil)) != string(want.Sum(nil)) {
		return nil, fmt.Errorf("fetch: cat of %s on %s gave %d bytes (want %d) or different bytes", root, fetcher.Name, n, size)
	}
	env.Logf("cat %s of %d blocks (%.1f MiB/s), first byte after %s", took.Round(time.Millisecond),
		dag.Blocks, mibPerSec(size, took), ttfb.Round(time.Millisecond))
	return []workload.Figure{
		{Name: "throughput", Unit: "MiB/s", Value: mibPerSec(size, took), HigherIsBetter: true},
		{Name: "time to first byte", Unit: "ms", Value: float64(ttfb.Microseconds()) / 1e3},
	}, nil
}
