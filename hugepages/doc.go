// Package hugepages backs the Go heap with transparent huge pages (THP).
//
// The model: on Linux with THP in "madvise" mode (the default of most
// distributions, and of this project's machines), anonymous memory gets
// 2 MiB pages only inside mappings marked with madvise(MADV_HUGEPAGE). The Go
// runtime (since Go 1.21.1) marks none of its heap, so every 4 KiB page the
// heap first touches costs a page fault; on a virtual machine that is about
// 16 µs, which makes a freshly started daemon spend a fifth of its CPU on
// faults while it fetches (docs/health.md, "Huge pages for the Go heap").
//
// The runtime maps its heap in pieces of 4 MiB or more, each a fresh mapping
// without the mark, inside its arena address range. A Heap marks those
// mappings:
//
//   - Start first grows the heap by Reserve bytes in one allocation that it
//     drops at once, so the heap's first growth after start already lies in
//     one marked mapping (the memory is never touched, so this costs no
//     resident memory);
//   - then a watcher reads the heap's mapped size from runtime/metrics every
//     WatchInterval and, when it grew, marks the new mappings too.
//
// SetEnabled(false) marks the heap MADV_NOHUGEPAGE instead (the plugin does
// so under memory pressure): no new huge pages, and the runtime's scavenger
// splits and returns the existing ones as it frees memory. A huge page is
// resident as a whole, so a partly used one costs up to 2 MiB more than 4 KiB
// pages would.
//
// In "always" mode the kernel already backs the heap with huge pages and in
// "never" mode it refuses them; a Heap then does nothing and says why in its
// Status. The heap's mappings are found in /proc/self/maps as the run of
// adjacent anonymous mappings around a heap object: the runtime lays its
// arenas out contiguously from a base that Go 1.26 randomizes. Only Linux on
// amd64 and arm64 is supported.
package hugepages
