// Package datastore holds W6: a Zipf trace of Get/Put/Has run against
// go-datastore implementations, with a Belady (optimal offline) cache
// simulation as the yardstick for hit ratios. Importing it registers the
// workload. W6 starts no daemon: it opens the stores in-process, as Kubo's
// /blocks mount would.
//
// # The model
//
// Keys. A key space of N keys (1M; quick 20k). The key of popularity rank r
// is what Kubo's blockstore writes for a block: "/" plus the unpadded
// base32 of a sha2-256 multihash ("/CIQ..."), the digest being
// sha256(seed, r), so hot keys are scattered over flatfs shards and pebble's
// key order like real CIDs.
//
// Values. Sizes are log-uniform in [1 KiB, 256 KiB] (every octave equally
// likely: median 16 KiB, the W2 block size; mean about 46 KiB; the largest
// is Kubo's default 256 KiB chunk), derived from the key and independent of
// its rank. Bytes are incompressible (file data usually is).
//
// Trace. One seeded PCG stream draws ranks from Zipf(s=1.1) and operation
// kinds from the mix, so every store of every round and variant runs the same
// trace. It has two phases:
//   - a mixed phase, Get 60% / Has 20% / Put 20%: a node that serves Bitswap
//     (want-block is a Get, want-have a Has) while it ingests. A Put stores a
//     key not stored before (a new block), chosen Zipf-weighted among the
//     keys not yet stored, so hot content arrives first; re-puts of stored
//     blocks are rare in real traffic and not modelled. A Get or Has of a key
//     not stored yet is a blockstore miss (ds.ErrNotFound / false), as for a
//     want of a block the node lacks.
//   - a read phase of Zipf Gets on the warm store ("Zipf reads").
//
// Full size: 150k mixed ops (30k Puts: about 1.3 GiB stored, bounded by the
// Put count, not by N) and 120k reads; on this 2-core machine the data fits
// in the page cache, so reads measure each store's software path, not the
// disk. The trace runs with 4 workers that take operations in trace order
// from a shared cursor.
//
// Hit ratio. The memory tier of the tiered store (issue 5) is a read cache
// sized at 10% of the trace's data bytes (the values of every key the trace
// stores). Its requests are the Gets of stored keys, in trace order (misses
// of absent keys can't be served by any data cache; Has is answered by an
// index; Puts don't fill a read cache). Three caches of that size run over
// them offline: [Belady] (clairvoyant: evict the farthest next use until the
// value fits, the standard size-aware heuristic, since the exact optimum with
// variable sizes is NP-hard), otter v2 (W-TinyLFU, byte-weighted) and a
// byte-bounded [LRU]. A store that implements [MemoryTier] also reports its
// own memory-tier hit ratio and its ratio to Belady.
//
// Rows. Besides the trace: 8 writers putting fresh trace-sized values
// ("concurrent puts", ops/s) and 8 writers putting 16 KiB values
// ("small-block ingest", MiB/s, at flatfs sync=false durability: the
// target the tiered store's fast tier must reach is >= 300 MiB/s). Each row
// gets a fresh store in the round's directory, deleted afterwards. A round
// runs the variant's blocks store first (ingest, puts, trace), in the same
// order in both variants, then stock's extras: on this VM a row that follows
// gigabytes of other writes can run several times slower, so both sides of a
// pair must see the same history.
//
// Variants. "stock" measures Kubo's default /blocks store (flatfs,
// next-to-last/2, sync=false) under the plain figure names, plus pebble and
// flatfs sync=true under store-prefixed names ("pebble Zipf reads ops/s").
// "highload" measures the store its profile mounts at /blocks
// ([VariantBlocksStore]): the tiered store, a memory tier at 10% of the
// data over that flatfs; with the highload-log init profile, the memory
// tier over a blocklog tier (sync=true) over that flatfs, plus the first
// store's Zipf rows under the prefix "tiered ". Its extras, after its own rows, pair with stock's under the
// same names: tiered over flatfs sync=true ("flatfs sync=true concurrent
// puts") and tiered over a write-tuned pebble ("pebble small-block
// ingest"); tuned pebble alone and tiered over tuned pebble with synced
// writes have no stock pair. Stores are named factories ([RegisterStore]).
package datastore
