package commands

import (
	cmds "github.com/ipfs/go-ipfs-cmds"
)

// addSubcommand adds `ipfs stats highload <name>`. Each component's command
// lives in its own file of this package and calls it from init().
func addSubcommand(name string, c *cmds.Command) {
	if HighloadCmd.Subcommands == nil {
		HighloadCmd.Subcommands = map[string]*cmds.Command{}
	}
	HighloadCmd.Subcommands[name] = c
}
