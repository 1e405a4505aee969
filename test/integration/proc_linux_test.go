//go:build linux

package integration

import (
	"errors"
	"os/exec"
	"syscall"

	"github.com/ipfs/kubo/test/cli/harness"
)

// daemonCmdOpts makes the kernel SIGKILL a daemon whose parent (the test
// process) dies, e.g. on a -timeout panic, so that no daemon outlives go test.
func daemonCmdOpts() []harness.CmdOpt {
	return []harness.CmdOpt{func(c *exec.Cmd) {
		if c.SysProcAttr == nil {
			c.SysProcAttr = &syscall.SysProcAttr{}
		}
		c.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}}
}

// pidAlive reports whether a process with this PID exists. The harness reaps
// its daemons, so a stopped daemon leaves no zombie behind.
func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
