package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/test/cli/harness"
)

// envClusterBin names the ipfs-cluster-service binary (`make cluster`
// builds build/bin/ipfs-cluster-service from tools/cluster).
const envClusterBin = "HIGHLOAD_CLUSTER_BIN"

func clusterBin(t *testing.T) string {
	t.Helper()
	return binary(t, envClusterBin, "ipfs-cluster-service", "make cluster")
}

// clusterPeer is one running ipfs-cluster-service.
type clusterPeer struct {
	dir  string
	api  string // REST API base URL
	cmd  *exec.Cmd
	out  *bytes.Buffer
	id   string
	addr string        // a cluster libp2p address with /p2p/, for --bootstrap
	done chan struct{} // closed when the process has exited
}

// freePort returns a loopback TCP port free at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// setJSON sets path (keys separated by dots) in a decoded JSON object.
func setJSON(t *testing.T, m map[string]any, path string, v any) {
	t.Helper()
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("service.json has no object at %q (in %s)", k, path)
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// startClusterPeerAt initialises and starts a crdt ipfs-cluster-service
// whose IPFS connector talks to kubo's API; everything listens on loopback,
// mDNS is off, and the peers share secret. bootstrap, if set, joins an
// existing peer. api is the REST API's URL (http://127.0.0.1:<port>), ""
// for a free port. The peer is stopped (by PID) at the end of the test.
func startClusterPeerAt(t *testing.T, bin, name, secret string, kubo *harness.Node, bootstrap, api string) *clusterPeer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	env := append(os.Environ(), "CLUSTER_SECRET="+secret, "CLUSTER_PEERNAME="+name)
	initCmd := exec.Command(bin, "--config", dir, "init", "--consensus", "crdt", "--force")
	initCmd.Env = env
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("ipfs-cluster-service init: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "service.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("service.json: %v", err)
	}
	if api == "" {
		api = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	}
	var restPort int
	if _, err := fmt.Sscanf(api, "http://127.0.0.1:%d", &restPort); err != nil {
		t.Fatalf("api %q: %v", api, err)
	}
	setJSON(t, cfg, "cluster.listen_multiaddress", []string{"/ip4/127.0.0.1/tcp/0"})
	setJSON(t, cfg, "cluster.mdns_interval", "0s")
	setJSON(t, cfg, "cluster.monitor_ping_interval", "2s")
	setJSON(t, cfg, "cluster.secret", secret)
	setJSON(t, cfg, "api.restapi.http_listen_multiaddress", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", restPort))
	setJSON(t, cfg, "api.ipfsproxy.listen_multiaddress", "/ip4/127.0.0.1/tcp/0")
	setJSON(t, cfg, "api.ipfsproxy.node_multiaddress", kubo.APIAddr().String())
	setJSON(t, cfg, "api.pinsvcapi.http_listen_multiaddress", "/ip4/127.0.0.1/tcp/0")
	setJSON(t, cfg, "ipfs_connector.ipfshttp.node_multiaddress", kubo.APIAddr().String())
	if raw, err = json.MarshalIndent(cfg, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	args := []string{"--config", dir, "daemon"}
	if bootstrap != "" {
		args = append(args, "--bootstrap", bootstrap)
	}
	cp := &clusterPeer{dir: dir, api: api, out: &bytes.Buffer{}}
	cp.cmd = exec.Command(bin, args...)
	cp.cmd.Env = env
	cp.cmd.Stdout, cp.cmd.Stderr = cp.out, cp.out
	cp.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cp.cmd.Wait(); close(done) }()
	t.Cleanup(func() { cp.stop(t, done) })

	// Ready when its REST API answers /id with its IPFS daemon's ID.
	err = waitFor(90*time.Second, func() (bool, string) {
		select {
		case <-done:
			return false, "ipfs-cluster-service exited"
		default:
		}
		var id struct {
			ID        string   `json:"id"`
			Addresses []string `json:"addresses"`
			IPFS      struct {
				ID string `json:"id"`
			} `json:"ipfs"`
		}
		if err := getJSON(cp.api+"/id", &id); err != nil {
			return false, err.Error()
		}
		if id.IPFS.ID != kubo.PeerID().String() || len(id.Addresses) == 0 {
			return false, fmt.Sprintf("/id: %+v", id)
		}
		cp.id, cp.addr = id.ID, id.Addresses[0]
		return true, ""
	})
	if err != nil {
		t.Fatalf("cluster peer %s not ready: %v\noutput:\n%s", name, err, tail(cp.out.String(), 3000))
	}
	cp.done = done
	return cp
}

func (cp *clusterPeer) stop(t *testing.T, done chan struct{}) {
	if cp.cmd.Process == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cp.cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Errorf("ipfs-cluster-service (pid %d) did not stop on SIGINT; killing it", cp.cmd.Process.Pid)
		_ = cp.cmd.Process.Kill()
		<-done
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func getJSON(url string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// clusterStats is the part of `ipfs stats highload connmgr --enc=json` the
// cluster test reads.
type clusterStats struct {
	Protected []struct {
		ID        string   `json:"id"`
		Tags      []string `json:"tags"`
		Connected bool     `json:"connected"`
	} `json:"protected"`
	Pool []struct {
		ID        string `json:"id"`
		Connected bool   `json:"connected"`
		Source    string `json:"source"`
	} `json:"pool"`
	Cluster *struct {
		URL          string `json:"url"`
		ClusterPeers int    `json:"cluster_peers"`
		Peers        int    `json:"peers"`
		Refreshes    uint64 `json:"refreshes"`
		Failures     uint64 `json:"failures"`
		LastError    string `json:"last_error"`
	} `json:"cluster"`
}

func clusterStat(t *testing.T, n *harness.Node) *clusterStats {
	t.Helper()
	res := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "connmgr", "--enc=json")
	var s clusterStats
	if err := json.Unmarshal(res.Stdout.Bytes(), &s); err != nil {
		t.Fatalf("decoding `ipfs stats highload connmgr --enc=json`: %v\n%s", err, res.Stdout.String())
	}
	return &s
}

// poolHas reports whether id is in s's pool from the cluster, connected,
// and protected with the pool's tag.
func (s *clusterStats) poolHas(id string) bool {
	in := false
	for _, p := range s.Pool {
		if p.ID == id && p.Connected && strings.Contains(p.Source, "cluster") {
			in = true
		}
	}
	for _, p := range s.Protected {
		if p.ID == id && in {
			for _, tag := range p.Tags {
				if tag == "highload-pool" {
					return true
				}
			}
		}
	}
	return false
}

// TestConnMgrClusterPeers runs real ipfs-cluster-service peers (crdt) in
// front of Kubo nodes B and D, and points node A's Config.ConnMgr.ClusterAPI
// at the first one's REST API. Nobody tells A about B or D: A finds them in
// the cluster's /peers, connects and protects them, follows the cluster when
// D's peer joins, and reports (without failing) when the API goes away.
func TestConnMgrClusterPeers(t *testing.T) {
	defer failOnPanic(t)
	cbin := clusterBin(t)
	h := newHarness(t, ourBin(t))
	a, b, d := newNode(t, h), newNode(t, h), newNode(t, h)
	startDaemon(b)
	startDaemon(d)

	// The first cluster peer's REST API address is only known once it runs;
	// A starts first, against a port where nothing listens yet, to show the
	// error in the stats.
	c1api := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	setPlugin(a, config.Plugin{Config: map[string]any{"ConnMgr": map[string]any{
		"ClusterAPI": c1api, "ClusterRefresh": "1s",
	}}})
	startDaemon(a)
	if err := waitFor(30*time.Second, func() (bool, string) {
		s := clusterStat(t, a)
		return s.Cluster != nil && s.Cluster.Failures >= 1 && strings.Contains(s.Cluster.LastError, "connection refused"),
			fmt.Sprintf("cluster stats %+v", s.Cluster)
	}); err != nil {
		t.Fatal(err)
	}

	// Now a cluster peer in front of B, its REST API on the port A reads.
	secret := strings.Repeat("ab", 32)
	c1 := startClusterPeerAt(t, cbin, "c1", secret, b, "", c1api)
	bID, dID := b.PeerID().String(), d.PeerID().String()
	if err := waitFor(60*time.Second, func() (bool, string) {
		s := clusterStat(t, a)
		return s.poolHas(bID) && s.Cluster.LastError == "", fmt.Sprintf("stats %+v / %+v", s.Pool, s.Cluster)
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(swarmPeers(t, a), bID) {
		t.Fatalf("A's swarm peers lack B (%s)", bID)
	}

	// D's cluster peer joins: at the next reads A connects and protects D.
	startClusterPeerAt(t, cbin, "c2", secret, d, c1.addr, "")
	if err := waitFor(90*time.Second, func() (bool, string) {
		s := clusterStat(t, a)
		return s.poolHas(dID) && s.poolHas(bID) && s.Cluster.Peers == 2,
			fmt.Sprintf("stats %+v / %+v", s.Pool, s.Cluster)
	}); err != nil {
		t.Fatal(err)
	}
	text := mustRun(t, a, cmdTimeout, nil, "stats", "highload", "connmgr").Stdout.String()
	t.Logf("ipfs stats highload connmgr on A:\n%s", text)
	if !strings.Contains(text, "Cluster:      "+c1api) || !strings.Contains(text, "2 Kubo nodes") {
		t.Errorf("text output lacks the cluster source:\n%s", text)
	}
	lines := metrics(t, a)
	if len(withPrefix(lines, "highload_connmgr_cluster_peers 2")) != 1 {
		t.Errorf("metrics: %s", strings.Join(withPrefix(lines, "highload_connmgr_cluster"), "\n"))
	}

	// The API goes away: the error shows in the stats, the pool keeps B and D.
	c1.stop(t, c1.done)
	if err := waitFor(30*time.Second, func() (bool, string) {
		s := clusterStat(t, a)
		return s.Cluster.LastError != "" && s.poolHas(bID) && s.poolHas(dID), fmt.Sprintf("stats %+v / %+v", s.Pool, s.Cluster)
	}); err != nil {
		t.Fatal(err)
	}
	stopDaemon(t, a)
}
