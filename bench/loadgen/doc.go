// Package loadgen is the benchmark suite's load generator: many libp2p hosts
// in one process, each with its own peer identity, dialling one target on
// loopback and speaking the real Bitswap protocol through boxo's bsnet
// network and message types.
//
// The model: a Peer is one minimal libp2p host (TCP + noise + yamux, no
// listen address, no resource manager, no connection manager, no relay, no
// ping) plus, for the Bitswap modes, a bsnet network whose receiver counts
// what the target answers. Four modes build on it, each bounded in count and
// time and refusing any target that is not a loopback address:
//
//   - Flood: N peers each re-send a full wantlist of K random, missing CIDs
//     (want-block and want-have alternating, send-dont-have set) R times a
//     second, for a duration.
//   - Conns: N peers each open one connection to the target and hold it
//     until closed; the ConnSet reports how many are still up and how many
//     the target closed.
//   - Rate: want-have requests for CIDs the target holds, from P peers with
//     W requests in flight each, as a sweep over peer counts; each step
//     reports answered requests/s and latency percentiles from send to
//     answer.
//   - Garbage: malformed and oversized Bitswap messages (bad protobuf, bad
//     CIDs, a length prefix beyond the 4 MiB limit, huge wantlists) on
//     Bitswap streams, then a check that the target still answers.
//
// The command in ./cmd/loadgen runs the modes as a separate process, so that
// its CPU and memory are not mixed into the benchmark's, and prints JSON.
package loadgen
