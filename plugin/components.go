package plugin

import (
	"sort"

	"github.com/ipfs/kubo/core"
	"go.uber.org/fx"

	"github.com/kubo-highload/highload/plugin/hlconfig"
)

// component is one part of the plugin (bitswap, connmgr, health, ...). Each
// lives in its own file of this package and registers itself from init(), so
// the parts never edit a shared list.
//
// The hooks receive the config twice: cfg as the user wrote it (unset keys
// are nil) and r resolved with every default filled in.
type component struct {
	// name is the component's name in hlstate and `ipfs stats highload`.
	name string
	// order sorts the components; lower runs first in every hook. Health
	// (which others subscribe to) uses 10, the tuner 90, the rest 50.
	order int
	// init runs in the plugin's Init. It must not start anything; it
	// records the component's initial status in hlstate.
	init func(cfg, r *hlconfig.Config) error
	// options returns the fx options the component adds to every node Kubo
	// builds (online or offline). Nil means none.
	options func(info core.FXNodeInfo, cfg, r *hlconfig.Config) ([]fx.Option, error)
	// start runs in the daemon (online or --offline) once its node is built.
	start func(n *core.IpfsNode, cfg, r *hlconfig.Config) error
}

var components []component

// registerComponent adds c to the plugin. It is called from init().
func registerComponent(c component) {
	components = append(components, c)
	sort.SliceStable(components, func(i, j int) bool {
		if components[i].order != components[j].order {
			return components[i].order < components[j].order
		}
		return components[i].name < components[j].name
	})
}
