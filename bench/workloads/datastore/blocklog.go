package datastore

import (
	ds "github.com/ipfs/go-datastore"

	"github.com/kubo-highload/highload/datastore/blocklog"
)

// The blocklog store's W6 configurations: the append-only log as a fast
// durable tier for small blocks.
const (
	// StoreBlocklog is the log alone, sync=false: a write is acknowledged
	// once write(2) returned, flatfs sync=false's durability.
	StoreBlocklog = "blocklog"
	// StoreBlocklogSync is the log with an fsync per group commit, flatfs
	// sync=true's durability.
	StoreBlocklogSync = "blocklog sync=true"
	// StoreTieredBlocklog is the tiered store (memory tier) over the log as
	// its fast (only) durable tier.
	StoreTieredBlocklog = "tiered blocklog"
	// StoreTieredBlocklogSync is the same over the log with sync=true.
	StoreTieredBlocklogSync = "tiered blocklog sync=true"
	// StoreTieredLogProfile is what `ipfs init --profile=highload-log`
	// mounts at /blocks: the memory tier over a blocklog tier with
	// sync=true, a quarter of Kubo's default StorageMax (10GB), over
	// flatfs as Kubo's default spec (sync=false) as the last tier.
	StoreTieredLogProfile = "tiered log profile"
)

// logProfileTierCapacity is the log tier's capacity under the
// highload-log profile with Kubo's default Datastore.StorageMax (10GB): a
// quarter of it (plugin/blocklog_profile.go).
const logProfileTierCapacity = 10_000_000_000 / 4

func openBlocklog(sync bool) func(string, StoreOptions) (ds.Datastore, error) {
	return func(dir string, _ StoreOptions) (ds.Datastore, error) {
		return blocklog.Open(dir, blocklog.Options{Sync: sync})
	}
}

func init() {
	RegisterStore(StoreFactory{
		Name: StoreBlocklog,
		Desc: "blocklog: append-only log, group commit, 256 MiB segments, sync=false",
		Open: openBlocklog(false),
	})
	RegisterStore(StoreFactory{
		Name: StoreBlocklogSync,
		Desc: "blocklog: append-only log, one fsync per group commit",
		Open: openBlocklog(true),
	})
	RegisterStore(StoreFactory{
		Name: StoreTieredBlocklog,
		Desc: "tiered: memory tier over blocklog (sync=false) as the fast tier",
		Open: openTiered(openBlocklog(false)),
	})
	RegisterStore(StoreFactory{
		Name: StoreTieredBlocklogSync,
		Desc: "tiered: memory tier over blocklog sync=true (group commit, one fsync per group)",
		Open: openTiered(openBlocklog(true)),
	})
	RegisterStore(StoreFactory{
		Name: StoreTieredLogProfile,
		Desc: "tiered, as the highload-log profile: memory tier at 10% of data over blocklog sync=true (2.5 GB) over flatfs (Kubo spec, sync=false)",
		Open: openTieredOver(
			durableTier{name: "log", open: openBlocklog(true), capacity: logProfileTierCapacity},
			durableTier{name: "flatfs", open: openFlatfs(false)}),
	})
}
