package connmgr

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// fakeCluster serves GET /peers the way IPFS Cluster v1's REST API does:
// one JSON object per peer, flushed one by one, with an X-Stream-Error
// trailer; 204 when there is no peer. answer may be swapped by the test.
type fakeCluster struct {
	mu     sync.Mutex
	status int
	raw    string   // when set, sent as the body as is
	peers  []string // JSON objects
	trail  string   // X-Stream-Error value
	hits   int
}

func (f *fakeCluster) set(fn func(f *fakeCluster)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.raw, f.peers, f.trail = 0, "", nil, ""
	fn(f)
}

func (f *fakeCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hits++
	if r.URL.Path != "/api/peers" {
		http.Error(w, `{"code":404,"message":"not found"}`, http.StatusNotFound)
		return
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(f.raw))
		return
	}
	if f.raw != "" {
		_, _ = w.Write([]byte(f.raw))
		return
	}
	if len(f.peers) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Trailer", "X-Stream-Error")
	w.WriteHeader(http.StatusOK)
	for _, p := range f.peers {
		_, _ = w.Write([]byte(p + "\n"))
		w.(http.Flusher).Flush()
	}
	w.Header().Set("X-Stream-Error", f.trail)
}

// clusterEntry renders one cluster peer (api.ID's JSON) whose IPFS daemon is h.
func clusterEntry(t *testing.T, clusterID string, h host.Host) string {
	t.Helper()
	var addrs []string
	for _, a := range h.Addrs() {
		addrs = append(addrs, a.String()+"/p2p/"+h.ID().String())
	}
	b, err := json.Marshal(map[string]any{
		"id": clusterID, "addresses": []string{}, "peername": "p-" + clusterID, "version": "1.1.5", "error": "",
		"ipfs": map[string]any{"id": h.ID().String(), "addresses": addrs, "error": ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func poolPeerIDs(p *Pool) map[string]string {
	out := map[string]string{}
	for _, s := range p.State() {
		out[s.ID] = s.Source
	}
	return out
}

func TestClusterSourceFollowsPeers(t *testing.T) {
	m := newTestManager(t, Config{LowWater: 0, HighWater: 10})
	h := newHost(t, m)
	a, b, static := newHost(t, nil), newHost(t, nil), newHost(t, nil)
	cA, cB, cSelf := randomPeer(t).String(), randomPeer(t).String(), randomPeer(t).String()

	fc := &fakeCluster{}
	fc.set(func(f *fakeCluster) { f.peers = []string{clusterEntry(t, cA, a), clusterEntry(t, cSelf, h)} })
	srv := httptest.NewServer(fc)
	t.Cleanup(srv.Close)

	pool, err := m.StartPool(h, PoolConfig{Peers: []peer.AddrInfo{info(static)}, MinBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.StartCluster(ClusterConfig{URL: srv.URL + "/api/", Interval: 100 * time.Millisecond, Self: h.ID()}); err != nil {
		t.Fatal(err)
	}
	if err := pool.StartCluster(ClusterConfig{URL: srv.URL}); err == nil {
		t.Error("second cluster source accepted")
	}
	waitFor(t, 10*time.Second, "cluster peer A connected and protected", func() bool {
		return h.Network().Connectedness(a.ID()) == network.Connected && m.IsProtected(a.ID(), PoolTag)
	})
	if got := poolPeerIDs(pool); len(got) != 2 || got[a.ID().String()] != "cluster" || got[static.ID().String()] != "config" {
		t.Fatalf("pool = %v, want A from the cluster and the configured peer (self skipped)", got)
	}
	cs := m.Stats().Cluster
	if cs == nil || cs.ClusterPeers != 2 || cs.Peers != 1 || cs.LastError != "" {
		t.Fatalf("cluster stats = %+v", cs)
	}

	// The cluster changes: B joins, A leaves. B is dialled and protected; A
	// loses the pool's protection (its connection is left to the manager).
	fc.set(func(f *fakeCluster) { f.peers = []string{clusterEntry(t, cB, b), clusterEntry(t, cSelf, h)} })
	waitFor(t, 10*time.Second, "B in, A out", func() bool {
		return h.Network().Connectedness(b.ID()) == network.Connected && m.IsProtected(b.ID(), PoolTag) &&
			!m.IsProtected(a.ID(), PoolTag)
	})
	if got := poolPeerIDs(pool); len(got) != 2 || got[b.ID().String()] != "cluster" {
		t.Fatalf("pool after the change = %v", got)
	}

	// B's cluster peer cannot reach its IPFS daemon for a moment: its entry
	// has an error and no IPFS ID. B stays, from the previous answer.
	fc.set(func(f *fakeCluster) {
		f.peers = []string{`{"id":"` + cB + `","error":"","ipfs":{"error":"dial tcp 127.0.0.1:5001: connection refused"}}`}
	})
	before := m.Stats().Cluster.Refreshes
	waitFor(t, 10*time.Second, "two more reads", func() bool { return m.Stats().Cluster.Refreshes >= before+2 })
	if !m.IsProtected(b.ID(), PoolTag) {
		t.Fatal("B dropped while its cluster peer only lost its IPFS daemon")
	}

	// Bad answers: an error in stats, the pool unchanged.
	for _, tc := range []struct {
		name string
		set  func(f *fakeCluster)
		want string
	}{
		{"http error", func(f *fakeCluster) { f.status, f.raw = 500, `{"code":500,"message":"rpc: boom"}` }, "HTTP 500"},
		{"not JSON", func(f *fakeCluster) { f.raw = "<html>login</html>" }, "malformed answer at entry 1"},
		{"bad array", func(f *fakeCluster) { f.raw = `[{"id":1}]` }, "malformed JSON array"},
		{"stream error", func(f *fakeCluster) {
			f.peers, f.trail = []string{clusterEntry(t, cB, b)}, "context canceled"
		}, "reported an error after 1 entries: context canceled"},
	} {
		fc.set(tc.set)
		waitFor(t, 10*time.Second, tc.name+" in stats", func() bool {
			return strings.Contains(m.Stats().Cluster.LastError, tc.want)
		})
		if !m.IsProtected(b.ID(), PoolTag) || len(pool.State()) != 2 {
			t.Fatalf("%s: pool changed after a bad answer: %v", tc.name, poolPeerIDs(pool))
		}
	}
	if st := m.Stats().Cluster; st.Failures < 4 {
		t.Errorf("failures = %d, want at least 4", st.Failures)
	}

	// An empty cluster (204): every cluster peer leaves, the configured one stays.
	fc.set(func(f *fakeCluster) {})
	waitFor(t, 10*time.Second, "cluster peers gone", func() bool {
		got := poolPeerIDs(pool)
		return len(got) == 1 && got[static.ID().String()] == "config" && !m.IsProtected(b.ID(), PoolTag)
	})
	if !m.IsProtected(static.ID(), PoolTag) {
		t.Fatal("configured peer lost its protection")
	}
}

func TestClusterSourceUnreachableAndBadURL(t *testing.T) {
	m := newTestManager(t, Config{LowWater: 0, HighWater: 10})
	h := newHost(t, m)
	pool, err := m.StartPool(h, PoolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "127.0.0.1:9094", "ftp://x/", "http://", "http://h:1/?x=1", "http://[::1"} {
		if err := pool.StartCluster(ClusterConfig{URL: bad}); err == nil {
			t.Errorf("URL %q accepted", bad)
		}
	}
	// A port nothing listens on (a closed test server's).
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	if err := pool.StartCluster(ClusterConfig{URL: "http://user:secret@" + strings.TrimPrefix(url, "http://"), Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "an unreachable API in stats", func() bool {
		cs := m.Stats().Cluster
		return cs != nil && cs.Failures >= 2 && strings.Contains(cs.LastError, "connect")
	})
	cs := m.Stats().Cluster
	if strings.Contains(cs.URL, "secret") || !strings.Contains(cs.URL, "user") {
		t.Errorf("stats URL %q should hide the password only", cs.URL)
	}
	if len(pool.State()) != 0 {
		t.Errorf("pool = %v, want empty", poolPeerIDs(pool))
	}
}
