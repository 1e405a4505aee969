// Package hlstate is the process-wide record of what the highload plugin
// loaded and built: its parsed config and the state of each component.
//
// The model: Kubo gives plugins no place on core.IpfsNode, and a command may
// run in the daemon or in an offline CLI process. Each process fills its own
// record from the plugin's Init and from fx hooks, and `ipfs stats highload`
// reads the record of the process it runs in. Reads and writes are safe from
// any goroutine.
//
//	hlstate.SetLoaded(cfg)
//	hlstate.SetComponent("bitswap", hlstate.StatusActive, "static caps applied")
//	snap := hlstate.Get()
package hlstate

import (
	"sort"
	"sync"

	"github.com/kubo-highload/highload/plugin/hlconfig"
)

// Version is the highload plugin's version.
const Version = "0.1.0"

// Component statuses.
const (
	// StatusActive: the component runs and its settings are applied.
	StatusActive = "active"
	// StatusDisabled: turned off by its Enabled key.
	StatusDisabled = "disabled"
	// StatusIdle: enabled, but this node does not run it (an offline node).
	StatusIdle = "idle"
	// StatusNotBuilt: the component does not exist in this build yet.
	StatusNotBuilt = "not built yet"
)

// Component is one component's state as shown by `ipfs stats highload`.
type Component struct {
	// Name is the component's short name ("bitswap", "tiered", ...).
	Name string
	// Status is one of the Status* constants.
	Status string
	// Detail says why, or what is applied, in a few words.
	Detail string
}

// Snapshot is a copy of the record.
type Snapshot struct {
	// Loaded is true once the plugin's Init accepted its config.
	Loaded bool
	// Config is the parsed (unresolved) config; nil before Init.
	Config *hlconfig.Config
	// Components are sorted by name.
	Components []Component
}

var (
	mu         sync.Mutex
	loaded     bool
	config     *hlconfig.Config
	components = map[string]Component{}
)

// SetLoaded records that the plugin accepted cfg.
func SetLoaded(cfg *hlconfig.Config) {
	mu.Lock()
	defer mu.Unlock()
	loaded, config = true, cfg
}

// SetComponent records a component's status, replacing any earlier one.
func SetComponent(name, status, detail string) {
	mu.Lock()
	defer mu.Unlock()
	components[name] = Component{Name: name, Status: status, Detail: detail}
}

// Get returns a copy of the record.
func Get() Snapshot {
	mu.Lock()
	defer mu.Unlock()
	s := Snapshot{Loaded: loaded, Config: config}
	for _, c := range components {
		s.Components = append(s.Components, c)
	}
	sort.Slice(s.Components, func(i, j int) bool { return s.Components[i].Name < s.Components[j].Name })
	return s
}

// Reset clears the record; for tests.
func Reset() {
	mu.Lock()
	defer mu.Unlock()
	loaded, config = false, nil
	components = map[string]Component{}
}
