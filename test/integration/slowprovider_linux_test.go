//go:build linux

package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/test/cli/harness"
	ma "github.com/multiformats/go-multiaddr"
)

// slowProviderNetnsEnv marks the child run of
// TestCatFromASlowProviderThatSentTheRootUsesTheFastOne inside its network
// namespace.
const slowProviderNetnsEnv = "HIGHLOAD_IN_SLOW_PROVIDER_NETNS"

// slowProviderRate is the rate of the slow provider's link.
const slowProviderRate = "20mbit"

// TestCatFromASlowProviderThatSentTheRootUsesTheFastOne checks the direct
// wants' per-peer windows on real daemons over a really slow link. Two of
// our providers hold the same 32 MiB file; the kernel limits what one of
// them sends to 20 Mbit/s (an htb class on the loopback of a network
// namespace of our own, for the packets from its swarm port). Our fetcher
// gets the file's root from the slow provider alone, then connects to the
// fast one too, and cats the file. The reader's runs go direct to the
// root's sender, within its window, which its measured rate keeps small:
// the rest go through boxo's session, which finds the fast provider, and
// then direct to it. Without the windows the slow provider sent 97% of the
// file (docs/bitswap.md, "Nineteenth pass"); here it must send less than
// half, and the fetcher's stats must show wants sent to the other peer.
// Creating the namespace needs root (CI runs as root).
func TestCatFromASlowProviderThatSentTheRootUsesTheFastOne(t *testing.T) {
	defer failOnPanic(t)
	if os.Getenv(slowProviderNetnsEnv) == "" {
		// htb on loopback: bring its MTU down to Ethernet's, as on a
		// real link.
		runInNetns(t, "hlslowprov", slowProviderNetnsEnv,
			[]string{"ip", "link", "set", "lo", "mtu", "1500", "up"})
		return
	}
	bin := ourBin(t)
	h := newHarness(t, bin)
	slow, fast := newNode(t, h), newNode(t, h)
	fetcher := h.NewNode().Init("--profile=highload-log")
	fetcher.UpdateConfig(func(cfg *config.Config) {
		cfg.Routing.Type = config.NewOptionalString("none")
		cfg.Bootstrap = []string{}
	})
	startDaemon(slow)
	startDaemon(fast)
	startDaemon(fetcher)
	defer stopDaemon(t, fetcher)
	defer stopDaemon(t, fast)
	defer stopDaemon(t, slow)

	root, data := addRandom(t, slow, 32<<20, 256<<10, 11)
	again := strings.TrimSpace(mustRun(t, fast, transferTimeout, bytes.NewReader(data),
		"add", "-Q", "--chunker=size-262144", "--cid-version=1", "--raw-leaves").Stdout.String())
	if again != root {
		t.Fatalf("the fast provider added %s, the slow one %s", again, root)
	}
	port, err := slow.SwarmAddrs()[0].ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	tc := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil {
			t.Fatalf("tc %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	tc("qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10")
	tc("class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit")
	tc("class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", slowProviderRate)
	tc("filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
		"match", "ip", "sport", port, "0xffff", "flowid", "1:20")

	// The root from the slow provider alone: it is the root's sender.
	connect(t, fetcher, slow)
	mustRun(t, fetcher, transferTimeout, nil, "--timeout=60s", "block", "get", root)
	connect(t, fetcher, fast)

	sentBefore := bitswapDataSent(t, slow) + bitswapDataSent(t, fast)
	slowBefore := bitswapDataSent(t, slow)
	start := time.Now()
	got := mustRun(t, fetcher, transferTimeout, nil, "--timeout=120s", "cat", root).Stdout.Bytes()
	took := time.Since(start)
	if !bytes.Equal(got, data) {
		t.Fatalf("cat returned %d bytes that differ from the %d added", len(got), len(data))
	}
	fromSlow := bitswapDataSent(t, slow) - slowBefore
	total := bitswapDataSent(t, slow) + bitswapDataSent(t, fast) - sentBefore
	st := policyStats(t, fetcher)
	if st.Prefetch == nil {
		t.Fatal("the fetcher reports no prefetcher")
	}
	d := st.Prefetch.Direct
	t.Logf("cat of %d MiB in %v: %d of %d bytes from the slow provider; direct wants %+v", len(data)>>20, took, fromSlow, total, d)
	if total < uint64(len(data)) {
		t.Fatalf("the providers sent %d bytes, less than the %d read", total, len(data))
	}
	if fromSlow*2 >= total {
		t.Fatalf("the slow provider sent %d of %d bytes: the reader's runs stayed on the root's sender (direct %+v)", fromSlow, total, d)
	}
	if d.Redirected == 0 || d.Spilled == 0 {
		t.Fatalf("direct stats %+v: want wants spilled past the slow peer's window and then sent to the fast one", d)
	}
	text := mustRun(t, fetcher, cmdTimeout, nil, "stats", "highload", "bitswap").Stdout.String()
	if want := fmt.Sprintf("past a peer's window, %d sent to another peer and %d left to Bitswap's session", d.Redirected, d.Spilled); !strings.Contains(text, want) {
		t.Fatalf("`ipfs stats highload bitswap` lacks %q:\n%s", want, text)
	}
	if bs := bitswapStat(t, fetcher); bs.DupBlksReceived*10 > bs.BlocksReceived {
		t.Fatalf("bitswap stat %+v: more than a tenth of the blocks came twice", bs)
	}
}

// bitswapDataSent is n's `ipfs bitswap stat` DataSent.
func bitswapDataSent(t *testing.T, n *harness.Node) uint64 {
	t.Helper()
	return bitswapStat(t, n).DataSent
}

// runInNetns runs the calling test again in a child process inside a
// fresh network namespace, after running each command of setup in it
// (`ip netns exec NS CMD...`), and deletes the namespace afterwards. env, set to 1 for
// the child, tells it it runs inside. The child's daemons die with it
// (Pdeathsig), so nothing outlives the namespace.
func runInNetns(t *testing.T, prefix, env string, setup ...[]string) {
	t.Helper()
	ns := fmt.Sprintf("%s%d", prefix, os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s (this test needs root and tc): %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	for _, s := range setup {
		ip(append([]string{"netns", "exec", ns}, s...)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0],
		"-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside netns %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("the test inside the namespace failed: %v", err)
	}
}
