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
	// Prefetch is the number of dag-pb links each fetch session asks for ahead of the caller.
	Prefetch *kconfig.OptionalInteger `json:",omitempty" default:"0" range:"0,4096" doc:"client (experimental): links each fetch session asks for ahead of the walker (0: off)"`
}

// ConnMgrConfig configures the adaptive connection manager (not built yet).
type ConnMgrConfig struct {
	// Enabled will swap Kubo's connection manager for the adaptive one.
	Enabled kconfig.Flag `default:"true" doc:"use the adaptive connection manager (not built yet)"`
}

// HealthConfig configures the resource monitor (not built yet).
type HealthConfig struct {
	// Enabled will start the resource monitor on online nodes.
	Enabled kconfig.Flag `default:"true" doc:"sample resources and publish pressure levels (not built yet)"`
}

// AutoTuneConfig configures the tuner (not built yet).
type AutoTuneConfig struct {
	// Enabled will start the tuner on online nodes.
	Enabled kconfig.Flag `default:"false" doc:"let the tuner change live knobs (not built yet)"`
}

// MetricsConfig configures the plugin's Prometheus collectors.
type MetricsConfig struct {
	// Enabled registers the highload_* collectors on Kubo's registry.
	Enabled kconfig.Flag `default:"true" doc:"register highload_* metrics at /debug/metrics/prometheus"`
}
