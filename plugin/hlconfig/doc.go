// Package hlconfig is the schema of the highload plugin's configuration, the
// value found in Kubo's config at Plugins.Plugins.highload.Config.
//
// The model: a Config is a tree of sections (Bitswap, ConnMgr, Health,
// AutoTune, Metrics, Runtime), each a struct of Kubo's Optional* types. Every leaf
// carries its default and its accepted range in struct tags, so parsing,
// validation, defaults, the init profile and the docs all come from one
// place. Parse walks the raw JSON value against that schema and refuses
// unknown keys (with a "did you mean"), values of the wrong type and values
// out of range, naming the full key path:
//
//	highload: Config.Bitswap.MaxOutstandingBytesPerPeer: "12QB" is not a size
//
// Usage:
//
//	cfg, err := hlconfig.Parse(env.Config) // env.Config from Kubo's plugin loader
//	if err != nil { return err }
//	workers := cfg.Resolved().Bitswap.TaskWorkerCount.WithDefault(0)
package hlconfig
