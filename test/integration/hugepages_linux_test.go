//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/kubo/config"
)

// heapFlagged reports whether any writable anonymous mapping of process pid
// carries VmFlag f (hg: MADV_HUGEPAGE, nh: MADV_NOHUGEPAGE).
func heapFlagged(t *testing.T, pid int, f string) bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmFlags:") {
			for _, x := range strings.Fields(line)[1:] {
				if x == f {
					return true
				}
			}
		}
	}
	return false
}

// TestHugePagesBackTheDaemonsHeap checks on a real daemon that the Go heap
// gets huge pages when the machine's THP mode is madvise (this project's
// machines), that the state is reported, and that the key turns it off.
func TestHugePagesBackTheDaemonsHeap(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	raw, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		t.Fatalf("this test reads the machine's THP mode: %v", err)
	}
	mode := ""
	for _, f := range strings.Fields(string(raw)) {
		if strings.HasPrefix(f, "[") {
			mode = strings.Trim(f, "[]")
		}
	}
	n := newNode(t, newHarness(t, ourBin(t)))
	startDaemon(n)
	s := hugeOf(t, n)
	if s == nil || s.Mode != mode {
		t.Fatalf("HugePages = %+v; want a status with the machine's THP mode %q", s, mode)
	}
	pid := n.Daemon.Cmd.Process.Pid
	if mode != "madvise" {
		// always: the kernel already does it; never: refused. Either
		// way nothing is marked and the status says why.
		if s.Active || s.Passes != 0 || !strings.Contains(s.Detail, mode) || heapFlagged(t, pid, "hg") {
			t.Fatalf("THP %s: %+v; want inactive, nothing marked, a detail naming the mode", mode, s)
		}
	} else {
		if !s.Active || s.MarkedBytes < 256<<20 || s.ReserveBytes != 256<<20 || !heapFlagged(t, pid, "hg") {
			t.Fatalf("THP madvise: %+v; want active with the 256 MiB reserve marked", s)
		}
		// An add makes the daemon's heap grow: it must land in huge pages.
		mustRun(t, n, 2*time.Minute, bytes.NewReader(randomBytes(48<<20)), "add", "-q", "--chunker=size-262144")
		if s = hugeOf(t, n); s.AnonHugePagesBytes < 4<<20 {
			t.Fatalf("after a 48 MiB add: %+v; want some of the heap in huge pages", s)
		}
		text := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "health").Stdout.String()
		if !strings.Contains(text, "huge pages:  on (THP madvise)") {
			t.Fatalf("health text lacks the huge page line:\n%s", text)
		}
		if got := withPrefix(metrics(t, n), "highload_hugepages_active "); len(got) != 1 || got[0] != "highload_hugepages_active 1" {
			t.Fatalf("highload_hugepages_active: %v", got)
		}
	}
	stopDaemon(t, n)

	setPlugin(n, config.Plugin{Config: map[string]any{"Runtime": map[string]any{"HugePages": false}}})
	startDaemon(n)
	if s := hugeOf(t, n); s != nil {
		t.Fatalf("Runtime.HugePages false: status %+v; want none", s)
	}
	if heapFlagged(t, n.Daemon.Cmd.Process.Pid, "hg") {
		t.Fatal("Runtime.HugePages false: a mapping is still marked MADV_HUGEPAGE")
	}
	c, ok := stats(t, n).component("hugepages")
	if !ok || c.Status != "disabled" || !strings.Contains(c.Detail, "Config.Runtime.HugePages is false") {
		t.Fatalf("hugepages component: %+v, %v", c, ok)
	}
	stopDaemon(t, n)
}
