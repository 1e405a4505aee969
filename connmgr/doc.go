// Package connmgr is an adaptive connection manager for go-libp2p. It
// implements core/connmgr.ConnManager and connmgr.Decayer from scratch (it
// does not wrap BasicConnMgr) and keeps libp2p's contract for tags,
// protection and decaying tags.
//
// The model:
//
//   - LowWater, HighWater and GracePeriod are live values. An adaptation
//     loop moves them between configured bounds every AdaptInterval from the
//     measured load: a pressure level fed by the caller (memory, fds; see
//     Config.Pressure) and the connection churn the manager counts itself.
//     Under pressure HighWater steps down and the grace period shortens;
//     without pressure, when the connection count presses on HighWater, it
//     steps up; otherwise it drifts back to its starting value. Each change
//     is one bounded step, so the values do not oscillate.
//   - The watermarks are always clamped strictly below the resource
//     manager's live connection limit (Config.Limit), so the connection
//     manager never asks for more than rcmgr allows.
//   - Trimming runs in one background goroutine, woken by a ticker and by a
//     coalesced signal when a connection pushes the count above HighWater.
//     Once above HighWater it drains, in rounds RoundPause apart, down to
//     LowWater: the first round closes whatever exceeds HighWater (HighWater
//     is a ceiling), the next ones at most MaxTrimPerRound each.
//     Protected peers and peers in their grace period are never trimmed.
//   - Trimming order: temporary entries (tags without connections), then
//     slow peers, then the lowest ConnectionQuality score. The score adds the
//     peer's tag values (libp2p's notion of usefulness), latency (peerstore
//     EWMA, fed by ping), bandwidth (a metrics.Reporter) and open streams,
//     and subtracts recent stream resets and errors, which WatchStreams
//     sees by wrapping the stream multiplexer (libp2p gives a connection
//     manager no stream events). Quality exposes it to others (the plugin
//     hands it to the Bitswap policy).
//   - A persistent pool (Pool) protects a list of peers and keeps them
//     connected, redialling with exponential backoff, and pings them
//     periodically so their idle connections stay alive and their latency is
//     known. Its peers come from the configuration and, optionally, from an
//     IPFS Cluster REST API's /peers (StartCluster), re-read periodically.
//
// Stats returns a snapshot; Collector exports it as highload_connmgr_*
// Prometheus metrics.
package connmgr
