// Package plugin is the glue between Kubo and the highload components: the
// plugin list that build/kubo preloads, the `highload` PluginFx that reads and
// validates Plugins.Plugins.highload.Config and wires components into Kubo's
// fx graph, the `tiered` datastore type, the `highload` init profile and the
// Prometheus collectors. The `ipfs stats highload` commands live in
// plugin/commands. Only this tree imports Kubo.
//
// Usage, in a custom Kubo main:
//
//	loader.Preload(plugin.Plugins...)
//	os.Exit(kubo.Start(kubo.BuildDefaultEnv))
package plugin
