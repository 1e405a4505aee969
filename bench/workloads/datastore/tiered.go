package datastore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	ds "github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"

	"github.com/kubo-highload/highload/datastore/tiered"
)

// The tiered store's W6 configurations (issue 5).
const (
	// StoreTiered is what the highload profile mounts at /blocks: a memory
	// tier (StoreOptions.MemoryBytes) over one flatfs tier, Kubo's spec,
	// sync=false.
	StoreTiered = "tiered"
	// StoreTieredSync is the same over flatfs sync=true: group commit
	// against flatfs sync=true alone.
	StoreTieredSync = "tiered flatfs sync=true"
	// StorePebbleTuned is pebbleds with a write-heavy configuration: 64 MiB
	// memtables (4 before writes stall), higher L0 thresholds, 64 MiB
	// cache; writes without fsync, as Kubo's pebbleds.
	StorePebbleTuned = "pebble tuned"
	// StoreTieredPebble is the tiered store whose fast (only) durable tier
	// is StorePebbleTuned.
	StoreTieredPebble = "tiered pebble tuned"
	// StoreTieredPebbleSync is the tiered store over tuned pebble with
	// every write synced (pebble.Sync): flatfs sync=true's durability, with
	// concurrent commits sharing one WAL fsync.
	StoreTieredPebbleSync = "tiered pebble tuned sync=true"
)

func openPebbleTuned(dir string, _ StoreOptions) (ds.Datastore, error) {
	return pebbleTuned(dir, pebble.NoSync)
}

func openPebbleTunedSync(dir string, _ StoreOptions) (ds.Datastore, error) {
	return pebbleTuned(dir, pebble.Sync)
}

func pebbleTuned(dir string, wo *pebble.WriteOptions) (ds.Datastore, error) {
	return pebbleds.NewDatastore(dir,
		pebbleds.WithPebbleWriteOptions(wo),
		pebbleds.WithCacheSize(64<<20),
		pebbleds.WithPebbleOpts(&pebble.Options{
			FormatMajorVersion:          pebble.FormatNewest,
			MemTableSize:                64 << 20,
			MemTableStopWritesThreshold: 4,
			L0CompactionThreshold:       8,
			L0StopWritesThreshold:       32,
		}))
}

// tieredStore wraps the tiered store for W6's MemoryTier.
type tieredStore struct{ *tiered.Datastore }

// MemoryTierHits implements MemoryTier.
func (t tieredStore) MemoryTierHits() (hits, misses uint64) {
	st := t.Stats(context.Background())
	if len(st.Tiers) == 0 || st.Tiers[0].Kind != "memory" {
		return 0, 0
	}
	return st.Tiers[0].Hits, st.Tiers[0].Misses
}

func openTiered(child func(string, StoreOptions) (ds.Datastore, error)) func(string, StoreOptions) (ds.Datastore, error) {
	return openTieredOver(durableTier{name: "fast", open: child})
}

// durableTier is one durable tier of a W6 tiered store: its child, in a
// subdirectory of the store's when there is more than one, and its capacity
// (0: unbounded).
type durableTier struct {
	name     string
	open     func(string, StoreOptions) (ds.Datastore, error)
	capacity uint64
}

// openTieredOver opens the tiered store over the durable tiers given,
// fastest first, with the memory tier at StoreOptions.MemoryBytes (64 MiB
// when unset).
func openTieredOver(tiers ...durableTier) func(string, StoreOptions) (ds.Datastore, error) {
	return func(dir string, o StoreOptions) (ds.Datastore, error) {
		var opened []tiered.Tier
		closeAll := func() {
			for _, t := range opened {
				t.Child.Close()
			}
		}
		for _, t := range tiers {
			tdir := dir
			if len(tiers) > 1 {
				tdir = filepath.Join(dir, t.name)
				if err := os.MkdirAll(tdir, 0o755); err != nil {
					closeAll()
					return nil, err
				}
			}
			c, err := t.open(tdir, o)
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("tier %s: %w", t.name, err)
			}
			opened = append(opened, tiered.Tier{Name: t.name, Child: c, Capacity: t.capacity})
		}
		mem := uint64(max(o.MemoryBytes, 0))
		if mem == 0 {
			mem = 64 << 20
		}
		d, err := tiered.Open(context.Background(), tiered.Options{
			MemoryCapacity: mem,
			Tiers:          opened,
		})
		if err != nil {
			closeAll()
			return nil, err
		}
		return tieredStore{d}, nil
	}
}

func init() {
	RegisterStore(StoreFactory{
		Name: StoreTiered,
		Desc: "tiered: memory tier at 10% of data over flatfs (Kubo spec, sync=false), as the highload profile",
		Open: openTiered(openFlatfs(false)),
	})
	RegisterStore(StoreFactory{
		Name: StoreTieredSync,
		Desc: "tiered: memory tier over flatfs sync=true, group commit",
		Open: openTiered(openFlatfs(true)),
	})
	RegisterStore(StoreFactory{
		Name: StorePebbleTuned,
		Desc: "pebbleds tuned for writes (64 MiB memtables x4, L0 8/32, 64 MiB cache, no fsync)",
		Open: openPebbleTuned,
	})
	RegisterStore(StoreFactory{
		Name: StoreTieredPebbleSync,
		Desc: "tiered: memory tier over pebble tuned with every write fsynced (WAL group commit)",
		Open: openTiered(openPebbleTunedSync),
	})
	RegisterStore(StoreFactory{
		Name: StoreTieredPebble,
		Desc: "tiered: memory tier over pebble tuned (64 MiB memtables) as the fast tier",
		Open: openTiered(openPebbleTuned),
	})
}
