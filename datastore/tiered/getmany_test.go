package tiered

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
)

// manyChild is a map child that implements ManyGetter and counts its calls.
type manyChild struct {
	ds.Batching
	mu       sync.Mutex
	getMany  int // GetMany calls
	manyKeys int // keys asked through GetMany
	gets     atomic.Int64
	syncs    atomic.Int64
}

func newManyChild() *manyChild {
	return &manyChild{Batching: memChild().(ds.Batching)}
}

func (c *manyChild) GetMany(ctx context.Context, keys []ds.Key, fn func(int, []byte, error)) error {
	c.mu.Lock()
	c.getMany++
	c.manyKeys += len(keys)
	c.mu.Unlock()
	// Answer in reverse, as a disk-order reader may.
	for i := len(keys) - 1; i >= 0; i-- {
		v, err := c.Batching.Get(ctx, keys[i])
		fn(i, v, err)
	}
	return nil
}

func (c *manyChild) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	c.gets.Add(1)
	return c.Batching.Get(ctx, k)
}

func (c *manyChild) Sync(ctx context.Context, k ds.Key) error {
	c.syncs.Add(1)
	return c.Batching.Sync(ctx, k)
}

// plainChild counts Gets and Syncs of a child without GetMany.
type plainChild struct {
	ds.Batching
	gets, syncs atomic.Int64
}

func (c *plainChild) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	c.gets.Add(1)
	return c.Batching.Get(ctx, k)
}

func (c *plainChild) Sync(ctx context.Context, k ds.Key) error {
	c.syncs.Add(1)
	return c.Batching.Sync(ctx, k)
}

func gmKey(i int) ds.Key { return ds.NewKey(fmt.Sprintf("/gm%04d", i)) }

// gmVal is compressible for even i (stored in a zstd frame above the
// threshold), random for odd i.
func gmVal(i int) []byte {
	if i%2 == 0 {
		return bytes.Repeat([]byte(fmt.Sprintf("value %d;", i)), 5000)
	}
	b := randBytes(20 << 10)
	copy(b, fmt.Sprint(i))
	return b
}

// TestGetManyAcrossTiers: keys in the memory tier, in a fast tier with
// GetMany and in a slow tier without, plus keys never stored, asked in a
// shuffled order: each key gets exactly one call with its exact value (zstd
// frames decoded) or ds.ErrNotFound; the fast tier's keys are read with one
// GetMany call, the slow tier's with one Get each, and the memory tier's
// and missing keys touch no tier.
func TestGetManyAcrossTiers(t *testing.T) {
	ctx := context.Background()
	fast, slow := newManyChild(), &plainChild{Batching: memChild().(ds.Batching)}
	d := openT(t, Options{
		MemoryCapacity: 64 << 20,
		Tiers:          []Tier{{Name: "fast", Child: fast}, {Name: "slow", Child: slow}},
		MoverInterval:  time.Hour, MemoryAdmitReads: 1,
	})
	want := map[ds.Key][]byte{}
	for i := range 60 {
		want[gmKey(i)] = gmVal(i)
		if err := d.Put(ctx, gmKey(i), want[gmKey(i)]); err != nil {
			t.Fatal(err)
		}
	}
	// Keys 40-59 to the slow tier; keys 0-9 into the memory tier.
	var down []ds.Key
	for i := 40; i < 60; i++ {
		down = append(down, gmKey(i))
	}
	if n, _, err := d.moveMany(ctx, nil, down, d.tiers[0], d.tiers[1]); err != nil || n != 20 {
		t.Fatalf("moved %d, %v", n, err)
	}
	for i := range 10 {
		for range 8 { // enough reads for the size-dependent admission
			d.Get(ctx, gmKey(i))
		}
	}
	if d.mem.cache.EstimatedSize() < 10 {
		t.Fatalf("memory tier holds %d values", d.mem.cache.EstimatedSize())
	}
	keys := make([]ds.Key, 0, 70)
	for i := range 70 { // 60-69 never stored
		keys = append(keys, gmKey(i))
	}
	rand.Shuffle(len(keys), func(a, b int) { keys[a], keys[b] = keys[b], keys[a] })
	fast.getMany, fast.manyKeys = 0, 0
	fast.gets.Store(0)
	slow.gets.Store(0)
	calls := make([]int, len(keys))
	err := d.GetMany(ctx, keys, func(i int, v []byte, err error) {
		calls[i]++
		w, ok := want[keys[i]]
		if !ok {
			if !errors.Is(err, ds.ErrNotFound) {
				t.Errorf("%s: want not found, got %d bytes, %v", keys[i], len(v), err)
			}
			return
		}
		if err != nil || !bytes.Equal(v, w) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", keys[i], len(v), err, len(w))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range calls {
		if c != 1 {
			t.Fatalf("%s: %d calls", keys[i], c)
		}
	}
	if fast.getMany != 1 || fast.manyKeys != 30 || fast.gets.Load() != 0 {
		t.Fatalf("fast tier: %d GetMany calls for %d keys, %d Gets; want 1 call for its 30 keys outside the memory tier",
			fast.getMany, fast.manyKeys, fast.gets.Load())
	}
	if slow.gets.Load() != 20 {
		t.Fatalf("slow tier: %d Gets, want one per its 20 keys", slow.gets.Load())
	}
}

// TestGetManyDuringMoves reads every key with GetMany while keys move back
// and forth between two tiers: a key that moved after the index lookup is
// still found (the single-key fallback), with its exact bytes.
func TestGetManyDuringMoves(t *testing.T) {
	ctx := context.Background()
	fast, slow := newManyChild(), &plainChild{Batching: memChild().(ds.Batching)}
	d := openT(t, Options{
		Tiers:         []Tier{{Name: "fast", Child: fast}, {Name: "slow", Child: slow}},
		MoverInterval: time.Hour,
	})
	var keys []ds.Key
	want := map[ds.Key][]byte{}
	for i := range 200 {
		k := gmKey(i)
		keys = append(keys, k)
		want[k] = gmVal(i)
		if err := d.Put(ctx, k, want[k]); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var err error
		for round := 0; err == nil; round++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			from, to := d.tiers[round%2], d.tiers[1-round%2]
			for i := 0; i < len(keys) && err == nil; i += 16 {
				_, _, err = d.moveMany(ctx, nil, keys[i:min(i+16, len(keys))], from, to)
			}
		}
		done <- err
	}()
	for round := range 30 {
		found := 0
		err := d.GetMany(ctx, keys, func(i int, v []byte, err error) {
			if err != nil || !bytes.Equal(v, want[keys[i]]) {
				t.Errorf("round %d: %s: %d bytes, %v", round, keys[i], len(v), err)
			}
			found++
		})
		if err != nil {
			t.Fatal(err)
		}
		if found != len(keys) {
			t.Fatalf("round %d: %d calls for %d keys", round, found, len(keys))
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d.promotions.Load()+d.demotions.Load() != 0 {
		t.Fatal("the mover ran")
	}
}

// TestMoverBatchesMoves: a demotion of 150 blocks reads them from the
// source with GetMany and pays one sync per side per batch of up to 32
// keys, not one per block; every block ends in exactly one tier, intact.
func TestMoverBatchesMoves(t *testing.T) {
	ctx := context.Background()
	fast, slow := newManyChild(), &plainChild{Batching: memChild().(ds.Batching)}
	d := openT(t, Options{
		Tiers:         []Tier{{Name: "fast", Child: fast, Capacity: 600 << 10}, {Name: "slow", Child: slow}},
		MoverInterval: time.Hour, CompressThreshold: -1,
	})
	want := map[ds.Key][]byte{}
	for i := range 200 {
		k := gmKey(i)
		want[k] = randBytes(10 << 10)
		if err := d.Put(ctx, k, want[k]); err != nil {
			t.Fatal(err)
		}
	}
	fast.syncs.Store(0)
	if err := d.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	moved := int64(d.demotions.Load())
	if moved < 100 {
		t.Fatalf("%d blocks demoted", moved)
	}
	batches := (moved + int64(moveBatchKeys) - 1) / int64(moveBatchKeys)
	if s := slow.syncs.Load(); s > batches+2 {
		t.Fatalf("%d syncs of the destination for %d blocks; want one per batch (%d)", s, moved, batches)
	}
	if s := fast.syncs.Load(); s > batches+2 {
		t.Fatalf("%d syncs of the source for %d blocks; want one per batch (%d)", s, moved, batches)
	}
	if fast.gets.Load() != 0 || fast.manyKeys < int(moved) {
		t.Fatalf("source read with %d Gets and %d keys through GetMany for %d blocks", fast.gets.Load(), fast.manyKeys, moved)
	}
	fk, sk := keysIn(t, fast), keysIn(t, slow)
	if len(fk)+len(sk) != 200 {
		t.Fatalf("%d+%d blocks", len(fk), len(sk))
	}
	for k, v := range want {
		if fk[k.String()] == sk[k.String()] {
			t.Fatalf("%s in both tiers or in neither", k)
		}
		got, err := d.Get(ctx, k)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("%s: %d bytes, %v", k, len(got), err)
		}
	}
}
