package plugin

import (
	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// plannedComponent registers a component that is not built yet, so `ipfs
// stats highload` lists it honestly. Each is replaced by its own file when it
// lands.
func plannedComponent(name, what string, order int) {
	registerComponent(component{
		name:  name,
		order: order,
		init: func(_, _ *hlconfig.Config) error {
			hlstate.SetComponent(name, hlstate.StatusNotBuilt, what+": planned")
			return nil
		},
	})
}
