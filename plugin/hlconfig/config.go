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

// BitswapConfig holds the Bitswap knobs. Set values are appended to Kubo's
// bitswap options and win over Internal.Bitswap; unset values leave Kubo's
// own settings in force.
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
