//go:build linux && (amd64 || arm64)

package hugepages

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// vmFlags returns the VmFlags of the mapping of /proc/self/smaps that holds
// address p.
func vmFlags(t *testing.T, p uintptr) []string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if a, b, ok := strings.Cut(strings.Fields(line)[0], "-"); ok && !strings.HasSuffix(line, ":") && !strings.Contains(strings.Fields(line)[0], ":") {
			start, err1 := strconv.ParseUint(a, 16, 64)
			end, err2 := strconv.ParseUint(b, 16, 64)
			if err1 == nil && err2 == nil {
				in = uintptr(start) <= p && p < uintptr(end)
				continue
			}
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.Fields(strings.TrimPrefix(line, "VmFlags:"))
		}
	}
	t.Fatalf("no mapping holds %#x", p)
	return nil
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

// TestStartMarksTheHeapAndItsGrowth runs against a fresh process's own
// heap: marks are process-wide and the heap only grows, so the steps run in
// one child process of this test binary (a rerun, -count=N, gets its own).
func TestStartMarksTheHeapAndItsGrowth(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		heapSteps(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStartMarksTheHeapAndItsGrowth$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestStartMarksTheHeapAndItsGrowth") {
		t.Fatalf("child process: %v\n%s", err, out)
	}
}

// childEnv marks the child process of TestStartMarksTheHeapAndItsGrowth.
const childEnv = "HUGEPAGES_TEST_CHILD"

// heapSteps is the body of TestStartMarksTheHeapAndItsGrowth, run in the
// child process.
func heapSteps(t *testing.T) {
	mode, err := SystemMode()
	if err != nil {
		t.Fatal(err)
	}
	early := new([4096]byte) // on the heap before Start, and faulted in
	early[0] = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := NewHeap(64 << 20)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); err == nil {
		t.Error("a second Start was accepted")
	}
	st := h.Status()
	if st.Mode != mode {
		t.Fatalf("Status().Mode = %q, the system's is %q", st.Mode, mode)
	}
	if mode != ModeMadvise {
		// always or never: nothing to mark, and the status says why.
		if st.Active || st.Passes != 0 || !strings.Contains(st.Detail, mode) {
			t.Fatalf("mode %s: status %+v; want inactive, no passes, a detail naming the mode", mode, st)
		}
		return
	}
	if !st.Active || st.Passes != 1 || st.MarkedBytes < 64<<20 {
		t.Fatalf("after Start: %+v; want active, 1 pass, at least the 64 MiB reserve marked", st)
	}
	// The heap mapped before Start is left as it is.
	if e := uintptr(unsafe.Pointer(early)); hasFlag(vmFlags(t, e), "hg") {
		t.Errorf("the heap mapped before Start (object at %#x) was marked: %v", e, vmFlags(t, e))
	}
	runtime.KeepAlive(early)
	// The dropped reserve must not count as live heap: the GC's next goal
	// stays near this small test's live heap, far below the reserve.
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(goal)
	if g := goal[0].Value.Uint64(); g >= 32<<20 {
		t.Errorf("heap goal after Start is %d bytes; the 64 MiB reserve inflated it", g)
	}

	// The reserve is where the heap grows next: a fresh 8 MiB object lands
	// in a marked mapping and, once touched, in huge pages. (Its start may
	// share a 2 MiB range with the heap from before Start, left unmarked:
	// its end is checked.)
	before := h.Status().AnonHugePagesBytes
	b := make([]byte, 8<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	p := uintptr(unsafe.Pointer(&b[len(b)-1]))
	if !hasFlag(vmFlags(t, p), "hg") {
		t.Fatalf("a fresh heap object at %#x is not in a MADV_HUGEPAGE mapping: %v", p, vmFlags(t, p))
	}
	if after := h.Status().AnonHugePagesBytes; after < before+Size {
		t.Errorf("AnonHugePages %d -> %d after touching 8 MiB of fresh heap; want at least one more huge page", before, after)
	}
	runtime.KeepAlive(b)

	// Growth past the reserve gets marked by the watcher. The object is
	// never touched, so it costs no resident memory.
	big := make([]byte, 256<<20)
	q := uintptr(unsafe.Pointer(&big[0]))
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := h.Status()
		if hasFlag(vmFlags(t, q), "hg") && st.Passes >= 2 && st.HeapMappedBytes >= 256<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the heap grew to %#x and the watcher did not mark it: %v; status %+v", q, vmFlags(t, q), st)
		}
		time.Sleep(10 * time.Millisecond) // poll interval, not a wait for an effect
	}

	// Off (memory pressure) marks the heap against huge pages; on again
	// marks it back.
	if err := h.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if fl := vmFlags(t, q); hasFlag(fl, "hg") || !hasFlag(fl, "nh") {
		t.Errorf("after SetEnabled(false): VmFlags %v; want nh, not hg", fl)
	}
	if st := h.Status(); st.Active || !strings.Contains(st.Detail, "NOHUGEPAGE") {
		t.Errorf("after SetEnabled(false): %+v; want inactive, a detail saying so", st)
	}
	if err := h.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if fl := vmFlags(t, q); !hasFlag(fl, "hg") {
		t.Errorf("after SetEnabled(true): VmFlags %v; want hg", fl)
	}
	runtime.KeepAlive(big)
}
