package tiered

import (
	"fmt"
	"runtime"
	"testing"

	ds "github.com/ipfs/go-datastore"
)

// TestIndexMemoryAt1M measures the location index at one million blocks and
// asserts the documented bound, IndexBytesPerBlock.
func TestIndexMemoryAt1M(t *testing.T) {
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ix := newIndex()
	for i := 0; i < n; i++ {
		h := hashKey(ds.NewKey(fmt.Sprintf("/CIQ%040d", i)))
		ix.place(h, i%3, stateRaw)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if ix.len() != n {
		t.Fatalf("index holds %d keys, want %d", ix.len(), n)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("location index: %.1f bytes per block at %d blocks", per, n)
	if per > IndexBytesPerBlock {
		t.Fatalf("location index costs %.1f bytes per block, documented bound %d", per, IndexBytesPerBlock)
	}
	if got := ix.blocks[0].Load() + ix.blocks[1].Load() + ix.blocks[2].Load(); got != n {
		t.Fatalf("per-tier counts sum to %d", got)
	}
	runtime.KeepAlive(ix)
}

func TestIndexEntryBits(t *testing.T) {
	ix := newIndex()
	h := uint64(0xdeadbeef12345678)
	ix.place(h, 3, stateFramed)
	for i := 0; i < 70000; i++ {
		ix.touch(h, 77)
	}
	e, _ := ix.get(h)
	if e.tier() != 3 || e.state() != stateFramed || e.freq() != 65535 || e.last() != 77 {
		t.Fatalf("entry %x: tier %d state %d freq %d last %d", e, e.tier(), e.state(), e.freq(), e.last())
	}
	ix.decay()
	ix.place(h, 1, stateRaw)
	e, _ = ix.get(h)
	if e.tier() != 1 || e.freq() != 32767 || e.last() != 77 {
		t.Fatalf("after decay and move: tier %d freq %d last %d", e.tier(), e.freq(), e.last())
	}
	if ix.blocks[1].Load() != 1 || ix.blocks[3].Load() != 0 {
		t.Fatal("per-tier counts not moved")
	}
	cold, hot := makeEntry(0, 0), e
	if cold.score(100, 600) >= hot.score(100, 600) {
		t.Fatal("a never-read block must rank colder than a hot one")
	}
}
