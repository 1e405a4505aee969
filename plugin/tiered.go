package plugin

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"

	"github.com/ipfs/boxo/datastore/dshelp"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/kubo/core"
	kplugin "github.com/ipfs/kubo/plugin"
	"github.com/ipfs/kubo/repo"
	"github.com/ipfs/kubo/repo/fsrepo"
	mh "github.com/multiformats/go-multihash"

	"github.com/kubo-highload/highload/datastore/tiered"
	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// TieredTypeName is the datastore type users write in Datastore.Spec.
const TieredTypeName = "tiered"

// TieredDatastore registers the `tiered` datastore type with Kubo's fsrepo.
// The spec is parsed by tiered.ParseSpec; each durable tier's child is any
// Kubo datastore spec, built with fsrepo.AnyDatastoreConfig.
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

// DatastoreConfigParser parses a tiered spec and its children's specs.
func (*TieredDatastore) DatastoreConfigParser() fsrepo.ConfigFromMap {
	return parseTieredConfig
}

func parseTieredConfig(m map[string]any) (fsrepo.DatastoreConfig, error) {
	spec, err := tiered.ParseSpec(m)
	if err != nil {
		return nil, err
	}
	c := &tieredConfig{spec: spec}
	for _, t := range spec.Tiers {
		child, err := fsrepo.AnyDatastoreConfig(t.Child)
		if err != nil {
			return nil, fmt.Errorf("tiered: tier %s: child: %w", t.Name, err)
		}
		c.children = append(c.children, child)
	}
	return c, nil
}

type tieredConfig struct {
	spec     *tiered.Spec
	children []fsrepo.DatastoreConfig
}

// DiskSpec is the identity of the data on disk: the durable children's
// DiskSpecs, nothing else, so capacities, the memory tier and tunables can
// change freely. With one durable tier it is that child's DiskSpec itself:
// a repo's flatfs /blocks mount can become a tiered store (adding a memory
// tier) without tripping Kubo's datastore_spec check or copying a block.
func (c *tieredConfig) DiskSpec() fsrepo.DiskSpec {
	if len(c.children) == 1 {
		return c.children[0].DiskSpec()
	}
	tiers := make([]any, len(c.children))
	for i, ch := range c.children {
		tiers[i] = map[string]any(ch.DiskSpec())
	}
	return fsrepo.DiskSpec{"type": TieredTypeName, "tiers": tiers}
}

// Create builds the children and opens the tiered store over them.
func (c *tieredConfig) Create(path string) (repo.Datastore, error) {
	var children []ds.Datastore
	closeAll := func() {
		for _, ch := range children {
			ch.Close()
		}
	}
	for i, cc := range c.children {
		ch, err := cc.Create(path)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("tiered: open tier %s: %w", c.spec.Tiers[i].Name, err)
		}
		// Repeated errors isolate the tier (plugin/tiered_isolation.go).
		children = append(children, isolateTier(c.spec.Tiers[i].Name, ch, isolation()))
	}
	opts := c.spec.Options(children)
	opts.Verify = verifyBlock
	d, err := tiered.Open(context.Background(), opts)
	if err != nil {
		closeAll()
		return nil, err
	}
	currentTiered.Store(d)
	hlstate.SetLive("tiered", func() any { return d.Stats(context.Background()) })
	hlstate.SetComponent("tiered", hlstate.StatusActive,
		fmt.Sprintf("%d durable tier(s), memory tier %s", len(children), humanBytes(c.spec.MemoryCapacity)))
	return d, nil
}

// verifyBlock checks a value under /blocks against the multihash its key
// encodes. Keys that are not block keys verify as true.
func verifyBlock(key ds.Key, v []byte) bool {
	want, err := dshelp.DsKeyToMultihash(ds.NewKey(key.BaseNamespace()))
	if err != nil {
		return true
	}
	dec, err := mh.Decode(want)
	if err != nil {
		return true
	}
	got, err := mh.Sum(v, dec.Code, dec.Length)
	if err != nil {
		return true // a hash function this build does not know: cannot judge
	}
	return bytes.Equal(got, want)
}

// currentTiered is the store the last Create opened in this process (Kubo
// opens one repo per process), read by the metrics collector at scrape time.
var currentTiered atomic.Pointer[tiered.Datastore]

func humanBytes(n uint64) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

func init() {
	registerComponent(component{
		name:  "tiered",
		order: 50,
		init: func(_, _ *hlconfig.Config) error {
			hlstate.SetComponent("tiered", hlstate.StatusIdle, `no "tiered" datastore opened (see Datastore.Spec)`)
			return nil
		},
		start: func(_ *core.IpfsNode, _, r *hlconfig.Config) error {
			if currentTiered.Load() == nil || !r.Metrics.Enabled.WithDefault(true) {
				return nil
			}
			return registerCollector(tieredCollector{})
		},
	})
}
