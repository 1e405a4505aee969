//go:build linux

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/kubo/config"
)

// slowNetnsEnv marks the child run of TestSlowLinkPeerLeavesTheGoodClass
// that executes inside the rate-limited network namespace.
const slowNetnsEnv = "HIGHLOAD_IN_SLOW_NETNS"

// TestSlowLinkPeerLeavesTheGoodClass checks the wiring of connection
// quality into the Bitswap policy on real daemons over a really slow link:
// a network namespace of our own whose loopback is rate-limited by the
// kernel's token bucket filter (8 Mbit/s, up to 300 ms queued, MTU 1500). A fetcher
// pulls a file from our provider over it; once the fetcher has fetched
// enough to have a good record, the provider pings it (libp2p ping records
// the round trip, queued behind the transfer, in the peerstore), the
// adaptive connection manager rates the peer slow (SlowLatency 10ms), and
// the provider's policy keeps it out of the good class: `ipfs stats
// highload bitswap` counts it in slow_peers, `ipfs stats highload connmgr`
// lists it as slow. Creating the namespace needs root (CI runs as root).
func TestSlowLinkPeerLeavesTheGoodClass(t *testing.T) {
	defer failOnPanic(t)
	if os.Getenv(slowNetnsEnv) == "" {
		runInSlowNetns(t)
		return
	}
	h := newHarness(t, ourBin(t))
	provider, fetcher := newNode(t, h), newNode(t, h)
	setPlugin(provider, config.Plugin{Config: map[string]any{
		"ConnMgr": map[string]any{"SlowLatency": "10ms"},
	}})
	startDaemon(provider)
	startDaemon(fetcher)
	defer stopDaemon(t, fetcher)
	defer stopDaemon(t, provider)

	data := make([]byte, 16<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(mustRun(t, provider, transferTimeout, bytes.NewReader(data), "add", "-Q", "--chunker=size-4096").Stdout.String())
	mustRun(t, fetcher, cmdTimeout, nil, "swarm", "connect", provider.SwarmAddrs()[0].String()+"/p2p/"+provider.PeerID().String())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pinned := make(chan error, 1)
	go func() {
		// 16 MiB at 8 Mbit/s: about 17 s of a saturated link, ended by
		// cancel once the assertion holds.
		cmd := exec.CommandContext(ctx, h.IPFSBin, "pin", "add", "--progress=false", root)
		cmd.Env = append(os.Environ(), "IPFS_PATH="+fetcher.Dir)
		out, err := cmd.CombinedOutput()
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("pin add: %v: %s", err, out)
		} else {
			err = nil
		}
		pinned <- err
	}()

	fid := fetcher.PeerID().String()
	var last string
	if err := waitFor(60*time.Second, func() (bool, string) {
		select {
		case err := <-pinned:
			pinned <- err
			return true, "the pin ended before the peer was rated slow"
		default:
		}
		s := policyStats(t, provider)
		if s.SlowPeers >= 1 {
			return true, ""
		}
		// Measure the link while it carries the transfer.
		res := run(provider, cmdTimeout, nil, "ping", "-n", "2", "/p2p/"+fid)
		last = fmt.Sprintf("slow_peers %d, classes %+v, peers %+v; ping: %s%s", s.SlowPeers, s.Classes, s.Peers, res.Stdout.String(), res.Stderr.String())
		return false, last
	}); err != nil {
		t.Fatalf("the fetcher was never kept out of the good class: %v", err)
	}
	select {
	case err := <-pinned:
		if err == nil {
			err = fmt.Errorf("it finished")
		}
		cm := run(provider, cmdTimeout, nil, "stats", "highload", "connmgr").Stdout.String()
		t.Fatalf("the fetch ended before the slow rating could be checked (%v); last: %s\nconnmgr:\n%s", err, last, cm)
	default:
	}
	cm := mustRun(t, provider, cmdTimeout, nil, "stats", "highload", "connmgr").Stdout.String()
	if !strings.Contains(cm, "slow)") || strings.Contains(cm, "(0 slow)") {
		t.Fatalf("`ipfs stats highload connmgr` shows no slow peer:\n%s", cm)
	}
	bs := mustRun(t, provider, cmdTimeout, nil, "stats", "highload", "bitswap").Stdout.String()
	if !strings.Contains(bs, "Slow peers kept out of the good class: 1") {
		t.Fatalf("`ipfs stats highload bitswap` text lacks the slow peer:\n%s", bs)
	}
	cancel()
	if err := <-pinned; err != nil {
		t.Fatal(err)
	}
}

// runInSlowNetns runs the calling test again in a child process inside a
// fresh network namespace whose loopback carries a token bucket filter
// (see runInNetns).
func runInSlowNetns(t *testing.T) {
	t.Helper()
	// tbf drops packets larger than its bucket, and loopback's MTU is
	// 64 KiB: bring the MTU down to Ethernet's.
	runInNetns(t, "hlslow", slowNetnsEnv,
		[]string{"ip", "link", "set", "lo", "mtu", "1500", "up"},
		[]string{"tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "8mbit", "burst", "64kb", "latency", "300ms"})
}
