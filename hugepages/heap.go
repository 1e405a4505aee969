package hugepages

import (
	"context"
	"errors"
	"runtime/metrics"
	"sync"
	"time"
)

// Size is the huge page size of x86-64 and of arm64 with 4 KiB pages.
const Size = 2 << 20

// WatchInterval is how often a started Heap checks whether the runtime
// mapped more heap.
const WatchInterval = 250 * time.Millisecond

// ErrUnsupported is returned on platforms where the Go heap's mappings
// cannot be found (anything but Linux on amd64 or arm64).
var ErrUnsupported = errors.New("hugepages: only Linux on amd64 and arm64 is supported")

// Status is what a Heap reports: `ipfs stats highload health` shows it.
type Status struct {
	// Mode is the system's THP mode (always, madvise, never), or empty when
	// it could not be read.
	Mode string
	// Active is true while the heap's mappings are marked for huge pages.
	Active bool
	// Detail says why the heap is not marked, or what was done.
	Detail string
	// ReserveBytes is the heap growth Start mapped and marked in one piece.
	ReserveBytes uint64
	// HeapMappedBytes is the Go heap's mapped size at the last check.
	HeapMappedBytes uint64
	// MarkedBytes is the size of the heap mappings marked at the last pass.
	MarkedBytes uint64
	// Passes counts the passes that (re)marked the heap's mappings.
	Passes uint64
	// AnonHugePagesBytes is the process's anonymous memory in huge pages
	// (AnonHugePages in /proc/self/smaps_rollup); 0 when unreadable.
	AnonHugePagesBytes uint64
}

// Heap marks the Go heap's mappings for huge pages; see the package doc.
// Its methods are safe for concurrent use.
type Heap struct {
	reserve int

	mu      sync.Mutex
	status  Status
	enabled bool
	started bool
	// touched are the 2 MiB ranges of the heap that held resident pages
	// before Start: they were faulted in 4 KiB at a time already, and a
	// mark there would only let khugepaged collapse sparse ranges into
	// whole resident ones.
	touched []mapping
}

// NewHeap returns a Heap that grows the heap by reserve bytes at Start
// (0: none).
func NewHeap(reserve int) *Heap {
	if reserve < 0 {
		reserve = 0
	}
	return &Heap{reserve: reserve, enabled: true, status: Status{ReserveBytes: uint64(reserve)}}
}

// Start reads the system's mode and, in madvise mode, reserves and marks
// the heap, then watches it until ctx ends. It returns an error only when
// the heap should be marked and could not be; in always or never mode it
// does nothing and returns nil (Status says why).
func (h *Heap) Start(ctx context.Context) error {
	mode, err := SystemMode()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return errors.New("hugepages: heap already started")
	}
	h.started = true
	h.status.Mode = mode
	switch {
	case err != nil:
		h.status.Detail = err.Error()
		return nil
	case mode == ModeAlways:
		h.status.Detail = "the kernel backs all anonymous memory with huge pages (THP always); nothing to mark"
		return nil
	case mode == ModeNever:
		h.status.Detail = "the kernel's THP mode is never; huge pages are off system-wide"
		return nil
	}
	before, err := readHeap()
	if err == nil {
		h.touched, err = resident(before)
	}
	if err != nil {
		h.status.Detail = err.Error()
		return err
	}
	if h.reserve > 0 {
		reserveHeap(h.reserve)
	}
	if err := h.passLocked(); err != nil {
		h.status.Detail = err.Error()
		return err
	}
	go h.watch(ctx)
	return nil
}

// SetEnabled marks the heap for huge pages (true) or against them (false),
// now and on every later growth. It is a no-op unless Start marked the heap.
func (h *Heap) SetEnabled(on bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.enabled == on {
		return nil
	}
	h.enabled = on
	if !h.started || h.status.Mode != ModeMadvise {
		return nil
	}
	return h.passLocked()
}

// Status returns the latest state.
func (h *Heap) Status() Status {
	h.mu.Lock()
	s := h.status
	h.mu.Unlock()
	s.AnonHugePagesBytes = anonHugePages()
	return s
}

// watch re-marks the heap whenever its mapped size grew.
func (h *Heap) watch(ctx context.Context) {
	t := time.NewTicker(WatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mapped := heapMapped()
		h.mu.Lock()
		if mapped > h.status.HeapMappedBytes {
			if err := h.passLocked(); err != nil {
				h.status.Detail = err.Error()
			}
		}
		h.mu.Unlock()
	}
}

// passLocked marks every heap mapping per h.enabled. h.mu is held.
func (h *Heap) passLocked() error {
	h.status.HeapMappedBytes = heapMapped()
	ms, err := readHeap()
	if err != nil {
		h.status.Active = false
		return err
	}
	marked, err := advise(subtract(ms, h.touched), h.enabled)
	if err != nil {
		h.status.Active = false
		return err
	}
	h.status.Passes++
	h.status.MarkedBytes = marked
	h.status.Active = h.enabled
	if h.enabled {
		h.status.Detail = "Go heap marked MADV_HUGEPAGE"
	} else {
		h.status.Detail = "Go heap marked MADV_NOHUGEPAGE (memory pressure)"
	}
	return nil
}

// heapMappedNames are the runtime/metrics classes that add up to the heap's
// mapped address space.
var heapMappedNames = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/stacks:bytes",
}

// heapMapped returns the Go heap's mapped bytes.
func heapMapped() uint64 {
	s := make([]metrics.Sample, len(heapMappedNames))
	for i, n := range heapMappedNames {
		s[i].Name = n
	}
	metrics.Read(s)
	var sum uint64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			sum += x.Value.Uint64()
		}
	}
	return sum
}
