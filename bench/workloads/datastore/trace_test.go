package datastore

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ipfs/boxo/datastore/dshelp"
	mh "github.com/multiformats/go-multihash"
)

func TestZipfRankFrequenciesDecrease(t *testing.T) {
	const n, draws = 1000, 400_000
	z := NewZipf(42, 1.1, n)
	counts := make([]int, n)
	for range draws {
		r := z.Uint64()
		if r >= n {
			t.Fatalf("rank %d out of [0,%d)", r, n)
		}
		counts[r]++
	}
	// The head: every rank is drawn more often than the next one.
	for r := 0; r < 8; r++ {
		if counts[r] <= counts[r+1] {
			t.Fatalf("count[%d]=%d <= count[%d]=%d", r, counts[r], r+1, counts[r+1])
		}
	}
	// P(0)/P(1) = 2^1.1 = 2.14.
	if got := float64(counts[0]) / float64(counts[1]); math.Abs(got-math.Pow(2, 1.1)) > 0.1 {
		t.Fatalf("count[0]/count[1] = %.3f, want ~%.3f", got, math.Pow(2, 1.1))
	}
	// The tail, by blocks of ranks of equal width: the mean count falls.
	prev := math.Inf(1)
	for lo := 0; lo < n; lo += 100 {
		sum := 0
		for _, c := range counts[lo : lo+100] {
			sum += c
		}
		mean := float64(sum) / 100
		if mean >= prev {
			t.Fatalf("ranks %d..%d mean %.1f >= previous block's %.1f", lo, lo+99, mean, prev)
		}
		prev = mean
	}
}

func TestZipfDeterministicBySeed(t *testing.T) {
	draw := func(seed uint64) []uint64 {
		z := NewZipf(seed, 1.1, 1_000_000)
		out := make([]uint64, 1000)
		for i := range out {
			out[i] = z.Uint64()
		}
		return out
	}
	if !reflect.DeepEqual(draw(7), draw(7)) {
		t.Fatal("same seed, different draws")
	}
	if reflect.DeepEqual(draw(7), draw(8)) {
		t.Fatal("different seeds, same draws")
	}
}

func tinySpec(seed uint64) TraceSpec {
	return TraceSpec{Keys: 500, S: 1.1, MixOps: 3000, GetPct: 60, HasPct: 20, PutPct: 20,
		ReadOps: 1000, MinSize: 1 << 10, MaxSize: 8 << 10, Seed: seed}
}

func TestGenerateDeterministicAndCounted(t *testing.T) {
	a, err := Generate(tinySpec(3))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(tinySpec(3))
	c, _ := Generate(tinySpec(4))
	if !reflect.DeepEqual(a.Ops, b.Ops) || a.DataBytes != b.DataBytes {
		t.Fatal("same spec, different traces")
	}
	if reflect.DeepEqual(a.Ops, c.Ops) {
		t.Fatal("different seeds, same trace")
	}
	if len(a.Ops) != 4000 || a.MixLen != 3000 {
		t.Fatalf("len %d, mix %d", len(a.Ops), a.MixLen)
	}
	// ~600 Puts over 500 keys: every key ends up stored, the rest re-put.
	if a.DistinctPut != a.Spec.Keys {
		t.Fatalf("%d distinct keys put, want all %d", a.DistinctPut, a.Spec.Keys)
	}
	// Recount independently.
	var e Expect
	present := map[uint32]bool{}
	var data int64
	for i, op := range a.Ops {
		if i >= a.MixLen && op.Kind != OpGet {
			t.Fatalf("op %d in the read phase is %v", i, op.Kind)
		}
		switch op.Kind {
		case OpGet:
			e.Gets++
			if present[op.Rank] {
				e.GetHits++
			}
			if i >= a.MixLen {
				e.ReadGets++
				if present[op.Rank] {
					e.ReadGetHits++
				}
			}
		case OpHas:
			e.Has++
			if present[op.Rank] {
				e.HasHits++
			}
		case OpPut:
			e.Puts++
			if present[op.Rank] && len(present) < a.Spec.Keys {
				t.Fatalf("op %d puts rank %d again while keys are left: Puts must be fresh keys", i, op.Rank)
			}
			if !present[op.Rank] {
				data += int64(a.Size(op.Rank))
			}
			present[op.Rank] = true
		}
	}
	if e != a.Expected() || data != a.DataBytes || len(present) != a.DistinctPut {
		t.Fatalf("recount %+v data %d distinct %d; trace says %+v %d %d", e, data, len(present), a.Expected(), a.DataBytes, a.DistinctPut)
	}
	// The mix is near 60/20/20 over the mixed phase.
	mixGets := e.Gets - e.ReadGets
	if f := float64(mixGets) / 3000; math.Abs(f-0.6) > 0.04 {
		t.Fatalf("Get share %.3f", f)
	}
	if f := float64(e.Puts) / 3000; math.Abs(f-0.2) > 0.03 {
		t.Fatalf("Put share %.3f", f)
	}
	if reqs := a.CacheRequests(); len(reqs) != e.GetHits {
		t.Fatalf("%d cache requests, %d found Gets", len(reqs), e.GetHits)
	}
	// With keys to spare every Put is a new key, hot keys first: the first
	// 10% of the ranks are nearly all stored early on.
	big, err := Generate(TraceSpec{Keys: 100_000, S: 1.1, MixOps: 50_000, GetPct: 60, HasPct: 20, PutPct: 20,
		MinSize: 1 << 10, MaxSize: 2 << 10, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if big.DistinctPut != big.Expected().Puts {
		t.Fatalf("%d Puts stored only %d distinct keys", big.Expected().Puts, big.DistinctPut)
	}
	headStored := 0
	for _, op := range big.Ops[:big.MixLen/2] {
		if op.Kind == OpPut && op.Rank < 100 {
			headStored++
		}
	}
	if headStored < 90 {
		t.Fatalf("only %d of the 100 hottest keys stored in the first half", headStored)
	}
}

func TestKeysLookLikeKuboBlockKeys(t *testing.T) {
	seen := map[string]bool{}
	var logSum float64
	const n = 20000
	for r := uint32(0); r < n; r++ {
		k, size := KeyAndSize(9, r, 1<<10, 256<<10)
		s := k.String()
		// "/" + unpadded base32 of a 34-byte sha2-256 multihash; Kubo's
		// block keys start with CIQ.
		if !strings.HasPrefix(s, "/CIQ") || len(s) != 56 || seen[s] {
			t.Fatalf("key %q (rank %d)", s, r)
		}
		seen[s] = true
		m, err := dshelp.DsKeyToMultihash(k)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := mh.Decode(m); err != nil || d.Code != mh.SHA2_256 || d.Length != 32 {
			t.Fatalf("multihash %v %v", d, err)
		}
		if size < 1<<10 || size > 256<<10 {
			t.Fatalf("size %d", size)
		}
		if k2, s2 := KeyAndSize(9, r, 1<<10, 256<<10); k2 != k || s2 != size {
			t.Fatal("not deterministic")
		}
		logSum += math.Log2(float64(size))
	}
	// Log-uniform on [2^10, 2^18]: the mean of log2(size) is 14 (16 KiB).
	if m := logSum / n; math.Abs(m-14) > 0.1 {
		t.Fatalf("mean log2(size) = %.3f, want ~14", m)
	}
}
