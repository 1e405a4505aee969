//go:build !linux

package integration

import (
	"os"
	"syscall"

	"github.com/ipfs/kubo/test/cli/harness"
)

// daemonCmdOpts adds nothing outside Linux (no parent-death signal).
func daemonCmdOpts() []harness.CmdOpt { return nil }

// pidAlive reports whether a process with this PID exists.
func pidAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}
