package hlconfig

import (
	kconfig "github.com/ipfs/kubo/config"
)

// Struct tags on leaves:
//
//	default:"..."  the value used when the key is absent or null; it is also
//	               what the highload init profile writes.
//	range:"lo,hi"  inclusive bounds: integers, sizes ("64KiB") or durations ("1s").
//	doc:"..."      one line for docs and `ipfs stats highload`.

// Config is the whole plugin configuration. A nil section means "all
// defaults".
type Config struct {
	// Bitswap holds the static caps applied to Kubo's Bitswap at construction.
	Bitswap *BitswapConfig `json:",omitempty"`
	// ConnMgr configures the adaptive connection manager.
	ConnMgr *ConnMgrConfig `json:",omitempty"`
	// Health configures resource sampling and pressure levels.
	Health *HealthConfig `json:",omitempty"`
	// AutoTune configures the background tuner.
	AutoTune *AutoTuneConfig `json:",omitempty"`
	// Metrics configures the plugin's Prometheus collectors.
	Metrics *MetricsConfig `json:",omitempty"`
	// Runtime configures how the daemon's Go runtime gets its memory.
	Runtime *RuntimeConfig `json:",omitempty"`
}

// BitswapConfig holds the Bitswap knobs. The static caps (set values are
// appended to Kubo's bitswap options and win over Internal.Bitswap; unset
// values leave Kubo's own settings in force) and the adaptive policy's
// starting values (see docs/bitswap.md).
type BitswapConfig struct {
	// Enabled turns the plugin's Bitswap options on or off.
	Enabled kconfig.Flag `default:"true" doc:"apply the options below to Kubo's Bitswap"`
	// MaxOutstandingBytesPerPeer caps the bytes queued for one peer by the server.
	MaxOutstandingBytesPerPeer *kconfig.OptionalBytes `json:",omitempty" default:"1MiB" range:"64KiB,1GiB" doc:"server: bytes queued for one peer before it waits"`
	// TargetMessageSize is the size the server aims for when batching blocks into one message.
	TargetMessageSize *kconfig.OptionalBytes `json:",omitempty" default:"16KiB" range:"1KiB,4MiB" doc:"server: target size of one outgoing message"`
	// WantHaveReplaceSize is the largest block the server sends in answer to a want-have, instead of a HAVE.
	WantHaveReplaceSize *kconfig.OptionalBytes `json:",omitempty" default:"1KiB" range:"0,1MiB" doc:"server: a want-have for a block of at most this size is answered with the block itself rather than a HAVE (0: never)"`
	// TaskWorkerCount is the number of server workers sending messages.
	TaskWorkerCount *kconfig.OptionalInteger `json:",omitempty" default:"8" range:"1,512" doc:"server: workers that send blocks"`
	// EngineTaskWorkerCount is the number of engine workers preparing tasks.
	EngineTaskWorkerCount *kconfig.OptionalInteger `json:",omitempty" default:"8" range:"1,512" doc:"server: engine workers that prepare tasks"`
	// EngineBlockstoreWorkerCount is the number of workers reading the blockstore.
	EngineBlockstoreWorkerCount *kconfig.OptionalInteger `json:",omitempty" default:"128" range:"1,4096" doc:"server: workers that read the blockstore"`

	// Adaptive installs the exchange policy: request filter, task
	// comparator and tracer.
	Adaptive kconfig.Flag `default:"true" doc:"install the adaptive policy (classes, live limits, circuit breakers)"`
	// PriorityPeers lists peer IDs (comma-separated) served first, in
	// addition to Kubo's Peering.Peers.
	PriorityPeers *kconfig.OptionalString `json:",omitempty" default:"none" doc:"peer IDs, comma-separated, added to Peering.Peers in the priority class (none: no extra peers)"`
	// PriorityShare is the priority class's minimum share of service, in percent.
	PriorityShare *kconfig.OptionalInteger `json:",omitempty" default:"80" range:"1,98" doc:"priority class: minimum share of entries sent, percent"`
	// GoodShare is the good class's minimum share of service, in percent.
	GoodShare *kconfig.OptionalInteger `json:",omitempty" default:"10" range:"1,98" doc:"good class: minimum share of entries sent, percent"`
	// UnknownShare is the unknown class's minimum share of service, in percent.
	UnknownShare *kconfig.OptionalInteger `json:",omitempty" default:"10" range:"1,98" doc:"unknown class: minimum share of entries sent, percent"`
	// GoodPeerRate is the wants per second a good peer may send before its breaker trips.
	GoodPeerRate *kconfig.OptionalInteger `json:",omitempty" default:"20000" range:"0,16777216" doc:"wants/s one good peer may send before its breaker trips (0: no limit)"`
	// UnknownPeerRate is the wants per second an unknown peer may send before its breaker trips.
	UnknownPeerRate *kconfig.OptionalInteger `json:",omitempty" default:"5000" range:"0,16777216" doc:"wants/s one unknown peer may send before its breaker trips (0: no limit)"`
	// GoodPeerPending is the entries a good peer may have queued before new wants get DONT_HAVE.
	GoodPeerPending *kconfig.OptionalInteger `json:",omitempty" default:"1024" range:"0,16777216" doc:"entries one good peer may have queued before new wants get DONT_HAVE (0: no limit)"`
	// UnknownPeerPending is the entries an unknown peer may have queued before new wants get DONT_HAVE.
	UnknownPeerPending *kconfig.OptionalInteger `json:",omitempty" default:"512" range:"0,16777216" doc:"entries one unknown peer may have queued before new wants get DONT_HAVE (0: no limit)"`
	// GlobalPending is the number of queued entries that counts as full load.
	GlobalPending *kconfig.OptionalInteger `json:",omitempty" default:"65536" range:"64,67108864" doc:"queued entries (all peers) that count as full load"`
	// BreakerCooldown is how long a tripped breaker stays open at first.
	BreakerCooldown *kconfig.OptionalDuration `json:",omitempty" default:"5s" range:"100ms,1h" doc:"how long a tripped breaker stays open at first (doubles on re-trip)"`
	// BreakerMaxCooldown caps the doubling cooldown.
	BreakerMaxCooldown *kconfig.OptionalDuration `json:",omitempty" default:"1m0s" range:"100ms,24h" doc:"the longest a breaker stays open"`
	// BreakerRamp is how often a half-open breaker doubles the share it admits.
	BreakerRamp *kconfig.OptionalDuration `json:",omitempty" default:"1s" range:"10ms,1h" doc:"half-open: how often the admitted share doubles (1/8, 1/4, 1/2, closed)"`
	// DisconnectAbusive closes the connection of a peer whose breaker trips.
	DisconnectAbusive kconfig.Flag `default:"true" doc:"close the connection of a non-priority peer when its breaker trips"`
	// AbusiveHold is the longest a wantlist from a non-priority peer waits
	// before the server handles it when its breaker is open or it is at
	// its pending limit (back-pressure on that peer's stream); one whose
	// breaker is still open after it is dropped unanswered.
	AbusiveHold *kconfig.OptionalDuration `json:",omitempty" default:"1s" range:"0s,1m" doc:"longest a wantlist of a non-priority peer with an open breaker or a full backlog waits before the server handles it; dropped if the breaker is still open after it (0s: off)"`
	// Prefetch is the most wants each fetch session keeps in flight, the caller's own included, asking for dag-pb links ahead of the caller.
	Prefetch *kconfig.OptionalInteger `json:",omitempty" default:"256" range:"0,1024" doc:"client: wants each fetch session keeps in flight (the walker's included) by asking for links to blocks of at most 64 KiB ahead of it, at most 8 MiB ahead per session and 64 MiB per node (0: off)"`
	// PrefetchDirect sends the prefetcher's wants straight to the peer that
	// sent their parent node, on a stream of their own, instead of through
	// boxo's session and its 20 ms message cadence.
	PrefetchDirect kconfig.Flag `default:"true" doc:"client: send prefetch wants as want-blocks straight to the peer that sent their parent node, without boxo's 20 ms message cadence (false: through boxo's session)"`
	// SimulateDontHaveOnTimeout makes the client count a want-block a peer
	// has not answered within the DONT_HAVE timeout as a DONT_HAVE (boxo's
	// behaviour, off by default here); 16 in a row drop the peer from the
	// fetch session.
	SimulateDontHaveOnTimeout kconfig.Flag `default:"false" doc:"client: count a want-block unanswered within the DONT_HAVE timeout as DONT_HAVE (boxo: true)"`
	// DontHaveMinTimeout is the shortest DONT_HAVE timeout; boxo's timeout
	// is twice the peer's measured message latency, at least this.
	DontHaveMinTimeout *kconfig.OptionalDuration `json:",omitempty" default:"50ms" range:"1ms,1m" doc:"client: shortest DONT_HAVE timeout (boxo: twice the peer's message latency)"`
}

// ConnMgrConfig configures the adaptive connection manager. Kubo's
// Swarm.ConnMgr (LowWater, HighWater, GracePeriod, SilencePeriod) stays the
// starting point; these keys bound how far the live values may move.
type ConnMgrConfig struct {
	// Enabled swaps Kubo's connection manager for the adaptive one.
	Enabled kconfig.Flag `default:"true" doc:"replace Kubo's connection manager with the adaptive one"`
	// MinHighWater is the lowest HighWater under pressure; 0 means half of Swarm.ConnMgr.HighWater.
	MinHighWater *kconfig.OptionalInteger `json:",omitempty" default:"0" range:"0,1000000" doc:"lowest HighWater under pressure (0: half of Swarm.ConnMgr.HighWater)"`
	// MaxHighWater is the highest HighWater without pressure; 0 means twice Swarm.ConnMgr.HighWater.
	MaxHighWater *kconfig.OptionalInteger `json:",omitempty" default:"0" range:"0,1000000" doc:"highest HighWater under demand (0: twice Swarm.ConnMgr.HighWater)"`
	// MinGracePeriod is the shortest grace period under pressure or churn; 0 means a quarter of Swarm.ConnMgr.GracePeriod.
	MinGracePeriod *kconfig.OptionalDuration `json:",omitempty" default:"0s" range:"0s,1h" doc:"shortest grace period (0s: a quarter of Swarm.ConnMgr.GracePeriod)"`
	// MaxTrimPerRound caps the connections closed per trim round; 0 means a tenth of HighWater (at least 16).
	MaxTrimPerRound *kconfig.OptionalInteger `json:",omitempty" default:"0" range:"0,100000" doc:"connections closed per trim round (0: HighWater/10, at least 16)"`
	// RoundPause separates trim rounds while above LowWater.
	RoundPause *kconfig.OptionalDuration `json:",omitempty" default:"1s" range:"10ms,1m" doc:"pause between gradual trim rounds"`
	// AdaptInterval is how often the watermarks are reconsidered.
	AdaptInterval *kconfig.OptionalDuration `json:",omitempty" default:"5s" range:"100ms,10m" doc:"how often the watermarks follow the load"`
	// SlowLatency marks a peer slow (trimmed first) above this latency.
	SlowLatency *kconfig.OptionalDuration `json:",omitempty" default:"1s" range:"10ms,1m" doc:"latency above which a peer is slow and trimmed first"`
	// ProtectedPeers are multiaddrs ending in /p2p/<id> (or bare peer IDs) kept protected and connected.
	ProtectedPeers []string `default:"" doc:"multiaddrs with /p2p/<id> (or peer IDs) kept protected and connected"`
	// UsePeering adds Kubo's Peering.Peers to the persistent pool.
	UsePeering kconfig.Flag `default:"true" doc:"add Kubo's Peering.Peers to the persistent pool"`
	// ReconnectMinBackoff is the first redial delay of a lost pool peer.
	ReconnectMinBackoff *kconfig.OptionalDuration `json:",omitempty" default:"1s" range:"100ms,1h" doc:"first redial delay after a failed pool dial (doubles)"`
	// ReconnectMaxBackoff caps the redial delay.
	ReconnectMaxBackoff *kconfig.OptionalDuration `json:",omitempty" default:"5m" range:"1s,24h" doc:"longest redial delay of a pool peer"`
	// ClusterAPI is an IPFS Cluster REST API base URL whose /peers list adds the cluster's Kubo nodes to the pool.
	ClusterAPI *kconfig.OptionalString `json:",omitempty" default:"none" doc:"IPFS Cluster REST API URL (http://host:9094) whose /peers Kubo nodes join the pool (none: off)"`
	// ClusterRefresh is how often the cluster's /peers is read again.
	ClusterRefresh *kconfig.OptionalDuration `json:",omitempty" default:"1m" range:"1s,24h" doc:"how often the cluster's /peers is read again"`
	// KeepAlive is how often connected pool peers are pinged.
	KeepAlive *kconfig.OptionalDuration `json:",omitempty" default:"30s" range:"1s,1h" doc:"ping interval of connected pool peers"`
	// WatchStreams wraps the stream multiplexer to count stream resets and errors per peer (ConnectionQuality).
	WatchStreams kconfig.Flag `default:"true" doc:"count stream resets and errors per peer through the muxer (TCP/WebSocket only)"`
	// BatchTLSWrites sends the TLS records of one write with one syscall
	// (package tlsbatch); the bytes on the wire are TLS's, unchanged.
	BatchTLSWrites kconfig.Flag `default:"true" doc:"send the TLS records of one write (a yamux frame) with one write syscall instead of one per 16 KiB record; the bytes on the wire do not change"`
	// MuxerKeepAlive is yamux's keep-alive ping interval on every connection (libp2p: 30s).
	MuxerKeepAlive *kconfig.OptionalDuration `json:",omitempty" default:"2m" range:"10s,1h" doc:"yamux keep-alive ping interval per connection (libp2p: 30s)"`
	// MuxerRTTInterval is how often yamux measures each connection's round trip (libp2p: 30s).
	MuxerRTTInterval *kconfig.OptionalDuration `json:",omitempty" default:"5m" range:"10s,1h" doc:"yamux RTT measurement interval per connection (libp2p: 30s)"`
	// MuxerAcceptBacklog is yamux's backlog of unaccepted inbound and
	// unacknowledged outbound streams (libp2p: 256). A stock provider
	// sends each 16 KiB block on a stream of its own, so the backlog must
	// hold every block a fetch has in flight from one peer
	// (Bitswap.Prefetch): a stream past it is reset and its block lost.
	MuxerAcceptBacklog *kconfig.OptionalInteger `json:",omitempty" default:"512" range:"16,4096" doc:"yamux stream backlog per connection (libp2p: 256); keep it at least twice Bitswap.Prefetch"`
}

// HealthConfig configures the resource monitor and its pressure levels.
// Percentages are used/limit of the most loaded resource (memory against
// MemoryBudget, the cgroup limit and the host; fds against RLIMIT_NOFILE);
// disk paths get warnings at the same percentages but do not change the
// level. Each Exit value must be below its Enter value.
type HealthConfig struct {
	// Enabled starts the resource monitor in the daemon.
	Enabled kconfig.Flag `default:"true" doc:"sample resources and publish pressure levels in the daemon"`
	// Interval is the time between samples.
	Interval *kconfig.OptionalDuration `json:",omitempty" default:"5s" range:"100ms,10m" doc:"time between resource samples"`
	// MemoryBudget is the RSS this daemon may use; 0 means no budget of
	// its own (the cgroup limit and the host's memory still count).
	MemoryBudget *kconfig.OptionalBytes `json:",omitempty" default:"0" range:"0,64TiB" doc:"resident memory the daemon may use; 0: no budget of its own"`
	// ElevatedPercent is the usage at which the level becomes elevated.
	ElevatedPercent *kconfig.OptionalInteger `json:",omitempty" default:"80" range:"1,100" doc:"usage % at which the level becomes elevated"`
	// ElevatedExitPercent is the usage below which elevated returns to normal.
	ElevatedExitPercent *kconfig.OptionalInteger `json:",omitempty" default:"70" range:"1,100" doc:"usage % below which elevated returns to normal"`
	// CriticalPercent is the usage at which the level becomes critical.
	CriticalPercent *kconfig.OptionalInteger `json:",omitempty" default:"95" range:"1,100" doc:"usage % at which the level becomes critical"`
	// CriticalExitPercent is the usage below which critical steps down.
	CriticalExitPercent *kconfig.OptionalInteger `json:",omitempty" default:"85" range:"1,100" doc:"usage % below which critical steps down"`
	// MinDwell is how long a level is held before it may step down.
	MinDwell *kconfig.OptionalDuration `json:",omitempty" default:"10s" range:"0s,1h" doc:"time a level is held before it may step down"`
	// Horizon is how far ahead a forecast exhaustion raises a warning.
	Horizon *kconfig.OptionalDuration `json:",omitempty" default:"30m" range:"0s,24h" doc:"warn when a limit is forecast to be reached within this time; 0s: off"`
	// DiskPaths are the paths whose filesystems are watched, separated by
	// ':'; the word "auto" stands for the repo and every path in
	// Datastore.Spec.
	DiskPaths *kconfig.OptionalString `json:",omitempty" default:"auto" doc:"':'-separated paths whose free space is watched; auto: the repo and Datastore.Spec paths"`
}

// AutoTuneConfig configures the tuner.
type AutoTuneConfig struct {
	// Enabled starts the tuner in the daemon.
	Enabled kconfig.Flag `default:"false" doc:"let the tuner change live knobs in the daemon"`
	// Window is the observation window: one change is judged per window.
	Window *kconfig.OptionalDuration `json:",omitempty" default:"1m" range:"1s,1h" doc:"observation window; one change is judged per window"`
	// P99Limit is the latency constraint of the default objective.
	P99Limit *kconfig.OptionalDuration `json:",omitempty" default:"500ms" range:"1ms,1m" doc:"p99 latency the objective penalises beyond"`
	// TuneGOGC registers the Go GC target as a knob (not when the GOGC
	// environment variable is set).
	TuneGOGC kconfig.Flag `default:"true" doc:"let the tuner change the Go GC target (GOGC) unless GOGC is set"`
}

// MetricsConfig configures the plugin's Prometheus collectors.
type MetricsConfig struct {
	// Enabled registers the highload_* collectors on Kubo's registry.
	Enabled kconfig.Flag `default:"true" doc:"register highload_* metrics at /debug/metrics/prometheus"`
}

// RuntimeConfig configures how the daemon's Go runtime gets its memory from
// the kernel (see docs/health.md, "Huge pages for the Go heap").
type RuntimeConfig struct {
	// HugePages marks the Go heap for transparent huge pages when the
	// kernel's THP mode is madvise; memory pressure turns it off.
	HugePages kconfig.Flag `default:"true" doc:"back the Go heap with transparent huge pages when the kernel's THP mode is madvise; off while memory pressure is elevated or critical"`
	// HeapReserve is the heap growth mapped and marked at start, so that
	// the heap's first growth gets huge pages; it is never touched.
	HeapReserve *kconfig.OptionalBytes `json:",omitempty" default:"256MiB" range:"0,4GiB" doc:"heap address space mapped and marked for huge pages at start, so the heap's first growth gets them (untouched: no resident memory)"`
}
