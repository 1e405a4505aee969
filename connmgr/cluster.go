package connmgr

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ClusterConfig configures the IPFS Cluster peer source of a pool: the
// Kubo nodes behind an IPFS Cluster's peers, read from its REST API's
// GET /peers, join the pool (protected and kept connected) and leave it
// when the cluster no longer lists them.
type ClusterConfig struct {
	// URL is the REST API's base URL, http(s)://host:port[/prefix]; /peers
	// is appended. User information in it (http://user:pass@host) is sent
	// as HTTP basic authentication, as the REST API's basic_auth_credentials
	// expect.
	URL string
	// Interval is the time between two reads of /peers (default 1m).
	Interval time.Duration
	// Timeout bounds one read (default 10s, at most Interval).
	Timeout time.Duration
	// Self is this node's own peer ID; the cluster lists its own Kubo node
	// too, and it is skipped.
	Self peer.ID
	// Client makes the requests (default: a client with no proxy).
	Client *http.Client
}

// ClusterStats is the cluster source's state, for Stats.
type ClusterStats struct {
	// URL is the REST API read (its password, if any, hidden).
	URL string `json:"url"`
	// ClusterPeers is the number of cluster peers in the last good answer.
	ClusterPeers int `json:"cluster_peers"`
	// Peers is the number of Kubo nodes the pool took from it (self excluded).
	Peers int `json:"peers"`
	// Skipped counts entries of the last good answer that named no usable
	// Kubo node (the cluster peer could not reach its IPFS daemon, or the
	// ID was malformed) and for which no earlier answer gave one.
	Skipped int `json:"skipped"`
	// Refreshes and Failures count reads of /peers, and the failed ones.
	Refreshes uint64 `json:"refreshes"`
	Failures  uint64 `json:"failures"`
	// LastRefresh is when the last read finished; LastSuccess when the last
	// good one did.
	LastRefresh time.Time `json:"last_refresh,omitempty"`
	LastSuccess time.Time `json:"last_success,omitempty"`
	// LastError is the error of the last read, empty when it succeeded.
	LastError string `json:"last_error,omitempty"`
}

// ParseClusterURL checks a cluster REST API URL: an absolute http or https
// URL with a host, no query or fragment.
func ParseClusterURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not an http or https URL (the cluster REST API, e.g. http://127.0.0.1:9094): %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: the scheme must be http or https (the cluster REST API, e.g. http://127.0.0.1:9094)", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: give the API's base URL, without query or fragment", s)
	}
	return u, nil
}

// maxPeersBody bounds the /peers answer read (a cluster peer's entry is
// about 1-2 KiB; this allows thousands).
const maxPeersBody = 16 << 20

type clusterSource struct {
	p    *Pool
	cfg  ClusterConfig
	base *url.URL
	mu   sync.Mutex
	st   ClusterStats
	// known maps a cluster peer to the Kubo node it reported last, so that a
	// cluster peer that momentarily cannot reach its IPFS daemon (its entry
	// carries an error and no IPFS ID) does not drop that node from the pool.
	known map[string]peer.AddrInfo
}

// StartCluster starts reading cfg.URL's /peers every cfg.Interval and
// putting the Kubo nodes it lists in the pool. The first read happens at
// once. A failed read (unreachable API, HTTP error, malformed answer) is
// recorded in the stats and leaves the pool as it was. A pool has at most
// one cluster source; it stops with the pool.
func (p *Pool) StartCluster(cfg ClusterConfig) error {
	u, err := ParseClusterURL(cfg.URL)
	if err != nil {
		return fmt.Errorf("connmgr: cluster API URL: %w", err)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.Timeout = min(cfg.Timeout, cfg.Interval)
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConns: 1, IdleConnTimeout: 2 * cfg.Interval}}
	}
	shown := *u
	if shown.User != nil {
		if _, ok := shown.User.Password(); ok {
			shown.User = url.UserPassword(shown.User.Username(), "xxxxx")
		}
	}
	cs := &clusterSource{p: p, cfg: cfg, base: u, known: map[string]peer.AddrInfo{}}
	cs.st.URL = shown.String()
	if !p.cluster.CompareAndSwap(nil, cs) {
		return errors.New("connmgr: the pool already has a cluster source")
	}
	p.wg.Add(1)
	go cs.loop()
	return nil
}

func (cs *clusterSource) loop() {
	defer cs.p.wg.Done()
	t := time.NewTicker(cs.cfg.Interval)
	defer t.Stop()
	for {
		cs.refresh(cs.p.ctx)
		select {
		case <-cs.p.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refresh reads /peers once and hands the result to the pool.
func (cs *clusterSource) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, cs.cfg.Timeout)
	defer cancel()
	entries, err := fetchClusterPeers(ctx, cs.cfg.Client, cs.base)
	now := time.Now()
	if ctx.Err() != nil && cs.p.ctx.Err() != nil {
		return // stopping
	}
	if err != nil {
		cs.mu.Lock()
		cs.st.Refreshes++
		cs.st.Failures++
		cs.st.LastRefresh, cs.st.LastError = now, err.Error()
		cs.mu.Unlock()
		log.Warnw("cluster peer source: read failed; pool unchanged", "url", cs.st.URL, "err", err)
		return
	}
	var ais []peer.AddrInfo
	skipped := 0
	seen := map[peer.ID]bool{}
	known := map[string]peer.AddrInfo{}
	for _, e := range entries {
		ai, ok := e.kubo()
		if !ok {
			if prev, had := cs.known[e.ID]; had && e.ID != "" {
				ai, ok = prev, true
			}
		}
		if !ok {
			skipped++
			continue
		}
		if e.ID != "" {
			known[e.ID] = ai
		}
		if ai.ID == cs.cfg.Self || seen[ai.ID] {
			continue
		}
		seen[ai.ID] = true
		ais = append(ais, ai)
	}
	cs.known = known
	cs.p.setClusterPeers(ais)
	cs.mu.Lock()
	cs.st.Refreshes++
	cs.st.ClusterPeers, cs.st.Peers, cs.st.Skipped = len(entries), len(ais), skipped
	cs.st.LastRefresh, cs.st.LastSuccess, cs.st.LastError = now, now, ""
	cs.mu.Unlock()
}

func (cs *clusterSource) stats() ClusterStats {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.st
}

// clusterPeer is the part of an IPFS Cluster REST API peer (api.ID) read
// here: the cluster peer's ID and error, and its IPFS daemon's ID and
// addresses.
type clusterPeer struct {
	ID    string `json:"id"`
	Error string `json:"error"`
	IPFS  struct {
		ID        string   `json:"id"`
		Addresses []string `json:"addresses"`
		Error     string   `json:"error"`
	} `json:"ipfs"`
}

// kubo returns the Kubo node of e; false when e names none (or a
// malformed one). Malformed addresses are dropped; a node without any
// valid address is still returned (the host may know how to reach it).
func (e clusterPeer) kubo() (peer.AddrInfo, bool) {
	if e.IPFS.ID == "" {
		return peer.AddrInfo{}, false
	}
	id, err := peer.Decode(e.IPFS.ID)
	if err != nil {
		return peer.AddrInfo{}, false
	}
	ai := peer.AddrInfo{ID: id}
	for _, s := range e.IPFS.Addresses {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		// Kubo's /id lists addresses with /p2p/<id>; the pool wants them bare.
		if t, last := ma.SplitLast(a); last != nil && last.Protocol().Code == ma.P_P2P {
			a = t
		}
		if len(a) > 0 {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	return ai, true
}

// fetchClusterPeers reads GET <base>/peers. IPFS Cluster (v1) answers with
// one JSON object per peer, one after the other (a stream, with an
// X-Stream-Error trailer), or 204 when there are none; a JSON array is
// accepted too.
func fetchClusterPeers(ctx context.Context, c *http.Client, base *url.URL) ([]clusterPeer, error) {
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/peers"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("cluster /peers: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cluster /peers: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent:
		return nil, nil
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return nil, fmt.Errorf("cluster /peers: HTTP %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	br := bufio.NewReader(io.LimitReader(resp.Body, maxPeersBody))
	dec := json.NewDecoder(br)
	var out []clusterPeer
	if first, err := peekNonSpace(br); err == nil && first == '[' {
		if err := dec.Decode(&out); err != nil {
			return nil, fmt.Errorf("cluster /peers: malformed JSON array: %w", err)
		}
	} else {
		for {
			var e clusterPeer
			err := dec.Decode(&e)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("cluster /peers: malformed answer at entry %d: %w", len(out)+1, err)
			}
			out = append(out, e)
		}
	}
	// The trailer is only known once the body has been read to its end.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	if s := resp.Trailer.Get("X-Stream-Error"); s != "" {
		return nil, fmt.Errorf("cluster /peers: the cluster reported an error after %d entries: %s", len(out), s)
	}
	return out, nil
}

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = br.ReadByte()
		default:
			return b[0], nil
		}
	}
}
