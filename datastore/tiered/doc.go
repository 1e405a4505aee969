// Package tiered is a go-datastore that keeps hot blocks on fast tiers and
// cold blocks on slow ones, and moves them by itself.
//
// The model: an ordered list of tiers, fastest first. The optional memory
// tier is a read cache (otter's W-TinyLFU, bounded by bytes, shrinkable under
// memory pressure through MemoryBudgeter). The durable tiers are any
// ds.Datastore children and are authoritative: each key lives in exactly one
// of them, apart from the short window of a move. Writes land in the first
// durable tier through a per-tier group committer, so concurrent Puts share
// one child batch commit. A location index (key hash -> tier, 40 bytes per
// block at most) sends each read to one tier; it is rebuilt from the
// children's key listings at open. A background mover demotes the coldest
// blocks (decayed frequency and recency) when a tier passes its high
// watermark and promotes blocks that stay hot in a slower tier; a move is
// copy, sync, delete, and Open resolves a key left in two tiers by a crash.
// Values above a threshold are compressed with zstd when that saves at least
// 10%, in a small frame that carries the raw size, so reads are byte-exact
// and GetSize never decompresses.
//
//	d, err := tiered.Open(ctx, tiered.Options{MemoryCapacity: 512 << 20,
//		Tiers: []tiered.Tier{{Name: "ssd", Child: fast, Capacity: 50 << 30}, {Name: "hdd", Child: slow}}})
//	defer d.Close()
//
// ParseSpec reads the same layout from a Kubo-style Datastore.Spec map; the
// caller builds the children.
package tiered
