package plugin

import (
	"github.com/dustin/go-humanize"
	kconfig "github.com/ipfs/kubo/config"
	"github.com/pbnjay/memory"

	"github.com/kubo-highload/highload/datastore/tiered"
)

// The highload profile's datastore step: the /blocks mount becomes a tiered
// store with a memory tier sized from RAM over the flatfs mount it had, so
// the blocks stay where they are (the flatfs child keeps its path and
// shardFunc, and a single-tier store's DiskSpec is its child's). The `/`
// mount (levelds or pebble) is kept as it is.

const (
	// memoryTierShare: the memory tier gets 1/16 of the machine's RAM ...
	memoryTierShare = 16
	// ... at least 64 MiB and at most 2 GiB.
	memoryTierMin = 64 << 20
	memoryTierMax = 2 << 30
)

func init() {
	addProfileStep("tiered datastore", applyTieredProfile)
}

// memoryTierSize returns the memory tier's capacity for a machine with total
// bytes of RAM (0 if unknown).
func memoryTierSize(total uint64) uint64 {
	if total == 0 {
		return 256 << 20
	}
	return min(max(total/memoryTierShare, memoryTierMin), memoryTierMax)
}

func applyTieredProfile(c *kconfig.Config) error {
	spec := c.Datastore.Spec
	mounts, _ := spec["mounts"].([]any)
	if spec["type"] != "mount" || mounts == nil {
		// A single-store layout (pebbleds, badgerds): left as it is; a
		// tiered mount can be written by hand (docs/tiered.md).
		return nil
	}
	for i, m := range mounts {
		mm, ok := m.(map[string]any)
		if !ok || mm["mountpoint"] != "/blocks" {
			continue
		}
		switch mm["type"] {
		case TieredTypeName:
			return nil // already tiered: keep the user's layout
		case "flatfs":
		default:
			return nil // another store at /blocks: left as the user chose
		}
		capacity := uint64(tiered.MinDurableCapacity)
		if n, err := humanize.ParseBytes(c.Datastore.StorageMax); err == nil && n > capacity {
			capacity = n
		}
		child := map[string]any{}
		for k, v := range mm {
			if k != "mountpoint" {
				child[k] = v
			}
		}
		mounts[i] = map[string]any{
			"mountpoint": "/blocks",
			"type":       TieredTypeName,
			"prefix":     "tiered.datastore",
			"tiers": []any{
				map[string]any{"type": "memory", "capacity": humanize.IBytes(memoryTierSize(memory.TotalMemory()))},
				map[string]any{"name": "flatfs", "child": child, "capacity": humanize.IBytes(capacity)},
			},
		}
		return nil
	}
	return nil // no /blocks mount: nothing to tier
}
