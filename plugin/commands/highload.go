package commands

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	cmds "github.com/ipfs/go-ipfs-cmds"
	kconfig "github.com/ipfs/kubo/config"
	kcommands "github.com/ipfs/kubo/core/commands"
	"github.com/ipfs/kubo/core/commands/cmdenv"

	// The plugin package registers the highload profile in its init(), which
	// must run before refreshProfileHelp.
	_ "github.com/kubo-highload/highload/plugin"
	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// pluginName is the plugin's key in Plugins.Plugins.
const pluginName = "highload"

// Status is the output of `ipfs stats highload`.
type Status struct {
	// Plugin is the plugin's name in Kubo's config.
	Plugin string
	// Version is the plugin's version.
	Version string
	// Loaded is false when Kubo did not load the plugin (Disabled is true).
	Loaded bool
	// Online says whether the node answering runs networked (a daemon).
	Online bool
	// Config is the effective config: the user's values with defaults filled
	// in. Empty when the plugin is not loaded.
	Config map[string]any `json:",omitempty"`
	// Components lists each component's state, sorted by name.
	Components []hlstate.Component
}

// HighloadCmd is `ipfs stats highload`.
var HighloadCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Show the highload plugin's version, config and components.",
		ShortDescription: `
'ipfs stats highload' prints the highload plugin's version, whether the node
is online, the effective plugin config (Plugins.Plugins.highload.Config with
defaults filled in) and the state of each component. It runs in the daemon
when one is up, and on an offline node otherwise.
`,
	},
	Run: func(req *cmds.Request, res cmds.ResponseEmitter, env cmds.Environment) error {
		nd, err := cmdenv.GetNode(env)
		if err != nil {
			return err
		}
		out := Status{Plugin: pluginName, Version: hlstate.Version, Online: nd.IsOnline}
		snap := hlstate.Get()
		if !snap.Loaded {
			out.Components = []hlstate.Component{{Name: pluginName, Status: hlstate.StatusDisabled,
				Detail: "not loaded: Plugins.Plugins.highload.Disabled is true"}}
			return cmds.EmitOnce(res, &out)
		}
		out.Loaded = true
		if out.Config, err = snap.Config.Resolved().ToMap(); err != nil {
			return err
		}
		out.Components = snap.Components
		return cmds.EmitOnce(res, &out)
	},
	Type: Status{},
	Encoders: cmds.EncoderMap{
		cmds.Text: cmds.MakeTypedEncoder(func(req *cmds.Request, w io.Writer, s *Status) error {
			return writeStatus(w, s)
		}),
	},
}

func writeStatus(w io.Writer, s *Status) error {
	online := "offline"
	if s.Online {
		online = "online"
	}
	fmt.Fprintf(w, "highload plugin %s\n", s.Version)
	fmt.Fprintf(w, "  node:   %s\n", online)
	if !s.Loaded {
		fmt.Fprintf(w, "  plugin: not loaded (Plugins.Plugins.highload.Disabled is true)\n")
		return nil
	}
	fmt.Fprintf(w, "  plugin: loaded\n\nComponents:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range s.Components {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Name, c.Status, c.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The config arrives as JSON-shaped data (from the daemon, over HTTP):
	// read it back through the schema to list it in declaration order.
	cfg, err := hlconfig.Parse(s.Config)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nConfig (Plugins.Plugins.highload.Config, defaults filled in):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range cfg.Fields() {
		fmt.Fprintf(tw, "  %s\t%s\n", f.Path[len(hlconfig.RootPath)+1:], f.Value)
	}
	return tw.Flush()
}

func init() {
	kcommands.StatsCmd.Subcommands["highload"] = HighloadCmd
	refreshProfileHelp()
}

// refreshProfileHelp rebuilds the profile list in `ipfs config profile
// --help`: Kubo renders it while its own packages initialise, before the
// plugin package has added the highload profile.
func refreshProfileHelp() {
	cfgCmd, ok := kcommands.Root.Subcommands["config"]
	if !ok {
		return
	}
	profCmd, ok := cfgCmd.Subcommands["profile"]
	if !ok {
		return
	}
	names := make([]string, 0, len(kconfig.Profiles))
	for name := range kconfig.Profiles {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("\nAvailable profiles:\n")
	for _, name := range names {
		fmt.Fprintf(&b, "  '%s':\n", name)
		for _, line := range strings.Split(kconfig.Profiles[name].Description, "\n") {
			b.WriteString("    " + line + "\n")
		}
	}
	b.WriteString("\n")
	profCmd.Helptext.ShortDescription = b.String()
}
