package plugin

import (
	"fmt"
	"os"

	logging "github.com/ipfs/go-log/v2"
	"github.com/ipfs/kubo/core"
	kplugin "github.com/ipfs/kubo/plugin"
	"go.uber.org/fx"

	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

var log = logging.Logger("highload/plugin")

// Name is the plugin's name in Kubo's config: Plugins.Plugins.highload.
const Name = "highload"

// Highload is the main plugin. Init parses and validates its config, so a bad
// config stops every `ipfs` command with a message naming the key; Options
// wires the components into each node Kubo builds.
type Highload struct {
	cfg *hlconfig.Config
}

var (
	_ kplugin.PluginFx             = (*Highload)(nil)
	_ kplugin.PluginDaemonInternal = (*Highload)(nil)
)

// Name returns "highload".
func (*Highload) Name() string { return Name }

// Version returns the plugin's version.
func (*Highload) Version() string { return hlstate.Version }

// Init parses Plugins.Plugins.highload.Config. It starts nothing.
func (p *Highload) Init(env *kplugin.Environment) error {
	cfg, err := hlconfig.Parse(env.Config)
	if err != nil {
		if !isConfigCommand(os.Args) {
			return err
		}
		// `ipfs config ...` must stay usable, or a user could not fix the
		// value with the tool that set it. Say so loudly and load nothing.
		fmt.Fprintf(os.Stderr, "WARNING: %v\nWARNING: highload: the plugin is inactive for this `ipfs config` command only; fix the value above.\n", err)
		return nil
	}
	p.cfg = cfg
	hlstate.SetLoaded(cfg)
	r := cfg.Resolved()
	for _, c := range components {
		if c.init == nil {
			continue
		}
		if err := c.init(cfg, r); err != nil {
			return err
		}
	}
	log.Debugf("highload plugin %s loaded", hlstate.Version)
	return nil
}

// Options adds the plugin's fx options to a node. Everything added here is
// either a decorator of something only an online node builds, or an invoke
// that does nothing heavy on an offline node.
func (p *Highload) Options(info core.FXNodeInfo) ([]fx.Option, error) {
	opts := info.FXOptions
	if p.cfg == nil { // config refused; only `ipfs config` gets this far
		return opts, nil
	}
	r := p.cfg.Resolved()
	for _, c := range components {
		if c.options == nil {
			continue
		}
		more, err := c.options(info, p.cfg, r)
		if err != nil {
			return nil, err
		}
		opts = append(opts, more...)
	}
	return opts, nil
}

// Start runs in the daemon only (online or --offline), once its node is
// built: each component's start hook runs in order.
func (p *Highload) Start(n *core.IpfsNode) error {
	if p.cfg == nil {
		return nil
	}
	r := p.cfg.Resolved()
	for _, c := range components {
		if c.start == nil {
			continue
		}
		if err := c.start(n, p.cfg, r); err != nil {
			return err
		}
	}
	return nil
}

// globalFlagsWithValue are Kubo's global options that take a separate value
// argument, so that isConfigCommand can skip them.
var globalFlagsWithValue = map[string]bool{
	"-c": true, "--repo-dir": true, "--config-file": true, "--api": true,
	"--timeout": true, "--enc": true, "--encoding": true, "--api-auth": true,
	"--cid-base": true,
}

// isConfigCommand reports whether args (os.Args) run `ipfs config ...`.
func isConfigCommand(args []string) bool {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if len(a) > 0 && a[0] == '-' {
			if globalFlagsWithValue[a] {
				i++
			}
			continue
		}
		return a == "config"
	}
	return false
}
