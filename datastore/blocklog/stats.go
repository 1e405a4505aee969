package blocklog

import (
	"sync/atomic"
	"time"
)

type counters struct {
	groups, groupOps, groupBytes, maxGroupOps atomic.Uint64
	syncs, syncNanos                          atomic.Uint64
	inPlaceGroups                             atomic.Uint64
	preallocBytes, preallocFailures           atomic.Uint64
	compactions, compactReclaimed             atomic.Uint64
	compactFailures                           atomic.Uint64
	truncated                                 atomic.Uint64
	openTime                                  atomic.Int64
}

// Stats is a snapshot of the store's state and counters.
type Stats struct {
	// Segments is the number of segment files, the active one included.
	Segments int `json:"segments"`
	// Keys is the number of keys in the index.
	Keys int `json:"keys"`
	// DiskBytes is the segment files' total size.
	DiskBytes int64 `json:"diskBytes"`
	// LiveBytes is the size of the records the index points at.
	LiveBytes int64 `json:"liveBytes"`
	// GarbageBytes is DiskBytes minus LiveBytes and headers: overwritten
	// and deleted records, tombstones and commit records.
	GarbageBytes int64 `json:"garbageBytes"`
	// TombstoneBytes is the part of GarbageBytes that is tombstones.
	TombstoneBytes int64 `json:"tombstoneBytes"`
	// Groups is the number of group commits; GroupedOps the records they
	// wrote (GroupedOps/Groups is the mean group size), GroupBytes their
	// bytes and MaxGroupOps the largest group.
	Groups      uint64 `json:"groups"`
	GroupedOps  uint64 `json:"groupedOps"`
	GroupBytes  uint64 `json:"groupBytes"`
	MaxGroupOps uint64 `json:"maxGroupOps"`
	// Syncs is the number of fsyncs of the active segment; SyncTime the
	// time they took in all (SyncTime/Syncs is the mean flush latency).
	Syncs    uint64        `json:"syncs"`
	SyncTime time.Duration `json:"syncTime"`
	// InPlaceGroups is the number of group commits written entirely into
	// the active segment's zero-filled, synced tail (Options.Sync), whose
	// flush therefore had no metadata to write.
	InPlaceGroups uint64 `json:"inPlaceGroups"`
	// PreallocatedBytes is the zero-filled tail of the active segment not
	// yet written over (part of the disk space, not of DiskBytes);
	// ZeroFilledBytes the zeros written in all; PreallocFailures the
	// segments whose filling failed (a full disk), whose groups append.
	PreallocatedBytes int64  `json:"preallocatedBytes"`
	ZeroFilledBytes   uint64 `json:"zeroFilledBytes"`
	PreallocFailures  uint64 `json:"preallocFailures"`
	// ZeroFill is the zero-filled tail's state: "off" (no Sync, or
	// NoPreallocate), "on", or "paused" while recent groups are too large
	// for it to pay; RecentGroupBytes is the moving average of group sizes
	// it is decided on (kept only with a limit) and PreallocMaxGroup the
	// limit (0: none, never paused).
	ZeroFill         string `json:"zeroFill"`
	RecentGroupBytes int64  `json:"recentGroupBytes"`
	PreallocMaxGroup int64  `json:"preallocMaxGroup"`
	// Compactions is the number of segments rewritten or removed;
	// CompactedBytes the bytes that freed; CompactionFailures the passes
	// that failed (logged).
	Compactions        uint64 `json:"compactions"`
	CompactedBytes     uint64 `json:"compactedBytes"`
	CompactionFailures uint64 `json:"compactionFailures"`
	// TruncatedBytes is the torn tail dropped when the log was opened.
	TruncatedBytes uint64 `json:"truncatedBytes"`
	// OpenTime is how long Open took to recover the log.
	OpenTime time.Duration `json:"openTime"`
}

// Stats returns a snapshot of the store's state and counters.
func (d *Datastore) Stats() Stats {
	st := Stats{
		Groups: d.st.groups.Load(), GroupedOps: d.st.groupOps.Load(), GroupBytes: d.st.groupBytes.Load(),
		MaxGroupOps: d.st.maxGroupOps.Load(), Syncs: d.st.syncs.Load(),
		SyncTime: time.Duration(d.st.syncNanos.Load()), InPlaceGroups: d.st.inPlaceGroups.Load(),
		ZeroFilledBytes: d.st.preallocBytes.Load(), PreallocFailures: d.st.preallocFailures.Load(),
		Compactions: d.st.compactions.Load(), CompactedBytes: d.st.compactReclaimed.Load(),
		CompactionFailures: d.st.compactFailures.Load(),
		TruncatedBytes:     d.st.truncated.Load(), OpenTime: time.Duration(d.st.openTime.Load()),
	}
	st.ZeroFill, st.RecentGroupBytes, st.PreallocMaxGroup = "off", d.groupAvg.Load(), int64(d.opts.PreallocMaxGroup)
	if d.preallocating() {
		st.ZeroFill = "on"
		if !d.preallocPays() {
			st.ZeroFill = "paused"
		}
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	st.Segments, st.Keys = len(d.segs), len(d.index)
	for _, s := range d.segs {
		sz := s.size.Load()
		st.DiskBytes += sz
		st.LiveBytes += s.live
		st.TombstoneBytes += s.tomb
		st.GarbageBytes += sz - segHeaderSize - s.live
	}
	if a := d.active; a != nil {
		a.zmu.Lock()
		st.PreallocatedBytes = max(a.zeroed-a.size.Load(), 0)
		a.zmu.Unlock()
	}
	return st
}
