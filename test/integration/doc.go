// Package integration runs the highload Kubo binary as real processes and
// checks what a user would see: the plugin loaded in the daemon, its Bitswap
// caps applied, blocks moving between daemons (ours with ours, ours with
// stock Kubo), bad plugin configs and bad `tiered` datastore specs refused
// with messages that name the key, and the tiered store on real daemons
// (including kill -9 during an ingest).
//
// The model: nothing here links the plugin into the test process. Each test
// builds Kubo nodes with Kubo's own harness (github.com/ipfs/kubo/test/cli/harness),
// each node a repo in a temporary directory driven by the `ipfs` binary, and
// talks to them only through the CLI, the HTTP API and the Prometheus
// endpoint. The only import from this module is plugin/hlstate, for the
// version the binary must report (a mismatch means a stale binary).
//
// Binaries:
//
//	HIGHLOAD_IPFS_BIN        our Kubo (default <repo>/build/bin/ipfs)
//	HIGHLOAD_IPFS_STOCK_BIN  plain Kubo (default <repo>/build/bin/ipfs-stock)
//
// `make integration` builds both and sets HIGHLOAD_IPFS_BIN. Give absolute
// paths: go test runs in this directory, so a relative one resolves here. A
// missing binary fails the test that needs it; nothing is skipped.
//
// Rules the tests keep: Node.Init rewrites Plugins, so plugin config is set
// after Init; every wait is a poll with a deadline; every external command
// has a time limit; every daemon is stopped by the harness's cleanup, and a
// later cleanup checks by PID that the process is gone. Harness panics are
// turned into test failures so that one broken test does not kill the
// others (and leave their daemons running); on Linux each daemon also gets
// SIGKILL if the test process dies.
package integration
