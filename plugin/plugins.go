package plugin

import (
	kplugin "github.com/ipfs/kubo/plugin"
)

// Plugins is the list a custom Kubo preloads (see preload_list at the root).
//
// This package must not import plugin/commands (or anything that imports
// Kubo's core/commands): in Kubo's in-tree build, plugin/loader imports this
// package, and core/commands imports plugin/loader, so that would be an
// import cycle. The binary's main imports plugin/commands instead.
var Plugins = []kplugin.Plugin{
	&Highload{},
	&TieredDatastore{},
	&BlocklogDatastore{},
}
