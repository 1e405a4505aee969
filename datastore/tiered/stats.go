package tiered

import "context"

// TierStats are one tier's figures.
type TierStats struct {
	// Name labels the tier ("memory" for the memory tier).
	Name string
	// Kind is "memory" or "durable".
	Kind string
	// Capacity is the configured size in bytes (0: unbounded).
	Capacity uint64
	// Budget is the memory tier's current byte budget (below Capacity while
	// shrunk under memory pressure); equal to Capacity for durable tiers.
	Budget uint64
	// Used is the bytes held: the cache's weight, or the child's disk usage.
	Used uint64
	// Blocks is the number of values held.
	Blocks int64
	// Hits are reads served by this tier.
	Hits uint64
	// Misses are reads that reached this tier and were served by a slower
	// one or found nothing. The memory tier counts only reads of stored
	// keys, so its hit ratio is that of a data cache.
	Misses uint64
	// Promotions are blocks moved into this tier from a slower one.
	Promotions uint64
	// Demotions are blocks moved out of this tier to a slower one.
	Demotions uint64
	// Batches and BatchedPuts count group commits and the puts they held.
	Batches, BatchedPuts uint64
}

// Stats is a snapshot of the store. Counters are read one by one while the
// store runs, so a snapshot may be slightly inconsistent.
type Stats struct {
	// Tiers are the memory tier (if any) then the durable tiers, fastest first.
	Tiers []TierStats
	// IndexedBlocks is the number of keys in the location index.
	IndexedBlocks int64
	// IndexBytesBound is IndexedBlocks × IndexBytesPerBlock.
	IndexBytesBound uint64
	// MoverBacklog is the number of promotions queued.
	MoverBacklog int
	// PromotionsDropped counts promotions not queued because the queue was full.
	PromotionsDropped uint64
	// Promotions and Demotions are the mover's totals.
	Promotions, Demotions uint64
	// CompressedValues and CompressionSavedBytes count values written
	// compressed and the bytes that saved.
	CompressedValues, CompressionSavedBytes uint64
	// Absent counts reads of keys not stored.
	Absent uint64
	// AdmissionsDeferred counts memory-tier misses not cached because the
	// block had fewer than MemoryAdmitReads (decayed) reads.
	AdmissionsDeferred uint64
	// ResolvedDuplicates counts keys found in two tiers at open and resolved.
	ResolvedDuplicates uint64
}

// Stats returns a snapshot. Durable tiers' Used calls the children's
// DiskUsage; an error there leaves Used at 0.
func (d *Datastore) Stats(ctx context.Context) Stats {
	s := Stats{
		MoverBacklog:          len(d.promote),
		PromotionsDropped:     d.promoteDrop.Load(),
		Promotions:            d.promotions.Load(),
		Demotions:             d.demotions.Load(),
		CompressedValues:      d.compressed.Load(),
		CompressionSavedBytes: d.savedBytes.Load(),
		Absent:                d.absent.Load(),
		ResolvedDuplicates:    d.resolved.Load(),
	}
	if d.mem != nil {
		s.AdmissionsDeferred = d.mem.deferred.Load()
	}
	absent := s.Absent
	if d.mem != nil {
		s.Tiers = append(s.Tiers, TierStats{
			Name: "memory", Kind: "memory",
			Capacity: d.mem.capacity, Budget: d.mem.budget(),
			Used: d.mem.cache.WeightedSize(), Blocks: int64(d.mem.cache.EstimatedSize()),
			Hits: d.mem.hits.Load(), Misses: d.mem.misses.Load(),
		})
	}
	durableHits := make([]uint64, len(d.tiers))
	for i, t := range d.tiers {
		durableHits[i] = t.hits.Load()
	}
	for i, t := range d.tiers {
		var used uint64
		if d.enter() {
			used, _ = t.used(ctx)
			d.leave()
		}
		below := absent
		for _, h := range durableHits[i+1:] {
			below += h
		}
		n := t.blocksIndexed(d)
		s.IndexedBlocks += n
		s.Tiers = append(s.Tiers, TierStats{
			Name: t.Name, Kind: "durable", Capacity: t.Capacity, Budget: t.Capacity,
			Used: used, Blocks: n, Hits: durableHits[i], Misses: below,
			Promotions: t.promoted.Load(), Demotions: t.demoted.Load(),
			Batches: t.batches.Load(), BatchedPuts: t.batched.Load(),
		})
	}
	s.IndexBytesBound = uint64(s.IndexedBlocks) * IndexBytesPerBlock
	return s
}

func (t *durable) blocksIndexed(d *Datastore) int64 { return d.idx.blocks[t.n].Load() }

// MemoryBudgeter is what a memory-pressure source (the health component)
// drives: it lowers the memory tier's budget under pressure and restores it
// after. Datastore implements it.
type MemoryBudgeter interface {
	// SetMemoryBudget sets the memory tier's byte budget, clamped to
	// [MinMemoryBudget, configured capacity], evicting at once if the tier
	// holds more, and returns the budget applied.
	SetMemoryBudget(bytes uint64) uint64
	// MemoryBudget returns the current budget.
	MemoryBudget() uint64
}

var _ MemoryBudgeter = (*Datastore)(nil)

// SetMemoryBudget implements MemoryBudgeter. Without a memory tier it does
// nothing and returns 0.
func (d *Datastore) SetMemoryBudget(bytes uint64) uint64 {
	if d.mem == nil {
		return 0
	}
	return d.mem.setBudget(bytes)
}

// MemoryBudget implements MemoryBudgeter.
func (d *Datastore) MemoryBudget() uint64 {
	if d.mem == nil {
		return 0
	}
	return d.mem.budget()
}

// Shrink multiplies the memory tier's budget by (1 - fraction), for a
// pressure signal that says "give back some memory", and returns the new
// budget.
func (d *Datastore) Shrink(fraction float64) uint64 {
	if d.mem == nil {
		return 0
	}
	fraction = min(max(fraction, 0), 1)
	return d.mem.setBudget(uint64(float64(d.mem.budget()) * (1 - fraction)))
}
