package blocklog

import (
	"fmt"
	"runtime"
	"testing"
)

// TestIndexMemoryAt1M measures the index's heap cost per block at one
// million Kubo-sized block keys (56 bytes) and fails above the stated bound
// (IndexBytesPerBlock plus the key's 64-byte allocation).
func TestIndexMemoryAt1M(t *testing.T) {
	const n = 1_000_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("/CIQ%052d", i) // 56 bytes, as "/" + base32 of a sha2-256 multihash
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d := &Datastore{index: make(map[string]entry)}
	for i, k := range keys {
		d.index[string([]byte(k))] = entry{seg: 1, off: uint32(i), vlen: 16384}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	runtime.KeepAlive(keys)
	runtime.KeepAlive(d)
	t.Logf("index: %.1f bytes per block at %d blocks (56-byte keys)", per, n)
	if bound := float64(IndexBytesPerBlock + 64); per > bound {
		t.Fatalf("index costs %.1f bytes per block, above the stated %v", per, bound)
	}
}
