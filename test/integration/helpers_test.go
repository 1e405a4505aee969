package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/test/cli/harness"
)

const (
	// envBin and envStockBin name the binaries under test.
	envBin      = "HIGHLOAD_IPFS_BIN"
	envStockBin = "HIGHLOAD_IPFS_STOCK_BIN"

	// cmdTimeout bounds every short CLI command.
	cmdTimeout = 30 * time.Second
	// transferTimeout bounds a command that moves a file between daemons.
	transferTimeout = 60 * time.Second
	// exitTimeout bounds the wait for a stopped daemon's PID to disappear.
	exitTimeout = 10 * time.Second
)

// repoRoot is the module root, found from this file's location (go test
// runs with the package directory as working directory; that is the
// fallback when the build trims paths).
func repoRoot(t *testing.T) string {
	t.Helper()
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("cannot locate the repository: %v", err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// binary returns the binary named by env, or <repo>/build/bin/<name>; it
// fails the test when that file is missing or not executable.
func binary(t *testing.T, env, name, make string) string {
	t.Helper()
	bin := os.Getenv(env)
	from := env
	if bin == "" {
		bin = filepath.Join(repoRoot(t), "build", "bin", name)
		from = "default; " + env + " is unset"
	}
	abs, err := filepath.Abs(bin)
	if err == nil {
		bin = abs
	}
	fi, err := os.Stat(bin)
	switch {
	case err != nil:
		t.Fatalf("binary under test missing: %s (%s): %v\nbuild it with `%s`, or run `make integration`", bin, from, err, make)
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		t.Fatalf("binary under test is not an executable file: %s (%s); build it with `%s`", bin, from, make)
	}
	return bin
}

// ourBin is the highload Kubo under test.
func ourBin(t *testing.T) string {
	t.Helper()
	return binary(t, envBin, "ipfs", "make build")
}

// stockBin is plain Kubo, for the mixed pair.
func stockBin(t *testing.T) string {
	t.Helper()
	return binary(t, envStockBin, "ipfs-stock", "make build-stock")
}

// failOnPanic turns a harness panic (it panics on any failed command) into
// a failure of this test only. Use as `defer failOnPanic(t)` at the top of
// every test and subtest function.
func failOnPanic(t *testing.T) {
	if r := recover(); r != nil {
		t.Fatalf("harness panic: %v\n%s", r, debug.Stack())
	}
}

// newHarness returns a harness running bin. Its cleanup stops every daemon;
// a cleanup registered before it (so it runs after it) checks by PID that
// each daemon process is gone, and kills any survivor.
func newHarness(t *testing.T, bin string) *harness.Harness {
	t.Helper()
	var h *harness.Harness
	t.Cleanup(func() {
		if h != nil {
			assertDaemonsGone(t, h)
		}
	})
	h = harness.NewT(t, func(h *harness.Harness) { h.IPFSBin = bin })
	return h
}

// newNode creates and initialises one node, and disables the routing that
// would reach for the public network: the tests connect nodes explicitly.
func newNode(t *testing.T, h *harness.Harness) *harness.Node {
	t.Helper()
	n := h.NewNode().Init()
	n.UpdateConfig(func(cfg *config.Config) {
		cfg.Routing.Type = config.NewOptionalString("none")
		cfg.Bootstrap = []string{}
	})
	return n
}

// setPlugin writes Plugins.Plugins.highload after Init (which rewrites
// Plugins).
func setPlugin(n *harness.Node, p config.Plugin) {
	n.UpdateConfig(func(cfg *config.Config) {
		if cfg.Plugins.Plugins == nil {
			cfg.Plugins.Plugins = map[string]config.Plugin{}
		}
		cfg.Plugins.Plugins["highload"] = p
	})
}

// startDaemon starts n's daemon; on Linux the daemon is killed if the test
// process dies before the harness can stop it.
func startDaemon(n *harness.Node) {
	n.StartDaemonWithReq(harness.RunRequest{CmdOpts: daemonCmdOpts()}, "")
}

// stopDaemon stops n's daemon and checks by PID that it exited.
func stopDaemon(t *testing.T, n *harness.Node) {
	t.Helper()
	pid := n.Daemon.Cmd.Process.Pid
	n.StopDaemon()
	if err := waitFor(exitTimeout, func() (bool, string) {
		return !pidAlive(pid), fmt.Sprintf("daemon of node %d (pid %d) still running", n.ID, pid)
	}); err != nil {
		t.Fatal(err)
	}
}

func assertDaemonsGone(t *testing.T, h *harness.Harness) {
	for _, n := range h.Nodes {
		if n.Daemon == nil || n.Daemon.Cmd == nil || n.Daemon.Cmd.Process == nil {
			continue
		}
		pid := n.Daemon.Cmd.Process.Pid
		err := waitFor(exitTimeout, func() (bool, string) {
			return !pidAlive(pid), fmt.Sprintf("pid %d", pid)
		})
		if err != nil {
			t.Errorf("daemon of node %d (%s) still running after the harness cleanup: %v; killing it", n.ID, n.Dir, err)
			_ = n.Daemon.Cmd.Process.Kill()
		}
	}
}

// waitFor polls cond until it reports true or d passes. cond returns a
// description of the current state for the timeout error.
func waitFor(d time.Duration, cond func() (bool, string)) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return nil
		}
		select {
		case <-deadline.C:
			return fmt.Errorf("condition not met within %v: %s", d, state)
		case <-tick.C:
		}
	}
}

// runTimeout is a harness RunFunc that kills the command after d.
func runTimeout(d time.Duration) func(*exec.Cmd) error {
	return func(c *exec.Cmd) error {
		if err := c.Start(); err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case err := <-done:
			return err
		case <-timer.C:
			_ = c.Process.Kill()
			<-done
			return fmt.Errorf("%v did not exit within %v; killed", c.Args, d)
		}
	}
}

// run runs `ipfs args...` on n with a time limit, whatever its outcome.
func run(n *harness.Node, d time.Duration, stdin io.Reader, args ...string) *harness.RunResult {
	req := harness.RunRequest{Path: n.IPFSBin, Args: args, RunFunc: runTimeout(d)}
	if stdin != nil {
		req.CmdOpts = []harness.CmdOpt{harness.RunWithStdin(stdin)}
	}
	return n.Runner.Run(req)
}

// mustRun runs `ipfs args...` on n and fails the test unless it exits 0.
func mustRun(t *testing.T, n *harness.Node, d time.Duration, stdin io.Reader, args ...string) *harness.RunResult {
	t.Helper()
	res := run(n, d, stdin, args...)
	if res.Err != nil {
		t.Fatalf("node %d: ipfs %s: %v\nstderr:\n%s", n.ID, strings.Join(args, " "), res.Err, res.Stderr.String())
	}
	return res
}

// mustFail runs `ipfs args...` on n and fails the test unless it exits
// non-zero on its own; it returns the stderr.
func mustFail(t *testing.T, n *harness.Node, args ...string) string {
	t.Helper()
	res := run(n, cmdTimeout, nil, args...)
	if res.ExitErr == nil {
		t.Fatalf("node %d: ipfs %s: want a non-zero exit, got err=%v\nstdout:\n%s\nstderr:\n%s",
			n.ID, strings.Join(args, " "), res.Err, res.Stdout.String(), res.Stderr.String())
	}
	return res.Stderr.String()
}

// status mirrors `ipfs stats highload --enc=json` (plugin/commands.Status);
// kept separate so that the test checks the wire format.
type status struct {
	Plugin     string
	Version    string
	Loaded     bool
	Online     bool
	Config     map[string]any
	Components []component
}

type component struct {
	Name   string
	Status string
	Detail string
}

func (s *status) component(name string) (component, bool) {
	for _, c := range s.Components {
		if c.Name == name {
			return c, true
		}
	}
	return component{}, false
}

// stats runs `ipfs stats highload --enc=json` on n.
func stats(t *testing.T, n *harness.Node) *status {
	t.Helper()
	res := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "--enc=json")
	var s status
	dec := json.NewDecoder(strings.NewReader(res.Stdout.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("node %d: decoding `ipfs stats highload --enc=json`: %v\n%s", n.ID, err, res.Stdout.String())
	}
	return &s
}

// metrics fetches /debug/metrics/prometheus from n's API and returns its
// sample lines (comments dropped).
func metrics(t *testing.T, n *harness.Node) []string {
	t.Helper()
	client := &http.Client{Timeout: cmdTimeout}
	url := n.APIURL() + "/debug/metrics/prometheus"
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	if len(lines) == 0 {
		t.Fatalf("GET %s: no samples at all", url)
	}
	return lines
}

// withPrefix returns the lines that start with prefix.
func withPrefix(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}
