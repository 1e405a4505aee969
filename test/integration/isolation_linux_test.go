//go:build linux

package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/kubo/test/cli/harness"
)

// isoStatus mirrors one entry of `ipfs stats highload health --enc=json`'s
// Isolation list (autoscale.Status on the wire).
type isoStatus struct {
	Name                string
	State               string
	ConsecutiveFailures int
	Isolations          int
	TotalIsolations     uint64
	TotalFailures       uint64
	Refused             uint64
	Until               time.Time
	LastError           string
}

// isolationOf returns name's isolator record from the health command, and
// whether it was reported at all.
func isolationOf(t *testing.T, n *harness.Node, name string) (isoStatus, bool) {
	t.Helper()
	res := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "health", "--enc=json")
	var s struct{ Isolation []isoStatus }
	if err := json.Unmarshal(res.Stdout.Bytes(), &s); err != nil {
		t.Fatalf("decoding `ipfs stats highload health --enc=json`: %v\n%s", err, res.Stdout.String())
	}
	for _, st := range s.Isolation {
		if st.Name == name {
			return st, true
		}
	}
	return isoStatus{}, false
}

// flatfsName is the flatfs file name (without .data) of a block's CID.
func flatfsName(t *testing.T, c string) string {
	t.Helper()
	dec, err := cid.Decode(c)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(dshelp.MultihashToDsKey(dec.Hash()).String(), "/")
}

// blockGet reads a block through the daemon's API.
func blockGet(client *http.Client, api, c string) ([]byte, error) {
	resp, err := client.Post(api+"/api/v0/block/get?arg="+c, "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("block/get %s: %s: %s", c, resp.Status, b)
	}
	return b, err
}

// TestTieredTierIsolatedWhenReadOnly breaks the fast durable tier for real:
// it is a tmpfs of its own, remounted read-only under a running daemon.
// Writes through the daemon must keep succeeding (new blocks spill to the
// slow tier), the fast tier must be isolated after 5 failed writes and
// reported (health command, metrics), and while isolated its disk must not
// be retried hot: the writes that reach it are the 5 that isolated it plus
// one probe per backoff (5s, doubling), the others are refused without
// touching it; a probe that fails isolates it for twice as long. Reads of
// the blocks it holds keep working and do not readmit it (a read-only disk
// reads fine), nor do re-puts of blocks it holds fail. Once remounted read-write, a probe
// write readmits it and new blocks land there again. Every acknowledged
// block is present and valid, in one tier only.
//
// Mounting needs root (CI runs as root); without it the test fails and says
// so, it does not skip.
func TestTieredTierIsolatedWhenReadOnly(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newTieredNode(t, h, twoTierSpecOnTmpfs, twoTierIdentity)
	fast, slow := filepath.Join(n.Dir, "blocks"), filepath.Join(n.Dir, "slowblocks")
	mountTmpfs(t, fast, "64m")
	remount := func(flags uintptr) {
		t.Helper()
		if err := syscall.Mount("tmpfs", fast, "tmpfs", syscall.MS_REMOUNT|flags, "size=64m"); err != nil {
			t.Fatalf("remounting %s (flags %#x): %v", fast, flags, err)
		}
	}
	startDaemon(n)
	client := &http.Client{Timeout: cmdTimeout}
	api := n.APIURL()
	acked := map[string][]byte{}
	put := func(what string) string {
		t.Helper()
		b := make([]byte, 64<<10)
		rand.Read(b)
		c, err := blockPut(client, api, b)
		if err != nil {
			t.Fatalf("block put (%s): %v", what, err)
		}
		acked[c] = b
		return c
	}
	const name = "tiered/fast"

	// 1. Healthy: blocks land in the fast tier, nothing is reported.
	var before []string
	for i := 0; i < 4; i++ {
		before = append(before, put("healthy"))
	}
	inFast := flatfsKeys(t, fast)
	for _, c := range before {
		if !inFast[flatfsName(t, c)] {
			t.Fatalf("block %s not in the healthy fast tier", c)
		}
	}
	if st, ok := isolationOf(t, n, name); ok && st.State != "healthy" {
		t.Fatalf("healthy fast tier reported as %+v", st)
	}

	// 2. Read-only: every write still succeeds, in the slow tier.
	remount(syscall.MS_RDONLY)
	broke := time.Now()
	const writes = 40
	var spilled []string
	for i := 0; i < writes; i++ {
		spilled = append(spilled, put("fast tier read-only"))
	}
	inFast, inSlow := flatfsKeys(t, fast), flatfsKeys(t, slow)
	for _, c := range spilled {
		if k := flatfsName(t, c); !inSlow[k] || inFast[k] {
			t.Fatalf("block %s written while the fast tier is read-only: in slow %v, in fast %v; want slow only", c, inSlow[k], inFast[k])
		}
	}
	st, ok := isolationOf(t, n, name)
	elapsed := time.Since(broke)
	if !ok || st.State == "healthy" || st.TotalIsolations == 0 {
		t.Fatalf("after %d writes to a read-only tier: %+v (reported %v); want it isolated", writes, st, ok)
	}
	if !strings.Contains(st.LastError, "read-only file system") {
		t.Fatalf("isolation's last error %q does not say why", st.LastError)
	}
	// Not retried hot: 5 failures isolate it, then at most one probe per
	// backoff (the first is 5s) reaches the disk.
	maxFailures := uint64(5 + 1 + int(elapsed/(5*time.Second)))
	if st.TotalFailures > maxFailures || st.TotalFailures+st.Refused < writes {
		t.Fatalf("%d writes in %s: %d reached the read-only disk and failed, %d refused; want at most %d to reach it and the rest refused",
			writes, elapsed.Round(time.Millisecond), st.TotalFailures, st.Refused, maxFailures)
	}
	t.Logf("%d writes in %s with the fast tier read-only: %d reached its disk, %d refused; state %s, next probe at %s",
		writes, elapsed.Round(time.Millisecond), st.TotalFailures, st.Refused, st.State, st.Until.Format(time.TimeOnly))
	text := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "health").Stdout.String()
	if !strings.Contains(text, name+": isolated") && !strings.Contains(text, name+": probing") {
		t.Fatalf("health text does not show %s isolated:\n%s", name, text)
	}
	lines := metrics(t, n)
	stateLine := withPrefix(lines, `highload_health_isolation_state{name="`+name+`"}`)
	if len(stateLine) != 1 || strings.HasSuffix(stateLine[0], " 0") {
		t.Fatalf("isolation state metric: %v", stateLine)
	}
	if len(withPrefix(lines, `highload_health_isolation_refused_total{name="`+name+`"}`)) != 1 {
		t.Fatal("no refused_total metric for the isolated tier")
	}

	// Reads of what the fast tier holds work, and do not readmit it; so
	// does a re-put of a block it holds (nothing needs writing).
	for _, c := range before {
		got, err := blockGet(client, api, c)
		if err != nil || !bytes.Equal(got, acked[c]) {
			t.Fatalf("reading %s from the read-only tier: %v", c, err)
		}
		if _, err := blockPut(client, api, acked[c]); err != nil {
			t.Fatalf("re-putting %s, held by the read-only tier: %v", c, err)
		}
	}
	if st, _ := isolationOf(t, n, name); st.State == "healthy" {
		t.Fatalf("reads readmitted the read-only tier: %+v", st)
	}

	// The probe interval: no write reaches the disk before the backoff
	// ends (st.Until); then one probe does, fails, and isolates the tier
	// again for twice as long. Writes keep flowing meanwhile.
	first := st
	if err := waitFor(time.Minute, func() (bool, string) {
		put("waiting for the probe")
		st, _ = isolationOf(t, n, name)
		return st.TotalFailures > first.TotalFailures && st.State == "isolated", fmt.Sprintf("%+v", st)
	}); err != nil {
		t.Fatalf("no probe reached the read-only tier after its backoff: %v", err)
	}
	if st.TotalFailures != first.TotalFailures+1 || st.Isolations != first.Isolations+1 || st.Refused <= first.Refused {
		t.Fatalf("after the backoff: %+v (before: %+v); want exactly one more failure (the probe), one more isolation in a row, more refusals", st, first)
	}
	if gap := st.Until.Sub(first.Until); gap < 10*time.Second {
		t.Fatalf("next probe %s after the first one was allowed; want at least the doubled backoff, 10s", gap)
	}
	t.Logf("probe failed as expected; %d failures, %d refused; next probe at %s (isolation %d in a row)",
		st.TotalFailures, st.Refused, st.Until.Format(time.TimeOnly), st.Isolations)

	// 3. Read-write again: the next probe write readmits it, and new blocks
	// land in it again.
	remount(0)
	fixed := time.Now()
	var probes []string
	if err := waitFor(2*time.Minute, func() (bool, string) {
		probes = append(probes, put("probing"))
		st, _ := isolationOf(t, n, name)
		return st.State == "healthy", fmt.Sprintf("%+v", st)
	}); err != nil {
		t.Fatalf("the fast tier was not readmitted after the remount: %v", err)
	}
	var after []string
	for i := 0; i < 4; i++ {
		after = append(after, put("readmitted"))
	}
	inFast = flatfsKeys(t, fast)
	for _, c := range after {
		if !inFast[flatfsName(t, c)] {
			t.Fatalf("block %s written after readmission is not in the fast tier", c)
		}
	}
	t.Logf("readmitted %s after the remount (%d writes while waiting for the probe)", time.Since(fixed).Round(time.Millisecond), len(probes))
	checkTieredRepo(t, n, acked)
	stopDaemon(t, n)
}
