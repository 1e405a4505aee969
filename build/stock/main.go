// Command ipfs-stock is Kubo built from the same go.mod as build/kubo but
// without the highload plugins: the baseline for benchmarks and A/B tests.
package main

import (
	"os"

	"github.com/ipfs/kubo/cmd/ipfs/kubo"
)

func main() {
	os.Exit(kubo.Start(kubo.BuildDefaultEnv))
}
