package plugin

import (
	kplugin "github.com/ipfs/kubo/plugin"

	// The stats commands register themselves with Kubo's command tree.
	_ "github.com/kubo-highload/highload/plugin/commands"
)

// Plugins is the list a custom Kubo preloads (see preload_list at the root).
var Plugins = []kplugin.Plugin{
	&Highload{},
	&TieredDatastore{},
}
