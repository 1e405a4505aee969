package datastore

import (
	"fmt"
	"slices"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	ds "github.com/ipfs/go-datastore"
	flatfs "github.com/ipfs/go-ds-flatfs"
	pebbleds "github.com/ipfs/go-ds-pebble"

	"github.com/kubo-highload/highload/bench/internal/workload"
)

// StoreOptions is what a store factory gets besides its directory.
type StoreOptions struct {
	// MemoryBytes is the memory-tier budget for stores that have one (10% of
	// the trace's data bytes in the Zipf rows). Plain stores ignore it.
	MemoryBytes int64
}

// StoreFactory opens one named datastore configuration in a fresh
// directory. The tiered store (issue 5) becomes one more factory.
type StoreFactory struct {
	// Name prefixes the store's extra figures ("pebble Zipf reads ops/s").
	Name string
	// Desc says how the store is configured, for figure notes.
	Desc string
	// Open creates the store in dir, which exists and is empty.
	Open func(dir string, o StoreOptions) (ds.Datastore, error)
}

// MemoryTier is implemented by a store with a memory tier, so that W6 can
// report the tier's own hit ratio beside the simulated caches.
type MemoryTier interface {
	// MemoryTierHits returns the hits and misses of Gets since the store
	// was opened.
	MemoryTierHits() (hits, misses uint64)
}

var stores = map[string]StoreFactory{}

// RegisterStore adds a store factory; a duplicate name panics at init.
func RegisterStore(f StoreFactory) {
	if _, dup := stores[f.Name]; dup {
		panic(fmt.Sprintf("W6 store %q registered twice", f.Name))
	}
	stores[f.Name] = f
}

// Store returns the factory registered under name.
func Store(name string) (StoreFactory, bool) {
	f, ok := stores[name]
	return f, ok
}

// StoreNames returns the registered store names, sorted.
func StoreNames() []string {
	out := make([]string, 0, len(stores))
	for n := range stores {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// The store names W6 registers.
const (
	// StoreFlatfs is flatfs as Kubo v0.43.1's default Datastore.Spec mounts
	// it at /blocks: shard /repo/flatfs/shard/v1/next-to-last/2, sync=false.
	StoreFlatfs = "flatfs"
	// StoreFlatfsSync is the same with sync=true (fsync of every file and
	// its shard directory), Kubo's default in older releases.
	StoreFlatfsSync = "flatfs sync=true"
	// StorePebble is pebbleds as Kubo's pebbleds profile configures it:
	// formatMajorVersion newest, every other option at pebble's default
	// (4 MiB memtable, 8 MiB block cache), writes without fsync.
	StorePebble = "pebble"
)

// KuboFlatfsShard is the sharding function of Kubo's default flatfs spec.
const KuboFlatfsShard = "/repo/flatfs/shard/v1/next-to-last/2"

func openFlatfs(sync bool) func(string, StoreOptions) (ds.Datastore, error) {
	return func(dir string, _ StoreOptions) (ds.Datastore, error) {
		shard, err := flatfs.ParseShardFunc(KuboFlatfsShard)
		if err != nil {
			return nil, err
		}
		return flatfs.CreateOrOpen(dir, shard, sync)
	}
}

func openPebble(dir string, _ StoreOptions) (ds.Datastore, error) {
	// What Kubo's pebbleds plugin does for its profile's spec
	// {"type": "pebbleds", "formatMajorVersion": FormatNewest}: cacheSize 0
	// (pebble's default cache) and a pebble.Options with only the format set.
	return pebbleds.NewDatastore(dir,
		pebbleds.WithCacheSize(0),
		pebbleds.WithPebbleOpts(&pebble.Options{FormatMajorVersion: pebble.FormatNewest}))
}

func init() {
	RegisterStore(StoreFactory{
		Name: StoreFlatfs,
		Desc: "flatfs, Kubo default spec (next-to-last/2, sync=false)",
		Open: openFlatfs(false),
	})
	RegisterStore(StoreFactory{
		Name: StoreFlatfsSync,
		Desc: "flatfs next-to-last/2, sync=true",
		Open: openFlatfs(true),
	})
	RegisterStore(StoreFactory{
		Name: StorePebble,
		Desc: "pebbleds, Kubo defaults (4 MiB memtable, no fsync per write)",
		Open: openPebble,
	})
}

// BlocksStore names the store each variant's /blocks mount uses: Kubo's
// default flatfs for stock, the tiered store the highload profile mounts
// (a memory tier over that flatfs) for highload, so the W6 ratios are
// tiered/flatfs. A highload variant initialised with the highload-log
// profile mounts StoreTieredLogProfile instead ([VariantBlocksStore]).
var BlocksStore = map[string]string{
	"stock":    StoreFlatfs,
	"highload": StoreTiered,
}

// LogProfile is the init profile that puts a blocklog tier between the
// memory tier and flatfs (plugin.LogProfileName; the bench does not import
// the plugin).
const LogProfile = "highload-log"

// VariantBlocksStore is the store variant v's daemons would mount at
// /blocks: BlocksStore's, or StoreTieredLogProfile for a highload variant
// whose init profiles include LogProfile.
func VariantBlocksStore(v workload.Variant) (string, bool) {
	if v.Name == "highload" && slices.Contains(v.Profiles, LogProfile) {
		return StoreTieredLogProfile, true
	}
	s, ok := BlocksStore[v.Name]
	return s, ok
}
