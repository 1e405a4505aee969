//go:build linux && (amd64 || arm64)

package hugepages

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readHeap returns the Go heap's writable mappings.
func readHeap() ([]mapping, error) {
	probe := new([64]byte) // a heap object: the heap is the run around it
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, fmt.Errorf("hugepages: %w", err)
	}
	defer f.Close()
	ms, err := heapMappings(f, uintptr(unsafe.Pointer(probe)))
	runtime.KeepAlive(probe)
	return ms, err
}

// resident returns the parts of ms, in huge-page-aligned pieces clipped to
// their mapping, that hold at least one resident page (mincore).
func resident(ms []mapping) ([]mapping, error) {
	page := uintptr(os.Getpagesize())
	var out []mapping
	vec := make([]byte, Size/page)
	for _, m := range ms {
		for lo := m.start &^ (Size - 1); lo < m.end; lo += Size {
			a, b := max(lo, m.start), min(lo+Size, m.end)
			_, _, errno := unix.Syscall(unix.SYS_MINCORE, a, b-a, uintptr(unsafe.Pointer(&vec[0])))
			if errno != 0 {
				return nil, fmt.Errorf("hugepages: mincore %#x-%#x: %w", a, b, errno)
			}
			for _, v := range vec[:(b-a+page-1)/page] {
				if v&1 != 0 {
					out = append(out, mapping{a, b})
					break
				}
			}
		}
	}
	return out, nil
}

// advise marks the ranges MADV_HUGEPAGE (on) or MADV_NOHUGEPAGE and returns
// the bytes marked.
func advise(ms []mapping, on bool) (uint64, error) {
	advice := unix.MADV_HUGEPAGE
	if !on {
		advice = unix.MADV_NOHUGEPAGE
	}
	var marked uint64
	for _, m := range ms {
		// The raw call takes the range as integers: the memory is the
		// runtime's, never a Go object of ours. A range read a moment ago
		// that is no longer mapped (ENOMEM) is skipped.
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, uintptr(advice))
		if errno == unix.ENOMEM {
			continue
		}
		if errno != 0 {
			return marked, fmt.Errorf("hugepages: madvise %#x-%#x: %w", m.start, m.end, errno)
		}
		marked += uint64(m.end - m.start)
	}
	return marked, nil
}

// reserveHeap grows the heap by n bytes in one mapping and drops them at
// once. A fresh allocation that large comes from newly mapped memory, which
// the runtime neither zeroes nor touches. The object may survive the GC
// cycle its allocation starts, and the next heap goal would then be twice
// live heap plus n: the forced collection brings the goal back to the live
// heap's.
func reserveHeap(n int) {
	b := make([]byte, n)
	runtime.KeepAlive(b)
	b = nil
	runtime.GC()
}

// anonHugePages returns the process's AnonHugePages in bytes.
func anonHugePages() uint64 {
	f, err := os.Open("/proc/self/smaps_rollup")
	if err != nil {
		return 0
	}
	defer f.Close()
	n, _ := parseSmapsKB(f, "AnonHugePages")
	return n
}
