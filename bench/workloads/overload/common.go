package overload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kubo-highload/highload/bench/internal/daemon"
	"github.com/kubo-highload/highload/bench/internal/workload"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// fdMax is the open-file limit the daemons of W5/W7/W8 run with
// (IPFS_FD_MAX; Kubo raises its own RLIMIT_NOFILE to it, which needs root
// above the hard limit). Kubo's resource manager allows half of it by
// default.
const fdMax = 65536

// randomFile returns size deterministic pseudo-random bytes for file idx of
// one round of one workload and variant, generated as they are read.
func randomFile(workloadID, variant string, round, idx int, size int64) io.Reader {
	seed := sha256.Sum256(fmt.Appendf(nil, "kubo-highload bench/%s/%s/round-%d/file-%d", workloadID, variant, round, idx))
	return io.LimitReader(rand.NewChaCha8(seed), size)
}

// megabytes is bytes in MB (10^6 bytes), as the other workloads report RSS.
func megabytes(b uint64) float64 { return float64(b) / 1e6 }

// freePort asks the kernel for a free loopback TCP port. Another process
// could take it before the daemon binds it; startPair retries once.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// initNode creates a repo for v in env.Dir/<v.Name>-<name> with edit applied
// and the fd limit raised; it does not start it.
func initNode(env *workload.Env, v workload.Variant, name string, edit func(cfg map[string]any) error) (*daemon.Node, error) {
	dir := filepath.Join(env.Dir, v.Name+"-"+name)
	n, err := daemon.Init(env.Ctx, v.Bin, dir, v.Profiles, v.Edit(edit))
	if err != nil {
		return nil, err
	}
	n.Name = v.Name + "-" + name
	n.Env = append(n.Env, fmt.Sprintf("IPFS_FD_MAX=%d", fdMax))
	return n, nil
}

// peerIDOf reads Identity.PeerID from a repo's config.
func peerIDOf(n *daemon.Node) (string, error) {
	var id string
	err := n.EditConfig(func(cfg map[string]any) error {
		ident, _ := cfg["Identity"].(map[string]any)
		id, _ = ident["PeerID"].(string)
		if id == "" {
			return fmt.Errorf("overload: no Identity.PeerID in %s", n.Dir)
		}
		return nil
	})
	return id, err
}

// startPeered initialises and starts two daemons (the provider and the
// priority fetcher) that list each other in Peering.Peers, on fixed
// loopback ports picked just before. On error nothing is left running.
func startPeered(env *workload.Env, v workload.Variant) (provider, fetcher *daemon.Node, err error) {
	for attempt := 0; ; attempt++ {
		provider, fetcher, err = tryStartPeered(env, v, attempt)
		if err == nil || attempt == 1 || env.Ctx.Err() != nil {
			return provider, fetcher, err
		}
		env.Logf("retrying daemon start-up with other ports: %v", err)
	}
}

func tryStartPeered(env *workload.Env, v workload.Variant, attempt int) (*daemon.Node, *daemon.Node, error) {
	suffix := ""
	if attempt > 0 {
		suffix = fmt.Sprintf("-%d", attempt)
	}
	p, err := initNode(env, v, "provider"+suffix, nil)
	if err != nil {
		return nil, nil, err
	}
	f, err := initNode(env, v, "fetcher"+suffix, nil)
	if err != nil {
		return nil, nil, err
	}
	pid, err := peerIDOf(p)
	if err != nil {
		return nil, nil, err
	}
	fid, err := peerIDOf(f)
	if err != nil {
		return nil, nil, err
	}
	pport, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	fport, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	peerWith := func(selfPort int, otherID string, otherPort int) func(map[string]any) error {
		return func(cfg map[string]any) error {
			daemon.SetPath(cfg, []any{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", selfPort)}, "Addresses", "Swarm")
			daemon.SetPath(cfg, []any{map[string]any{
				"ID":    otherID,
				"Addrs": []any{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", otherPort)},
			}}, "Peering", "Peers")
			return nil
		}
	}
	if err := p.EditConfig(peerWith(pport, fid, fport)); err != nil {
		return nil, nil, err
	}
	if err := f.EditConfig(peerWith(fport, pid, pport)); err != nil {
		return nil, nil, err
	}
	if err := p.Start(env.Ctx); err != nil {
		return nil, nil, err
	}
	if err := f.Start(env.Ctx); err != nil {
		_ = p.Stop()
		return nil, nil, err
	}
	return p, f, nil
}

// stopAll stops the given daemons in parallel (RPC shutdown, then SIGKILL
// by PID; see daemon.Node.Stop). Nil nodes are skipped.
func stopAll(nodes ...*daemon.Node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n != nil {
			wg.Go(func() { _ = n.Stop() })
		}
	}
	wg.Wait()
}

// resetPeakRSS resets the daemon's VmHWM to its current RSS (clear_refs 5),
// so that a later PeakRSS covers only what follows.
func resetPeakRSS(n *daemon.Node) error {
	pid := n.PID()
	if pid == 0 {
		return fmt.Errorf("overload: %s is not running", n.Name)
	}
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// dagBlocks counts root's blocks on n without asking the network.
func dagBlocks(ctx context.Context, n *daemon.Node, root string) (int, error) {
	var res struct{ UniqueBlocks int }
	args := url.Values{"arg": {root}, "progress": {"false"}, "offline": {"true"}}
	if err := n.RPCJSON(ctx, "dag/stat", args, &res); err != nil {
		return 0, err
	}
	return res.UniqueBlocks, nil
}

// refs lists root and every block below it on n.
func refs(ctx context.Context, n *daemon.Node, root string) ([]string, error) {
	out, err := n.RPC(ctx, "refs", url.Values{"arg": {root}, "recursive": {"true"}, "unique": {"true"}}, nil)
	if err != nil {
		return nil, err
	}
	list := []string{root}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var r struct{ Ref, Err string }
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if r.Err != "" {
			return nil, fmt.Errorf("overload: refs of %s: %s", root, r.Err)
		}
		list = append(list, r.Ref)
	}
	return list, nil
}

// --- the load generator process ---

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// loadgenBin is the load generator binary: the one the runner built
// (env.Tools["loadgen"]), else one built here once per process into a
// directory under os.TempDir (go build skips the link when it is current).
func loadgenBin(env *workload.Env) (string, error) {
	if p := env.Tools["loadgen"]; p != "" {
		return p, nil
	}
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("overload: go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir := filepath.Join(os.TempDir(), "kubo-highload-bench-loadgen")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		bin := filepath.Join(dir, "loadgen")
		cmd := exec.Command("go", "build", "-o", bin, "./bench/loadgen/cmd/loadgen")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("overload: building the load generator: %w\n%s", err, out)
			return
		}
		builtBin = bin
	})
	return builtBin, buildErr
}

// lgEvent is one JSON line of the load generator.
type lgEvent struct {
	Mode      string          `json:"mode"`
	Event     string          `json:"event"`
	At        float64         `json:"at_s"`
	SelfRSSMB float64         `json:"self_rss_mb"`
	Result    json.RawMessage `json:"result"`
}

// lgProc is a running load generator, known by its PID.
type lgProc struct {
	cmd    *exec.Cmd
	events chan lgEvent
	done   chan struct{}
	log    string
	name   string
}

// startLoadgen starts the load generator with args, its stderr going to
// env.Dir/loadgen-<mode>.log. The caller must defer stop or kill.
func startLoadgen(env *workload.Env, args ...string) (*lgProc, error) {
	bin, err := loadgenBin(env)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(env.Dir, "loadgen-"+args[0]+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("overload: starting the load generator: %w", err)
	}
	p := &lgProc{cmd: cmd, events: make(chan lgEvent, 16), done: make(chan struct{}), log: logPath, name: args[0]}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*kib), 16*mib)
		for sc.Scan() {
			var ev lgEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				select {
				case p.events <- ev:
				default: // nobody is reading any more; never block the exit
				}
			}
		}
		_ = cmd.Wait()
		logf.Close()
		close(p.events)
		close(p.done)
	}()
	return p, nil
}

// next waits up to timeout for the next event; it fails if the process
// exits first.
func (p *lgProc) next(ctx context.Context, timeout time.Duration) (lgEvent, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ev, ok := <-p.events:
		if !ok {
			return ev, fmt.Errorf("overload: load generator (%s) exited early: %s", p.name, p.tail())
		}
		return ev, nil
	case <-t.C:
		return lgEvent{}, fmt.Errorf("overload: no output from the load generator (%s) within %s", p.name, timeout)
	case <-ctx.Done():
		return lgEvent{}, ctx.Err()
	}
}

// waitFor waits for the event named want, skipping others.
func (p *lgProc) waitFor(ctx context.Context, want string, timeout time.Duration, v any) (lgEvent, error) {
	deadline := time.Now().Add(timeout)
	for {
		ev, err := p.next(ctx, time.Until(deadline))
		if err != nil {
			return ev, err
		}
		if ev.Event == want {
			if v != nil {
				if err := json.Unmarshal(ev.Result, v); err != nil {
					return ev, fmt.Errorf("overload: load generator %s event: %w", want, err)
				}
			}
			return ev, nil
		}
	}
}

// interrupt asks the load generator to stop (SIGINT); it then prints its
// result and exits.
func (p *lgProc) interrupt() { _ = p.cmd.Process.Signal(syscall.SIGINT) }

// kill sends SIGKILL by PID unless the process has exited, and waits.
func (p *lgProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// cpu is the CPU time the load generator used, once it has exited.
func (p *lgProc) cpu() time.Duration {
	select {
	case <-p.done:
		if st := p.cmd.ProcessState; st != nil {
			return st.UserTime() + st.SystemTime()
		}
	default:
	}
	return 0
}

// tail is the end of the load generator's stderr, for error messages.
func (p *lgProc) tail() string {
	buf, _ := os.ReadFile(p.log)
	if len(buf) > 2000 {
		buf = buf[len(buf)-2000:]
	}
	return strings.TrimSpace(string(buf))
}

// poller calls `id` on a daemon every interval and keeps the worst latency.
type poller struct {
	mu      sync.Mutex
	max     time.Duration
	n, late int
	stop    chan struct{}
	done    chan struct{}
}

// pollID starts polling n's `id` RPC every interval; a call is bounded by
// timeout, and one that fails counts as taking the full timeout.
func pollID(ctx context.Context, n *daemon.Node, interval, timeout time.Duration) *poller {
	p := &poller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			start := time.Now()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			var id struct{ ID string }
			err := n.RPCJSON(cctx, "id", nil, &id)
			cancel()
			d := time.Since(start)
			if err != nil && ctx.Err() == nil {
				d = timeout
			}
			if ctx.Err() == nil {
				p.mu.Lock()
				p.n++
				p.max = max(p.max, d)
				if d > time.Second {
					p.late++
				}
				p.mu.Unlock()
			}
			select {
			case <-t.C:
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

// finish stops the poller and returns the worst latency, the number of
// calls and how many took over a second.
func (p *poller) finish() (worst time.Duration, calls, late int) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max, p.n, p.late
}
