// Package daemon starts, drives and stops real Kubo daemons on 127.0.0.1 for
// the benchmark suite.
//
// The model: a Node is one repo directory plus, while it runs, one daemon
// process known by its PID. Init creates the repo with the given profiles
// (always including "test": loopback addresses on port 0, no bootstrap, no
// mDNS), Start launches the daemon and polls until its HTTP RPC answers, and
// Stop shuts it down (RPC shutdown, then SIGKILL by PID after a bounded wait).
// The benchmark drives nodes through the RPC API over HTTP, not through the
// CLI, so that timings do not include a process start per command.
//
//	n, err := daemon.Init(ctx, "build/bin/ipfs", dir, []string{"highload"}, nil)
//	err = n.Start(ctx)
//	defer n.Stop()
//	cid, err := n.Add(ctx, bytes.NewReader(data), "size-262144")
package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Node is one Kubo repo and, while started, its daemon.
type Node struct {
	// Bin is the ipfs binary.
	Bin string
	// Dir is the repo ($IPFS_PATH).
	Dir string
	// Name labels the node in logs ("stock-provider", ...).
	Name string
	// Env holds extra KEY=VALUE entries for the daemon's environment (e.g.
	// IPFS_FD_MAX), added after the inherited ones by Start.
	Env []string

	cmd     *exec.Cmd
	done    chan struct{}
	api     string // http://127.0.0.1:port
	peerID  string
	swarm   []string
	logFile *os.File
	client  *http.Client
}

// Init creates a repo in dir (which must not hold one) with the profiles
// "test" plus extra, then applies edit (if non-nil) to the config as a JSON
// map before the daemon ever starts.
func Init(ctx context.Context, bin, dir string, extra []string, edit func(cfg map[string]any) error) (*Node, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	profiles := append([]string{"test"}, extra...)
	n := &Node{Bin: bin, Dir: dir, Name: filepath.Base(dir), client: &http.Client{}}
	out, err := n.CLI(ctx, "init", "--profile="+strings.Join(profiles, ","), "--empty-repo")
	if err != nil {
		return nil, fmt.Errorf("daemon: init %s: %w\n%s", dir, err, out)
	}
	if edit != nil {
		if err := n.EditConfig(edit); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// EditConfig rewrites the repo's config file through fn. Call it while the
// daemon is stopped.
func (n *Node) EditConfig(fn func(cfg map[string]any) error) error {
	path := filepath.Join(n.Dir, "config")
	buf, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(buf, &cfg); err != nil {
		return fmt.Errorf("daemon: reading %s: %w", path, err)
	}
	if err := fn(cfg); err != nil {
		return err
	}
	buf, err = json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, buf, 0o600)
}

// SetPath sets cfg[a][b]...=v, creating objects on the way; a helper for
// EditConfig callbacks.
func SetPath(cfg map[string]any, v any, path ...string) {
	m := cfg
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

// CLI runs the ipfs binary against this repo and returns its combined output.
func (n *Node) CLI(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, n.Bin, args...)
	cmd.Env = append(os.Environ(), "IPFS_PATH="+n.Dir)
	return cmd.CombinedOutput()
}

// Start launches the daemon and returns once its RPC API answers `id`.
// The daemon's output goes to Dir/daemon.log.
func (n *Node) Start(ctx context.Context, args ...string) error {
	if n.cmd != nil {
		return fmt.Errorf("daemon: %s already started", n.Name)
	}
	_ = os.Remove(filepath.Join(n.Dir, "api"))
	logf, err := os.Create(filepath.Join(n.Dir, "daemon.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(n.Bin, append([]string{"daemon"}, args...)...)
	cmd.Env = append(os.Environ(), "IPFS_PATH="+n.Dir, "GOLOG_LOG_LEVEL=error")
	cmd.Env = append(cmd.Env, n.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("daemon: starting %s: %w", n.Name, err)
	}
	n.cmd, n.logFile, n.done = cmd, logf, make(chan struct{})
	go func() { _ = cmd.Wait(); close(n.done) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := n.probe(ctx); err == nil {
			return nil
		}
		select {
		case <-n.done:
			return fmt.Errorf("daemon: %s exited during start-up; log:\n%s", n.Name, n.Log())
		case <-ctx.Done():
			n.Stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.Stop()
			return fmt.Errorf("daemon: %s did not answer within 60s; log:\n%s", n.Name, n.Log())
		}
	}
}

// probe reads the api file and asks the daemon for its identity.
func (n *Node) probe(ctx context.Context) error {
	if n.api == "" {
		buf, err := os.ReadFile(filepath.Join(n.Dir, "api"))
		if err != nil {
			return err
		}
		addr, err := maddrToHTTP(strings.TrimSpace(string(buf)))
		if err != nil {
			return err
		}
		n.api = addr
	}
	var id struct {
		ID        string
		Addresses []string
	}
	if err := n.RPCJSON(ctx, "id", nil, &id); err != nil {
		return err
	}
	n.peerID = id.ID
	n.swarm = nil
	for _, a := range id.Addresses {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			n.swarm = append(n.swarm, a)
		}
	}
	if len(n.swarm) == 0 {
		return errors.New("no loopback TCP swarm address yet")
	}
	return nil
}

// maddrToHTTP turns /ip4/127.0.0.1/tcp/PORT into http://127.0.0.1:PORT.
func maddrToHTTP(m string) (string, error) {
	parts := strings.Split(m, "/")
	if len(parts) < 5 || parts[1] != "ip4" || parts[3] != "tcp" {
		return "", fmt.Errorf("daemon: unexpected API address %q", m)
	}
	return "http://" + parts[2] + ":" + parts[4], nil
}

// Log returns the daemon's output so far.
func (n *Node) Log() string {
	buf, _ := os.ReadFile(filepath.Join(n.Dir, "daemon.log"))
	return string(buf)
}

// PID is the daemon's process ID, or 0 when it is not running.
func (n *Node) PID() int {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// PeerID is the daemon's peer ID (known after Start).
func (n *Node) PeerID() string { return n.peerID }

// SwarmAddrs are the daemon's loopback TCP addresses, with /p2p/ID appended.
func (n *Node) SwarmAddrs() []string {
	out := make([]string, 0, len(n.swarm))
	for _, a := range n.swarm {
		if !strings.Contains(a, "/p2p/") {
			a += "/p2p/" + n.peerID
		}
		out = append(out, a)
	}
	return out
}

// APIURL is the base URL of the RPC API, e.g. http://127.0.0.1:5001.
func (n *Node) APIURL() string { return n.api }

// Stop shuts the daemon down: RPC shutdown, then SIGKILL by PID if it is
// still alive after 10 s. It is safe to call on a stopped node.
func (n *Node) Stop() error {
	if n.cmd == nil {
		return nil
	}
	defer func() {
		n.cmd = nil
		n.api = ""
		if n.logFile != nil {
			n.logFile.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, _ = n.RPC(ctx, "shutdown", nil, nil)
	cancel()
	select {
	case <-n.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = n.cmd.Process.Kill()
	<-n.done
	return fmt.Errorf("daemon: %s (pid %d) did not stop within 10s; killed", n.Name, n.cmd.Process.Pid)
}

// Kill sends SIGKILL to the daemon by PID and waits for it.
func (n *Node) Kill() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.done
	n.cmd, n.api = nil, ""
	if n.logFile != nil {
		n.logFile.Close()
	}
}

// RPC calls /api/v0/<path> with args and an optional multipart file body.
// A non-200 answer is an error carrying Kubo's message.
func (n *Node) RPC(ctx context.Context, path string, args url.Values, file io.Reader) ([]byte, error) {
	if n.api == "" {
		return nil, fmt.Errorf("daemon: %s is not running", n.Name)
	}
	u := n.api + "/api/v0/" + path
	if len(args) > 0 {
		u += "?" + args.Encode()
	}
	var body io.Reader
	ctype := ""
	if file != nil {
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			part, err := mw.CreateFormFile("file", "data")
			if err == nil {
				_, err = io.Copy(part, file)
			}
			if err == nil {
				err = mw.Close()
			}
			pw.CloseWithError(err)
		}()
		body, ctype = pr, mw.FormDataContentType()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("daemon: %s %s: HTTP %d: %s", n.Name, path, resp.StatusCode, bytes.TrimSpace(out))
	}
	// Streaming commands report errors in a trailer.
	if e := resp.Trailer.Get("X-Stream-Error"); e != "" {
		return out, fmt.Errorf("daemon: %s %s: %s", n.Name, path, e)
	}
	return out, nil
}

// RPCJSON calls RPC and decodes the (last) JSON object of the answer into v.
func (n *Node) RPCJSON(ctx context.Context, path string, args url.Values, v any) error {
	out, err := n.RPC(ctx, path, args, nil)
	if err != nil {
		return err
	}
	return decodeLast(out, v)
}

func decodeLast(out []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(out))
	var last json.RawMessage
	for {
		var m json.RawMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("daemon: bad JSON answer: %w", err)
		}
		last = m
	}
	if last == nil {
		return errors.New("daemon: empty answer")
	}
	return json.Unmarshal(last, v)
}

// Add imports data as a UnixFS file with the given chunker (e.g.
// "size-262144") and CIDv1 raw leaves, and returns the root CID.
func (n *Node) Add(ctx context.Context, data io.Reader, chunker string) (string, error) {
	args := url.Values{"chunker": {chunker}, "cid-version": {"1"}, "raw-leaves": {"true"},
		"quieter": {"true"}, "pin": {"true"}, "progress": {"false"}}
	out, err := n.RPC(ctx, "add", args, data)
	if err != nil {
		return "", err
	}
	var res struct{ Hash string }
	if err := decodeLast(out, &res); err != nil {
		return "", err
	}
	return res.Hash, nil
}

// Connect dials other's loopback address.
func (n *Node) Connect(ctx context.Context, other *Node) error {
	addrs := other.SwarmAddrs()
	if len(addrs) == 0 {
		return fmt.Errorf("daemon: %s has no swarm address", other.Name)
	}
	_, err := n.RPC(ctx, "swarm/connect", url.Values{"arg": {addrs[0]}}, nil)
	return err
}

// ProcStatus reads a "VmHWM"-style field of /proc/PID/status, in bytes.
func (n *Node) ProcStatus(field string) (uint64, error) {
	pid := n.PID()
	if pid == 0 {
		return 0, fmt.Errorf("daemon: %s is not running", n.Name)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field+":") {
			fs := strings.Fields(line[len(field)+1:])
			if len(fs) < 1 {
				break
			}
			kb, err := strconv.ParseUint(fs[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("daemon: no %s in /proc/%d/status", field, pid)
}

// PeakRSS is the daemon's peak resident set (VmHWM), in bytes.
func (n *Node) PeakRSS() (uint64, error) { return n.ProcStatus("VmHWM") }

// RSS is the daemon's current resident set (VmRSS), in bytes.
func (n *Node) RSS() (uint64, error) { return n.ProcStatus("VmRSS") }

// CPUTime is the user+system CPU the daemon has used so far.
func (n *Node) CPUTime() (time.Duration, error) {
	pid := n.PID()
	if pid == 0 {
		return 0, fmt.Errorf("daemon: %s is not running", n.Name)
	}
	buf, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	s := string(buf)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("daemon: bad /proc stat")
	}
	fs := strings.Fields(s[i+1:])
	if len(fs) < 13 {
		return 0, errors.New("daemon: short /proc stat")
	}
	ut, _ := strconv.ParseUint(fs[11], 10, 64)
	st, _ := strconv.ParseUint(fs[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// RPCStream calls /api/v0/<path> with args and copies the answer's body to
// w as it arrives. It returns the time from the request to the first byte of
// the body and the bytes copied. A non-200 answer, or an error in the
// stream's trailer, is an error.
func (n *Node) RPCStream(ctx context.Context, path string, args url.Values, w io.Writer) (time.Duration, int64, error) {
	if n.api == "" {
		return 0, 0, fmt.Errorf("daemon: %s is not running", n.Name)
	}
	u := n.api + "/api/v0/" + path
	if len(args) > 0 {
		u += "?" + args.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		out, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, 0, fmt.Errorf("daemon: %s %s: HTTP %d: %s", n.Name, path, resp.StatusCode, bytes.TrimSpace(out))
	}
	first := make([]byte, 1)
	k, err := io.ReadFull(resp.Body, first)
	ttfb := time.Since(start)
	if err != nil {
		return ttfb, 0, fmt.Errorf("daemon: %s %s: no body: %w", n.Name, path, err)
	}
	if _, err := w.Write(first[:k]); err != nil {
		return ttfb, 0, err
	}
	m, err := io.Copy(w, resp.Body)
	if err != nil {
		return ttfb, int64(k) + m, err
	}
	if e := resp.Trailer.Get("X-Stream-Error"); e != "" {
		return ttfb, int64(k) + m, fmt.Errorf("daemon: %s %s: %s", n.Name, path, e)
	}
	return ttfb, int64(k) + m, nil
}
