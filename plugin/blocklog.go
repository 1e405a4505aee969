package plugin

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/ipfs/kubo/core"
	kplugin "github.com/ipfs/kubo/plugin"
	"github.com/ipfs/kubo/repo"
	"github.com/ipfs/kubo/repo/fsrepo"

	"github.com/kubo-highload/highload/datastore/blocklog"
	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// BlocklogTypeName is the datastore type users write in Datastore.Spec.
const BlocklogTypeName = "blocklog"

// BlocklogDatastore registers the `blocklog` datastore type: the
// append-only log of datastore/blocklog, meant as a tiered store's fast
// durable tier for small blocks (docs/blocklog.md).
type BlocklogDatastore struct{}

var _ kplugin.PluginDatastore = (*BlocklogDatastore)(nil)

// Name returns "ds-blocklog".
func (*BlocklogDatastore) Name() string { return "ds-blocklog" }

// Version returns the plugin's version.
func (*BlocklogDatastore) Version() string { return (&Highload{}).Version() }

// Init does nothing: the datastore reads its own spec.
func (*BlocklogDatastore) Init(*kplugin.Environment) error { return nil }

// DatastoreTypeName returns "blocklog".
func (*BlocklogDatastore) DatastoreTypeName() string { return BlocklogTypeName }

// DatastoreConfigParser parses a blocklog spec.
func (*BlocklogDatastore) DatastoreConfigParser() fsrepo.ConfigFromMap {
	return parseBlocklogConfig
}

type blocklogConfig struct {
	path string
	opts blocklog.Options
}

// parseBlocklogConfig reads
//
//	{"type": "blocklog", "path": "blocklog", "sync": false, "preallocate": true,
//	 "preallocMaxGroup": "0", "segmentSize": "256MiB", "compactRatio": 0.5, "compactRate": "32MiB",
//	 "compactInterval": "30s"}
//
// Every field but path is a tunable; unknown fields are refused by name.
func parseBlocklogConfig(m map[string]any) (fsrepo.DatastoreConfig, error) {
	c := &blocklogConfig{}
	for k, v := range m {
		switch k {
		case "type", "prefix": // prefix belongs to Kubo's measure wrapper
		case "path":
			s, ok := v.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("blocklog: path: want a non-empty string, got %v", v)
			}
			c.path = s
		case "sync":
			b, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("blocklog: sync: want true or false, got %v", v)
			}
			c.opts.Sync = b
		case "preallocate":
			b, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("blocklog: preallocate: want true or false, got %v", v)
			}
			c.opts.NoPreallocate = !b
		case "preallocMaxGroup":
			n, err := blocklogBytes(v)
			if err != nil {
				return nil, fmt.Errorf("blocklog: preallocMaxGroup: %w", err)
			}
			if n > 1<<30 {
				return nil, fmt.Errorf("blocklog: preallocMaxGroup: %d is above 1 GiB", n)
			}
			c.opts.PreallocMaxGroup = int(n)
		case "segmentSize", "compactRate":
			n, err := blocklogBytes(v)
			if err != nil {
				return nil, fmt.Errorf("blocklog: %s: %w", k, err)
			}
			if k == "segmentSize" {
				c.opts.SegmentSize = n
			} else {
				c.opts.CompactRate = n
			}
		case "compactRatio":
			f, ok := v.(float64)
			if !ok {
				return nil, fmt.Errorf("blocklog: compactRatio: want a number in (0, 1], got %v", v)
			}
			c.opts.CompactRatio = f
		case "compactInterval":
			s, ok := v.(string)
			d, err := time.ParseDuration(s)
			if !ok || err != nil {
				return nil, fmt.Errorf("blocklog: compactInterval: want a duration such as \"30s\" (or \"-1s\" to disable), got %v", v)
			}
			c.opts.CompactInterval = d
		default:
			return nil, fmt.Errorf("blocklog: unknown field %q (known: path, sync, preallocate, preallocMaxGroup, segmentSize, compactRatio, compactRate, compactInterval)", k)
		}
	}
	if c.path == "" {
		return nil, fmt.Errorf("blocklog: path: missing")
	}
	// Check the tunables now, naming the field, rather than at open.
	check := c.opts
	if err := blocklog.CheckOptions(&check); err != nil {
		return nil, fmt.Errorf("%s", specFieldNames.Replace(err.Error()))
	}
	return c, nil
}

// specFieldNames turns blocklog.Options field names in errors into the
// spec's.
var specFieldNames = strings.NewReplacer("PreallocMaxGroup", "preallocMaxGroup", "SegmentSize", "segmentSize", "CompactRatio", "compactRatio",
	"CompactRate", "compactRate", "MaxGroupBytes", "segmentSize/4")

func blocklogBytes(v any) (int64, error) {
	switch x := v.(type) {
	case float64:
		if x < 0 || x != float64(int64(x)) {
			return 0, fmt.Errorf("want a whole number of bytes, got %v", x)
		}
		return int64(x), nil
	case string:
		n, err := humanize.ParseBytes(x)
		if err != nil {
			return 0, fmt.Errorf("want a size such as \"256MiB\", got %q", x)
		}
		return int64(n), nil
	}
	return 0, fmt.Errorf("want a size such as \"256MiB\", got %v", v)
}

// DiskSpec is the store's identity: its type and path. sync, sizes and the
// compaction settings are tunables and may change freely.
func (c *blocklogConfig) DiskSpec() fsrepo.DiskSpec {
	return fsrepo.DiskSpec{"type": BlocklogTypeName, "path": c.path}
}

// Create opens the log under the repo at path.
func (c *blocklogConfig) Create(path string) (repo.Datastore, error) {
	p := c.path
	if !filepath.IsAbs(p) {
		p = filepath.Join(path, p)
	}
	d, err := blocklog.Open(p, c.opts)
	if err != nil {
		return nil, err
	}
	openBlocklogs.Lock()
	openBlocklogs.m[p] = d
	openBlocklogs.Unlock()
	hlstate.SetLive("blocklog", func() any { return blocklogStats() })
	hlstate.SetComponent("blocklog", hlstate.StatusActive, fmt.Sprintf("log at %s (sync=%v)", p, c.opts.Sync))
	return blocklogHandle{d, p}, nil
}

// blocklogHandle forgets the store in openBlocklogs when Kubo closes it.
type blocklogHandle struct {
	*blocklog.Datastore
	path string
}

// Close closes the log.
func (h blocklogHandle) Close() error {
	openBlocklogs.Lock()
	if openBlocklogs.m[h.path] == h.Datastore {
		delete(openBlocklogs.m, h.path)
	}
	openBlocklogs.Unlock()
	return h.Datastore.Close()
}

// openBlocklogs are the logs this process opened, by path, for stats and
// metrics.
var openBlocklogs = struct {
	sync.Mutex
	m map[string]*blocklog.Datastore
}{m: map[string]*blocklog.Datastore{}}

// BlocklogStats is one open log's stats, for `ipfs stats highload` and the
// metrics.
type BlocklogStats struct {
	Path  string         `json:"path"`
	Stats blocklog.Stats `json:"stats"`
}

func blocklogStats() []BlocklogStats {
	openBlocklogs.Lock()
	defer openBlocklogs.Unlock()
	out := make([]BlocklogStats, 0, len(openBlocklogs.m))
	for p, d := range openBlocklogs.m {
		out = append(out, BlocklogStats{Path: p, Stats: d.Stats()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func init() {
	registerComponent(component{
		name:  "blocklog",
		order: 51,
		init: func(_, _ *hlconfig.Config) error {
			hlstate.SetComponent("blocklog", hlstate.StatusIdle, `no "blocklog" datastore opened (see Datastore.Spec)`)
			return nil
		},
		start: func(_ *core.IpfsNode, _, r *hlconfig.Config) error {
			if len(blocklogStats()) == 0 || !r.Metrics.Enabled.WithDefault(true) {
				return nil
			}
			return registerCollector(blocklogCollector{})
		},
	})
}
