package plugin

import (
	"fmt"

	"github.com/dustin/go-humanize"
	kconfig "github.com/ipfs/kubo/config"

	"github.com/kubo-highload/highload/datastore/tiered"
)

// LogProfileName is the init-only profile that puts a blocklog fast tier
// between the memory tier and flatfs: `ipfs init --profile=highload-log`.
//
// It is a separate, init-only profile (like Kubo's own datastore profiles)
// because adding a durable tier changes the /blocks identity Kubo checks
// against datastore_spec on every open: applied to an existing repo it would
// leave a repo Kubo refuses to open. The highload profile keeps the flatfs
// identity and stays applicable to existing repos.
const LogProfileName = "highload-log"

const (
	// logTierShare: the log tier gets a quarter of Datastore.StorageMax ...
	logTierShare = 4
	// ... at most 64 GiB: it is the write-absorbing tier, not the archive.
	logTierMax = 64 << 30
	// logTierName and logTierPath name the tier and its directory.
	logTierName = "log"
	logTierPath = "blocklog"
	// logPreallocMaxGroup pauses the log's zero fill while the mean group
	// commit is at least this size: a bulk fetch's groups of 256 KiB blocks
	// are flushed for their data, and the zeros double the bytes written.
	// On this project's machines, quiet, it cut 8 fresh fetchers' CPU by
	// 12-20% (docs/blocklog.md, "Bulk groups, again").
	logPreallocMaxGroup = "192KiB"
)

func init() {
	kconfig.Profiles[LogProfileName] = kconfig.Profile{
		Description: `Init only. Everything the highload profile does, and the /blocks
mount becomes memory + a blocklog fast tier (append-only log, group
commit, fsync per group) + the repo's flatfs as the last tier. Fetched
and added blocks land in the log; the mover demotes cold ones to flatfs.`,
		InitOnly:  true,
		Transform: applyLogProfile,
	}
}

// applyLogProfile applies the highload profile, then inserts the log tier
// before the last durable tier of the tiered /blocks mount. A layout that
// already has a blocklog tier is kept; a /blocks mount the highload profile
// did not make tiered (pebbleds, badgerds) is refused, since the log tier
// has nothing to demote to.
func applyLogProfile(c *kconfig.Config) error {
	if err := applyProfile(c); err != nil {
		return err
	}
	mounts, _ := c.Datastore.Spec["mounts"].([]any)
	for _, m := range mounts {
		mm, ok := m.(map[string]any)
		if !ok || mm["mountpoint"] != "/blocks" || mm["type"] != TieredTypeName {
			continue
		}
		tiers, _ := mm["tiers"].([]any)
		if len(tiers) == 0 {
			return fmt.Errorf("profile %s: the /blocks tiered mount has no tiers", LogProfileName)
		}
		for _, t := range tiers {
			if tm, ok := t.(map[string]any); ok {
				if ch, ok := tm["child"].(map[string]any); ok && ch["type"] == BlocklogTypeName {
					return nil // already has a log tier: keep the user's layout
				}
			}
		}
		capacity := uint64(tiered.MinDurableCapacity)
		if n, err := humanize.ParseBytes(c.Datastore.StorageMax); err == nil && n/logTierShare > capacity {
			capacity = min(n/logTierShare, logTierMax)
		}
		logTier := map[string]any{
			"name":     logTierName,
			"capacity": humanize.IBytes(capacity),
			// The zero fill pauses for bulk groups (256 KiB blocks): see
			// logPreallocMaxGroup.
			"child": map[string]any{"type": BlocklogTypeName, "path": logTierPath, "sync": true, "preallocMaxGroup": logPreallocMaxGroup},
		}
		last := len(tiers) - 1
		out := append(append(append([]any{}, tiers[:last]...), logTier), tiers[last])
		mm["tiers"] = out
		return nil
	}
	return fmt.Errorf("profile %s: no tiered /blocks mount to add a log tier to (Datastore.Spec has a layout the highload profile leaves alone; write a tiered spec by hand, see docs/tiered.md)", LogProfileName)
}
