// Command ipfs is Kubo with the highload plugins preloaded: the same entry
// point as Kubo's cmd/ipfs, plus our plugin list.
package main

import (
	"os"

	"github.com/ipfs/kubo/cmd/ipfs/kubo"
	"github.com/ipfs/kubo/plugin/loader"

	highload "github.com/kubo-highload/highload/plugin"
	// `ipfs stats highload`: commands register in init(), and cannot ride in
	// the plugin package (see plugin/plugins.go).
	_ "github.com/kubo-highload/highload/plugin/commands"
)

func main() {
	loader.Preload(highload.Plugins...)
	os.Exit(kubo.Start(kubo.BuildDefaultEnv))
}
