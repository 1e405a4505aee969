// Package fetch holds the fetch workloads W1-W4 and W10: real daemons of one
// variant on 127.0.0.1, a fetcher timing `pin add` (W10: `cat`) of a fresh
// random file from one or more providers. Importing it registers the
// workloads.
//
// The model: every round starts its own daemons (fresh repos in the round's
// directory, the variant's binary and profiles), imports fresh random bytes
// on the provider(s) with a fixed chunker, CIDv1 and raw leaves, connects
// each fetcher to its provider(s), and only then starts the clock: the timed
// span is the fetcher's `pin/add` RPC of the root. Afterwards the fetched
// DAG is walked offline on the fetcher (`dag/stat` with offline=true) and
// must match the provider's block count and size, or the round fails. Every
// daemon is stopped before the round returns.
//
//   - W1 bulk: 1 provider, 1 fetcher, 256 MiB, 256 KiB chunks; MiB/s and the
//     fetcher's peak RSS.
//   - W2 small-blocks: as W1 with 64 MiB and 16 KiB chunks; blocks/s, MiB/s,
//     the fetcher's peak RSS.
//   - W3 multi-provider: 3 providers holding the same 256 MiB (same bytes,
//     same chunker, so the same CID), 1 fetcher connected to all; MiB/s.
//   - W4 fan-out: 1 provider, 8 fetchers each pinning its own 32 MiB file at
//     the same moment; aggregate MiB/s, Jain fairness over the fetchers'
//     throughputs, the provider's peak RSS while serving.
//
// Random bytes come from ChaCha8 seeded by workload, variant, round and file
// index, so no round or variant fetches a CID another one already moved, and
// a rerun of the suite moves the same bytes again (into fresh repos).
package fetch
