package plugin

import (
	"fmt"

	kplugin "github.com/ipfs/kubo/plugin"
	"github.com/ipfs/kubo/repo/fsrepo"
)

// TieredTypeName is the datastore type users write in Datastore.Spec.
const TieredTypeName = "tiered"

// ErrTieredNotBuilt is returned for any `tiered` datastore spec until the
// tiered datastore lands: Kubo must refuse the repo rather than fall back to
// another store silently.
var ErrTieredNotBuilt = fmt.Errorf(`highload: datastore type %q is not built yet in this release; `+
	`use "flatfs", "pebbleds" or "levelds" in Datastore.Spec for now`, TieredTypeName)

// TieredDatastore registers the `tiered` datastore type with Kubo's fsrepo.
type TieredDatastore struct{}

var _ kplugin.PluginDatastore = (*TieredDatastore)(nil)

// Name returns "ds-tiered", following Kubo's "ds-flatfs", "ds-pebble".
func (*TieredDatastore) Name() string { return "ds-tiered" }

// Version returns the plugin's version.
func (*TieredDatastore) Version() string { return (&Highload{}).Version() }

// Init does nothing: the datastore reads its own spec.
func (*TieredDatastore) Init(*kplugin.Environment) error { return nil }

// DatastoreTypeName returns "tiered".
func (*TieredDatastore) DatastoreTypeName() string { return TieredTypeName }

// DatastoreConfigParser refuses every spec with ErrTieredNotBuilt.
func (*TieredDatastore) DatastoreConfigParser() fsrepo.ConfigFromMap {
	return func(map[string]any) (fsrepo.DatastoreConfig, error) {
		return nil, ErrTieredNotBuilt
	}
}
