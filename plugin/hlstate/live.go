package hlstate

import "sync"

// LiveFunc returns a component's live figures (limits, counters, tiers...)
// for `ipfs stats highload <component>`. The value's concrete type belongs to
// the component's package; the command that shows it type-asserts it.
type LiveFunc func() any

var (
	liveMu sync.Mutex
	live   = map[string]LiveFunc{}
)

// SetLive publishes f as the live view of the named component. The daemon's
// component calls it once it runs; a later call replaces f (Kubo may build
// more than one node per process, the last one wins).
func SetLive(name string, f LiveFunc) {
	liveMu.Lock()
	defer liveMu.Unlock()
	if f == nil {
		delete(live, name)
		return
	}
	live[name] = f
}

// Live returns the named component's live view, or false when the component
// is not running in this process (an offline node, or disabled).
func Live(name string) (LiveFunc, bool) {
	liveMu.Lock()
	defer liveMu.Unlock()
	f, ok := live[name]
	return f, ok
}
