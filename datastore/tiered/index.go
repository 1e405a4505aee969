package tiered

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	ds "github.com/ipfs/go-datastore"
)

// The location index maps a key to the durable tier that holds it, so a read
// goes to one tier instead of probing each. It also keeps the access history
// the mover ranks blocks by.
//
// Memory: each block costs one map slot of a uint64 key hash and a packed
// uint64 entry (16 bytes) plus one control byte, in Go's swiss-table maps
// whose load stays between 7/16 and 7/8: 19 to 39 bytes per block, stated
// as IndexBytesPerBlock = 40 and checked at 1M blocks in index_test.go.
// Keys themselves are not kept: 10M blocks cost at most ~400 MB less than
// the ~1 GB a map of key strings would.
//
// Keys are identified by a 64-bit xxhash. Two distinct keys with the same
// hash (probability ~n²/2^65: 3e-8 at 1M blocks, 3e-6 at 10M) share an entry:
// a read still finds either one (a miss in the named tier falls back to
// probing every tier), but deleting one may hide the other until the next
// open rebuilds the index from the tiers. This is the price of not storing
// keys.
//
// Entry layout (uint64): bits 0-3 tier, bits 4-5 frame state, bits 16-31
// access frequency (saturating, halved by decay), bits 32-63 last access in
// seconds since the store opened.

// IndexBytesPerBlock is the bound on the location index's memory per block.
const IndexBytesPerBlock = 40

const (
	indexShards = 256

	stateUnknown = 0 // not read since open: may be raw or a frame
	stateRaw     = 1 // stored raw: the child's size is the value's size
	stateFramed  = 2 // stored as a frame: the size is in its header
)

type entry uint64

func makeEntry(tier int, state uint8) entry { return entry(uint64(tier&0xf) | uint64(state&3)<<4) }
func (e entry) tier() int                   { return int(e & 0xf) }
func (e entry) state() uint8                { return uint8(e>>4) & 3 }
func (e entry) freq() uint16                { return uint16(e >> 16) }
func (e entry) last() uint32                { return uint32(e >> 32) }
func (e entry) withPlace(tier int, state uint8) entry {
	return e&^0x3f | makeEntry(tier, state)
}

// score ranks an entry for eviction: its frequency, halved for each
// halfLife seconds since its last access. Lower is colder.
func (e entry) score(now uint32, halfLife uint32) float64 {
	age := float64(0)
	if now > e.last() {
		age = float64(now - e.last())
	}
	return float64(e.freq()+1) * math.Exp2(-age/float64(halfLife))
}

type shard struct {
	mu sync.RWMutex
	m  map[uint64]entry
}

type index struct {
	shards [indexShards]shard
	blocks [16]atomic.Int64 // blocks per durable tier
}

func newIndex() *index {
	ix := &index{}
	for i := range ix.shards {
		ix.shards[i].m = make(map[uint64]entry)
	}
	return ix
}

func hashKey(k ds.Key) uint64 { return xxhash.Sum64String(k.String()) }

func (ix *index) shard(h uint64) *shard { return &ix.shards[h>>56] }

// get returns the key's entry.
func (ix *index) get(h uint64) (entry, bool) {
	s := ix.shard(h)
	s.mu.RLock()
	e, ok := s.m[h]
	s.mu.RUnlock()
	return e, ok
}

// place records that the key lives in tier with the given frame state,
// keeping its access history.
func (ix *index) place(h uint64, tier int, state uint8) {
	s := ix.shard(h)
	s.mu.Lock()
	e, ok := s.m[h]
	s.m[h] = e.withPlace(tier, state)
	s.mu.Unlock()
	if ok {
		ix.blocks[e.tier()].Add(-1)
	}
	ix.blocks[tier].Add(1)
}

// setState records the frame state once a read learned it.
func (ix *index) setState(h uint64, state uint8) {
	s := ix.shard(h)
	s.mu.Lock()
	if e, ok := s.m[h]; ok {
		s.m[h] = e.withPlace(e.tier(), state)
	}
	s.mu.Unlock()
}

// remove forgets the key.
func (ix *index) remove(h uint64) {
	s := ix.shard(h)
	s.mu.Lock()
	e, ok := s.m[h]
	delete(s.m, h)
	s.mu.Unlock()
	if ok {
		ix.blocks[e.tier()].Add(-1)
	}
}

// touch records an access at now and returns the updated entry.
func (ix *index) touch(h uint64, now uint32) (entry, bool) {
	s := ix.shard(h)
	s.mu.Lock()
	e, ok := s.m[h]
	if ok {
		f := e.freq()
		if f < math.MaxUint16 {
			f++
		}
		e = e&0x3f | entry(f)<<16 | entry(now)<<32
		s.m[h] = e
	}
	s.mu.Unlock()
	return e, ok
}

// decay halves every frequency, so old popularity fades (the "decayed" in
// decayed frequency). The mover calls it once per decay period.
func (ix *index) decay() {
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.Lock()
		for h, e := range s.m {
			f := e.freq() / 2
			s.m[h] = e&^(0xffff<<16) | entry(f)<<16
		}
		s.mu.Unlock()
	}
}

// len returns the number of keys indexed.
func (ix *index) len() int {
	n := 0
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
