package datastore

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ipfs/boxo/datastore/dshelp"
	ds "github.com/ipfs/go-datastore"
	mh "github.com/multiformats/go-multihash"
)

// OpKind is the type of one trace operation.
type OpKind uint8

// The operations a trace is made of.
const (
	// OpGet reads a value; a key never Put is a miss (ds.ErrNotFound).
	OpGet OpKind = iota
	// OpHas asks whether a key is stored.
	OpHas
	// OpPut stores a key that is not stored yet (ingest of a new block),
	// chosen Zipf-weighted among the keys not stored so far.
	OpPut
)

// String returns "Get", "Has" or "Put".
func (k OpKind) String() string {
	switch k {
	case OpGet:
		return "Get"
	case OpHas:
		return "Has"
	case OpPut:
		return "Put"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one trace operation on the key of popularity rank Rank (0 is the
// most popular).
type Op struct {
	// Rank is the key's Zipf rank, 0-based.
	Rank uint32
	// Kind is Get, Has or Put.
	Kind OpKind
}

// TraceSpec describes a trace; the same spec and seed give the same trace.
type TraceSpec struct {
	// Keys is the size of the key space (1M full, 20k quick).
	Keys int
	// S is the Zipf exponent (1.1).
	S float64
	// MixOps is the length of the mixed Get/Has/Put phase.
	MixOps int
	// GetPct, HasPct and PutPct are the mix in percent; they add up to 100.
	GetPct, HasPct, PutPct int
	// ReadOps is the length of the read-only (Get) phase that follows.
	ReadOps int
	// MinSize and MaxSize bound the value sizes (1 KiB, 256 KiB).
	MinSize, MaxSize int
	// Seed makes the trace, the keys and the value sizes deterministic.
	Seed uint64
}

// Trace is a generated trace: a mixed phase followed by a read phase, both
// drawn from the same Zipf distribution over the same keys.
type Trace struct {
	// Spec is what the trace was made from.
	Spec TraceSpec
	// Ops holds the mixed phase, then the read phase.
	Ops []Op
	// MixLen is the number of Ops in the mixed phase; Ops[MixLen:] are reads.
	MixLen int

	keys  []ds.Key // by rank, filled for every rank the trace touches
	sizes []int32  // by rank, filled for every rank the trace touches
	// counts of what a faithful run must observe, computed offline
	expect Expect
	// DataBytes is the sum of the value sizes of every distinct key the
	// trace Puts: what the store holds at the end.
	DataBytes int64
	// DistinctPut is the number of distinct keys the trace Puts.
	DistinctPut int
}

// Expect is what running the trace in order must observe.
type Expect struct {
	// Gets, Has and Puts count the operations by kind over the whole trace.
	Gets, Has, Puts int
	// GetHits and HasHits count the Gets and Has whose key was Put earlier.
	GetHits, HasHits int
	// ReadGets and ReadGetHits are the same for the read phase alone.
	ReadGets, ReadGetHits int
}

// Expected returns the counts a run that executes the trace in order
// (one worker) must observe.
func (t *Trace) Expected() Expect { return t.expect }

// Key returns the datastore key of a rank. It panics for a rank the trace
// never touches.
func (t *Trace) Key(rank uint32) ds.Key {
	if t.sizes[rank] == 0 {
		panic(fmt.Sprintf("rank %d not in trace", rank))
	}
	return t.keys[rank]
}

// Size returns the value size of a rank.
func (t *Trace) Size(rank uint32) int { return int(t.sizes[rank]) }

// NewZipf returns a deterministic Zipf(s) sampler over ranks [0, n): rank k
// has probability proportional to (k+1)^-s. s must be > 1 (math/rand/v2).
func NewZipf(seed uint64, s float64, n int) *rand.Zipf {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return rand.NewZipf(r, s, 1, uint64(n-1))
}

// KeyAndSize derives the datastore key and value size of a rank. The key is
// what Kubo's blockstore writes to its /blocks datastore for a block: "/"
// plus the unpadded base32 of a sha2-256 multihash (boxo dshelp). The size is
// log-uniform in [minSize, maxSize] and independent of the rank, so hot keys
// are not systematically small or large.
func KeyAndSize(seed uint64, rank uint32, minSize, maxSize int) (ds.Key, int) {
	var in [12]byte
	binary.BigEndian.PutUint64(in[:8], seed)
	binary.BigEndian.PutUint32(in[8:], rank)
	digest := sha256.Sum256(in[:])
	m, err := mh.Encode(digest[:], mh.SHA2_256)
	if err != nil {
		panic(err) // a 32-byte sha2-256 digest always encodes
	}
	// A second hash for the size, so that it is independent of the key bits.
	sz := sha256.Sum256(digest[:])
	u := float64(binary.BigEndian.Uint64(sz[:8])>>11) / (1 << 53)
	size := int(math.Round(float64(minSize) * math.Pow(float64(maxSize)/float64(minSize), u)))
	size = min(max(size, minSize), maxSize)
	return dshelp.MultihashToDsKey(m), size
}

// maxRedraws bounds the Zipf redraws of a Put that looks for a fresh key.
const maxRedraws = 64

// Generate builds the trace of spec. The op kinds and ranks come from one
// PCG stream seeded by spec.Seed, so the same spec gives the same trace on
// every store and in every process.
func Generate(spec TraceSpec) (*Trace, error) {
	if spec.Keys < 2 || spec.S <= 1 || spec.MinSize <= 0 || spec.MaxSize < spec.MinSize {
		return nil, fmt.Errorf("bad trace spec %+v", spec)
	}
	if spec.GetPct+spec.HasPct+spec.PutPct != 100 || spec.GetPct < 0 || spec.HasPct < 0 || spec.PutPct < 0 {
		return nil, fmt.Errorf("op mix %d/%d/%d does not add up to 100", spec.GetPct, spec.HasPct, spec.PutPct)
	}
	t := &Trace{
		Spec:   spec,
		Ops:    make([]Op, 0, spec.MixOps+spec.ReadOps),
		MixLen: spec.MixOps,
		keys:   make([]ds.Key, spec.Keys),
		sizes:  make([]int32, spec.Keys),
	}
	z := NewZipf(spec.Seed, spec.S, spec.Keys)
	kindRNG := rand.New(rand.NewPCG(spec.Seed+1, spec.Seed^0x51ed270b27f10c3))
	present := make([]bool, spec.Keys)
	touch := func(r uint32) {
		if t.sizes[r] == 0 {
			k, s := KeyAndSize(spec.Seed, r, spec.MinSize, spec.MaxSize)
			t.keys[r], t.sizes[r] = k, int32(s)
		}
	}
	lowestFresh := 0 // every rank below it is stored
	for i := 0; i < spec.MixOps+spec.ReadOps; i++ {
		r := uint32(z.Uint64())
		kind := OpGet
		if i < spec.MixOps {
			switch p := kindRNG.IntN(100); {
			case p < spec.GetPct:
				kind = OpGet
			case p < spec.GetPct+spec.HasPct:
				kind = OpHas
			default:
				kind = OpPut
			}
		}
		if kind == OpPut && t.DistinctPut < spec.Keys {
			// A fresh key: redraw while the draw is stored, so that keys
			// arrive in a Zipf-weighted order (hot content first); after
			// maxRedraws fall back to the most popular key not stored.
			for tries := 0; present[r] && tries < maxRedraws; tries++ {
				r = uint32(z.Uint64())
			}
			if present[r] {
				for present[lowestFresh] {
					lowestFresh++
				}
				r = uint32(lowestFresh)
			}
		}
		touch(r)
		t.Ops = append(t.Ops, Op{Rank: r, Kind: kind})
		e := &t.expect
		switch kind {
		case OpGet:
			e.Gets++
			if present[r] {
				e.GetHits++
			}
			if i >= spec.MixOps {
				e.ReadGets++
				if present[r] {
					e.ReadGetHits++
				}
			}
		case OpHas:
			e.Has++
			if present[r] {
				e.HasHits++
			}
		case OpPut:
			e.Puts++
			if !present[r] {
				present[r] = true
				t.DistinctPut++
				t.DataBytes += int64(t.sizes[r])
			}
		}
	}
	return t, nil
}

// CacheRequests returns the requests a memory cache in front of the store
// sees: every Get of a key that is stored at that point of the trace, in
// trace order, as (rank, size). Gets of keys never Put are blockstore misses
// no data cache can serve; Has is answered from an index, not from cached
// data; Puts do not fill the cache (it is a read cache).
func (t *Trace) CacheRequests() []Request {
	present := make([]bool, t.Spec.Keys)
	out := make([]Request, 0, t.expect.GetHits)
	for _, op := range t.Ops {
		switch op.Kind {
		case OpPut:
			present[op.Rank] = true
		case OpGet:
			if present[op.Rank] {
				out = append(out, Request{Key: op.Rank, Size: int64(t.sizes[op.Rank])})
			}
		}
	}
	return out
}
