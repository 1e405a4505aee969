package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/kubo-highload/highload/bench/internal/daemon"
	"github.com/kubo-highload/highload/bench/internal/workload"
)

// cluster is the set of daemons one round started; stop stops them all.
type cluster struct {
	nodes []*daemon.Node
}

// startNodes initialises and starts one daemon per name, in parallel, in
// env.Dir/<name>. On error every daemon already started is stopped; on
// success the caller must defer c.stop().
func startNodes(env *workload.Env, v workload.Variant, names ...string) (*cluster, error) {
	c := &cluster{nodes: make([]*daemon.Node, len(names))}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			dir := filepath.Join(env.Dir, v.Name+"-"+name)
			n, err := daemon.Init(env.Ctx, v.Bin, dir, v.Profiles, v.Edit(nil))
			if err != nil {
				errs[i] = err
				return
			}
			n.Name = v.Name + "-" + name
			c.nodes[i] = n // set before Start so that stop covers a half-started node
			errs[i] = n.Start(env.Ctx)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.stop()
		return nil, fmt.Errorf("fetch: starting daemons: %w", err)
	}
	return c, nil
}

// stop stops every daemon of the cluster in parallel (RPC shutdown, then
// SIGKILL by PID; see daemon.Node.Stop).
func (c *cluster) stop() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if n != nil {
			wg.Go(func() { _ = n.Stop() })
		}
	}
	wg.Wait()
}

// dagInfo is what `dag stat` says of a DAG.
type dagInfo struct {
	Blocks int
	Bytes  uint64
}

// dagStat walks root's DAG on n; with offline it never asks the network, so
// it fails on any missing block.
func dagStat(ctx context.Context, n *daemon.Node, root string, offline bool) (dagInfo, error) {
	var res struct {
		UniqueBlocks int
		TotalSize    uint64
	}
	args := url.Values{"arg": {root}, "progress": {"false"}, "offline": {strconv.FormatBool(offline)}}
	if err := n.RPCJSON(ctx, "dag/stat", args, &res); err != nil {
		return dagInfo{}, err
	}
	return dagInfo{Blocks: res.UniqueBlocks, Bytes: res.TotalSize}, nil
}

// addFile imports size random bytes on n and returns the root and its DAG.
func addFile(ctx context.Context, n *daemon.Node, data io.Reader, chunkSize int) (string, dagInfo, error) {
	root, err := n.Add(ctx, data, chunker(chunkSize))
	if err != nil {
		return "", dagInfo{}, fmt.Errorf("fetch: add on %s: %w", n.Name, err)
	}
	info, err := dagStat(ctx, n, root, true)
	if err != nil {
		return "", dagInfo{}, fmt.Errorf("fetch: dag stat on %s: %w", n.Name, err)
	}
	return root, info, nil
}

// cpuOf is the CPU the daemons have used so far, together.
func cpuOf(nodes ...*daemon.Node) (time.Duration, error) {
	var sum time.Duration
	for _, n := range nodes {
		c, err := n.CPUTime()
		if err != nil {
			return 0, fmt.Errorf("fetch: CPU time of %s: %w", n.Name, err)
		}
		sum += c
	}
	return sum, nil
}

// pinAdd is the timed fetch: a recursive `pin/add` of root on the fetcher.
// It returns how long the RPC took.
func pinAdd(ctx context.Context, fetcher *daemon.Node, root string) (time.Duration, error) {
	start := time.Now()
	_, err := fetcher.RPC(ctx, "pin/add", url.Values{"arg": {root}, "recursive": {"true"}, "progress": {"false"}}, nil)
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("fetch: pin add on %s after %s: %w", fetcher.Name, d.Round(time.Millisecond), err)
	}
	return d, nil
}

// verify checks offline on the fetcher that root's DAG is complete and the
// same as the provider's.
func verify(ctx context.Context, fetcher *daemon.Node, root string, want dagInfo) error {
	got, err := dagStat(ctx, fetcher, root, true)
	if err != nil {
		return fmt.Errorf("fetch: %s: DAG of %s incomplete after pin add: %w", fetcher.Name, root, err)
	}
	if got != want {
		return fmt.Errorf("fetch: %s: DAG of %s has %d blocks / %d bytes, the provider has %d / %d",
			fetcher.Name, root, got.Blocks, got.Bytes, want.Blocks, want.Bytes)
	}
	return nil
}

// resetPeakRSS resets the daemon's VmHWM to its current RSS (Linux
// clear_refs value 5), so that a later PeakRSS covers only what follows.
func resetPeakRSS(n *daemon.Node) error {
	pid := n.PID()
	if pid == 0 {
		return fmt.Errorf("fetch: %s is not running", n.Name)
	}
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// fetchTimeout bounds one timed fetch, so that a stalled transfer fails the
// round instead of holding the run.
func fetchTimeout(env *workload.Env) time.Duration {
	if env.Quick {
		return 2 * time.Minute
	}
	return 10 * time.Minute
}

// mibPerSec is bytes over d in MiB/s.
func mibPerSec(bytes int64, d time.Duration) float64 {
	return float64(bytes) / mib / d.Seconds()
}

// megabytes is bytes in MB (10^6 bytes).
func megabytes(b uint64) float64 { return float64(b) / 1e6 }
