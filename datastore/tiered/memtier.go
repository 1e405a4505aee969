package tiered

import (
	"sync"
	"sync/atomic"

	"github.com/maypok86/otter/v2"
)

// entryOverhead is the weight charged per cached value on top of its key and
// value bytes: otter's node, the map slot and the slice and string headers.
const entryOverhead = 96

// MinMemoryBudget is the smallest budget the memory tier shrinks to.
const MinMemoryBudget = 1 << 20

// memTier is the read cache: otter's W-TinyLFU bounded by bytes. It holds
// decoded values keyed by the datastore key string.
type memTier struct {
	mu       sync.Mutex // serialises budget changes
	capacity uint64     // configured budget
	cache    *otter.Cache[string, []byte]
	hits     atomic.Uint64
	misses   atomic.Uint64
	// deferred counts misses not cached because the block had fewer than
	// MemoryAdmitReads reads.
	deferred atomic.Uint64
}

func newMemTier(capacity uint64) *memTier {
	return &memTier{
		capacity: capacity,
		cache: otter.Must(&otter.Options[string, []byte]{
			MaximumWeight: capacity,
			Weigher:       weigh,
		}),
	}
}

func weigh(k string, v []byte) uint32 {
	w := uint64(len(k)) + uint64(cap(v)) + entryOverhead
	if w > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(w)
}

// add caches v unless it alone would take more than an eighth of the budget.
func (m *memTier) add(k string, v []byte) {
	if uint64(weigh(k, v)) > m.cache.GetMaximum()/8 {
		return
	}
	m.cache.Set(k, v)
}

func (m *memTier) remove(k string) { m.cache.Invalidate(k) }

// setBudget changes the byte budget, clamped to [MinMemoryBudget,
// capacity], evicting at once if the cache holds more.
func (m *memTier) setBudget(n uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n = min(max(n, MinMemoryBudget), m.capacity)
	m.cache.SetMaximum(n)
	return n
}

func (m *memTier) budget() uint64 { return m.cache.GetMaximum() }
