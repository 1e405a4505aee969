package integration

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/test/cli/harness"
)

// TestStoppedFetcherDoesNotStallProvider: a fetcher that asked our
// provider for blocks and then stopped reading (its daemon SIGSTOPped)
// keeps MaxOutstandingBytesPerPeer (1 MiB here, Kubo's value) in flight
// until boxo's send times out. boxo's peer task queue pops nothing while
// the peer on top is at that cap, and with the policy's comparator the
// stopped peer came back on top by its low pass: another fetcher then got
// 2 of 130 blocks in 60 s. The comparator's in-flight estimate
// (exchange/inflight.go) moves the stopped peer below, and the other
// fetcher is served. Both fetchers are stock Kubo.
func TestStoppedFetcherDoesNotStallProvider(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	provider := newNode(t, newHarness(t, ourBin(t)))
	setPlugin(provider, config.Plugin{Config: map[string]any{
		"Bitswap": map[string]any{"MaxOutstandingBytesPerPeer": "1MiB", "TargetMessageSize": "256KiB"},
	}})
	sh := newHarness(t, stockBin(t))
	stopped, other := newNode(t, sh), newNode(t, sh)
	for _, n := range []*harness.Node{provider, stopped, other} {
		startDaemon(n)
	}
	big := strings.TrimSpace(mustRun(t, provider, transferTimeout, bytes.NewReader(randomBytes(64<<20)), "add", "-Q", "--pin=false").Stdout.String())
	small := strings.TrimSpace(mustRun(t, provider, transferTimeout, bytes.NewReader(randomBytes(8<<20)), "add", "-Q", "--pin=false").Stdout.String())
	connect(t, stopped, provider)
	connect(t, other, provider)

	// The stopped fetcher's pin add runs until its daemon is stopped; the
	// CLI is killed by its own time limit if the test ends first.
	go run(stopped, 90*time.Second, nil, "pin", "add", big)
	if err := waitFor(30*time.Second, func() (bool, string) {
		n := strings.Count(run(stopped, cmdTimeout, nil, "refs", "local").Stdout.String(), "\n")
		return n >= 16, fmt.Sprintf("%d blocks fetched", n)
	}); err != nil {
		t.Fatalf("the first fetcher did not start fetching: %v", err)
	}
	pid := stopped.Daemon.Cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", pid, err)
	}
	// Registered after the harness's own cleanup, so it runs first: the
	// harness can only stop a running daemon.
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })

	// A bound for liveness, not speed: it takes 1-2 s on an idle machine,
	// and never finished in 60 s without the estimate.
	start := time.Now()
	res := run(other, 45*time.Second, nil, "pin", "add", small)
	if res.Err != nil {
		t.Fatalf("the other fetcher's pin add, with the first fetcher stopped: %v after %v\n%s\nprovider: %s",
			res.Err, time.Since(start).Round(time.Millisecond), res.Stderr.String(),
			run(provider, cmdTimeout, nil, "stats", "highload", "bitswap").Stdout.String())
	}
	t.Logf("other fetcher pinned 8 MiB in %v with the first one stopped", time.Since(start).Round(time.Millisecond))
	out := mustRun(t, provider, cmdTimeout, nil, "stats", "highload", "bitswap").Stdout.String()
	if !strings.Contains(out, "Outstanding cap 1048576 bytes/peer") {
		t.Errorf("`ipfs stats highload bitswap` does not show the outstanding cap the policy uses:\n%s", out)
	}
	s := policyStats(t, provider)
	if s.OutstandingCap != 1<<20 {
		t.Errorf("policy's outstanding cap %d, want 1 MiB (the server's)", s.OutstandingCap)
	}
	t.Logf("provider: %d peers at the cap, %d orderings by it", s.PeersAtCap, s.CapOrdered)
}
