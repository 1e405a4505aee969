package datastore

import (
	"container/heap"
	"container/list"
	"math"

	"github.com/maypok86/otter/v2"
)

// Request is one cache lookup: a key and the byte size of its value.
type Request struct {
	// Key identifies the value (the trace uses the Zipf rank).
	Key uint32
	// Size is the value's size in bytes, its weight in the cache.
	Size int64
}

// CacheResult counts the hits of one cache simulation.
type CacheResult struct {
	// Requests and Hits count lookups.
	Requests, Hits int
	// Bytes and HitBytes are the same weighted by value size.
	Bytes, HitBytes int64
}

// HitRatio is Hits/Requests (0 for no requests).
func (r CacheResult) HitRatio() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Hits) / float64(r.Requests)
}

// ByteHitRatio is HitBytes/Bytes (0 for no requests).
func (r CacheResult) ByteHitRatio() float64 {
	if r.Bytes == 0 {
		return 0
	}
	return float64(r.HitBytes) / float64(r.Bytes)
}

func (r *CacheResult) record(req Request, hit bool) {
	r.Requests++
	r.Bytes += req.Size
	if hit {
		r.Hits++
		r.HitBytes += req.Size
	}
}

// never is the next use of a key that is not requested again.
const never = math.MaxInt

// NextUses returns, for every request, the index of the next request of the
// same key, or math.MaxInt if there is none.
func NextUses(reqs []Request) []int {
	next := make([]int, len(reqs))
	last := make(map[uint32]int)
	for i := len(reqs) - 1; i >= 0; i-- {
		if j, ok := last[reqs[i].Key]; ok {
			next[i] = j
		} else {
			next[i] = never
		}
		last[reqs[i].Key] = i
	}
	return next
}

// Belady simulates the clairvoyant cache of capacity bytes over reqs: on a
// miss the value is admitted, then the cached value whose next use is
// farthest in the future is evicted, repeatedly, until the contents fit
// again. The new value competes too, so a value used later than everything
// cached is simply not admitted (bypass), and one never used again is never
// kept.
//
// With equal sizes this is Belady's MIN, which is optimal. With byte-sized
// values finding the optimum is NP-hard; this "farthest next use until it
// fits" rule is the standard size-aware heuristic used as the offline
// yardstick in cache papers. It is a near-optimal reference, not a proven
// upper bound: an online policy can occasionally beat it on request hit
// ratio by preferring small values.
func Belady(reqs []Request, capacity int64) CacheResult {
	var res CacheResult
	next := NextUses(reqs)
	h := &farthestHeap{pos: make(map[uint32]int)}
	var used int64
	for i, req := range reqs {
		if idx, ok := h.pos[req.Key]; ok {
			res.record(req, true)
			h.items[idx].next = next[i]
			heap.Fix(h, idx)
			continue
		}
		res.record(req, false)
		if req.Size > capacity || next[i] == never {
			continue
		}
		heap.Push(h, beladyItem{key: req.Key, size: req.Size, next: next[i]})
		used += req.Size
		for used > capacity {
			it := heap.Pop(h).(beladyItem)
			used -= it.size
		}
	}
	return res
}

type beladyItem struct {
	key  uint32
	size int64
	next int
}

// farthestHeap is a max-heap on next use, with each key's index kept in pos.
type farthestHeap struct {
	items []beladyItem
	pos   map[uint32]int
}

func (h *farthestHeap) Len() int           { return len(h.items) }
func (h *farthestHeap) Less(i, j int) bool { return h.items[i].next > h.items[j].next }
func (h *farthestHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.pos[h.items[i].key] = i
	h.pos[h.items[j].key] = j
}
func (h *farthestHeap) Push(x any) {
	it := x.(beladyItem)
	h.pos[it.key] = len(h.items)
	h.items = append(h.items, it)
}
func (h *farthestHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	delete(h.pos, it.key)
	return it
}

// LRU is a byte-bounded least-recently-used cache of keys (values are not
// kept: only their sizes matter to a simulation). It is not safe for
// concurrent use.
type LRU struct {
	capacity, used int64
	order          *list.List // front is the most recent; elements hold Request
	index          map[uint32]*list.Element
}

// NewLRU returns an empty LRU that holds at most capacity bytes.
func NewLRU(capacity int64) *LRU {
	return &LRU{capacity: capacity, order: list.New(), index: make(map[uint32]*list.Element)}
}

// Get reports whether key is cached and, if so, makes it the most recent.
func (c *LRU) Get(key uint32) bool {
	e, ok := c.index[key]
	if ok {
		c.order.MoveToFront(e)
	}
	return ok
}

// Add caches req as the most recent entry, evicting the least recent ones
// until it fits. A value larger than the whole cache is not admitted.
func (c *LRU) Add(req Request) {
	if e, ok := c.index[req.Key]; ok {
		c.used += req.Size - e.Value.(Request).Size
		e.Value = req
		c.order.MoveToFront(e)
	} else {
		if req.Size > c.capacity {
			return
		}
		c.index[req.Key] = c.order.PushFront(req)
		c.used += req.Size
	}
	for c.used > c.capacity {
		e := c.order.Back()
		old := e.Value.(Request)
		c.order.Remove(e)
		delete(c.index, old.Key)
		c.used -= old.Size
	}
}

// Len is the number of cached keys.
func (c *LRU) Len() int { return len(c.index) }

// Used is the number of cached bytes.
func (c *LRU) Used() int64 { return c.used }

// SimulateLRU runs reqs through an LRU of capacity bytes (admit on miss).
func SimulateLRU(reqs []Request, capacity int64) CacheResult {
	var res CacheResult
	c := NewLRU(capacity)
	for _, req := range reqs {
		hit := c.Get(req.Key)
		res.record(req, hit)
		if !hit {
			c.Add(req)
		}
	}
	return res
}

// SimulateOtter runs reqs through an otter v2 cache bounded to capacity
// bytes by a weigher (W-TinyLFU: a frequency sketch decides admission and
// eviction). On a miss the value is offered to the cache, as a read-through
// memory tier would. Maintenance (admission and eviction) runs on a
// synchronous executor, so the cache is back within its weight after every
// Set instead of whenever a background goroutine gets scheduled.
func SimulateOtter(reqs []Request, capacity int64) CacheResult {
	var res CacheResult
	c := otter.Must(&otter.Options[uint32, uint32]{
		MaximumWeight: uint64(capacity),
		Weigher:       func(_ uint32, size uint32) uint32 { return size },
		Executor:      func(fn func()) { fn() },
	})
	defer c.StopAllGoroutines()
	for _, req := range reqs {
		_, hit := c.GetIfPresent(req.Key)
		res.record(req, hit)
		if !hit {
			c.Set(req.Key, uint32(req.Size))
		}
	}
	return res
}
