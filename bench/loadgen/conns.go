package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ConnsConfig describes a connection hold.
type ConnsConfig struct {
	// Target is the node to connect to (loopback only).
	Target peer.AddrInfo
	// N is the number of connections, each from its own peer identity.
	N int
	// Parallel is how many connections are attempted at once (default 64).
	Parallel int
	// DialTimeout bounds each attempt (default 30 s).
	DialTimeout time.Duration
}

// ConnSet is a set of connection-only peers holding one connection each to
// the target. Close it when done.
type ConnSet struct {
	peers []*Peer
	// Failed is how many of the N attempts did not connect.
	Failed int
	// FirstError is the first connect error, if any.
	FirstError error
	// OpenTime is how long connecting all N took.
	OpenTime time.Duration
}

// OpenConns opens cfg.N connections to the target, each from a fresh host,
// and returns once every attempt has finished (or ctx ended). The error is
// non-nil only when the config is invalid; connect failures are counted in
// Failed.
func OpenConns(ctx context.Context, cfg ConnsConfig) (*ConnSet, error) {
	if err := CheckLoopback(cfg.Target); err != nil {
		return nil, err
	}
	if cfg.N < 1 || cfg.N > MaxPeers {
		return nil, fmt.Errorf("loadgen: connections must be 1..%d", MaxPeers)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 64
	}
	start := time.Now()
	peers, failed, err := OpenPeers(ctx, cfg.Target, cfg.N, PeerOptions{Parallel: cfg.Parallel, DialTimeout: cfg.DialTimeout})
	return &ConnSet{peers: peers, Failed: failed, FirstError: err, OpenTime: time.Since(start)}, nil
}

// Established is how many connections were opened.
func (s *ConnSet) Established() int { return len(s.peers) }

// Held is how many of the opened connections are still up.
func (s *ConnSet) Held() int {
	n := 0
	for _, p := range s.peers {
		if p.Connected() {
			n++
		}
	}
	return n
}

// Close closes every host of the set and waits.
func (s *ConnSet) Close() {
	ClosePeers(s.peers)
	s.peers = nil
}

// ConnsEvent is the conns mode's JSON report, as the loadgen command prints
// it and the W7 workload reads it.
type ConnsEvent struct {
	// Requested is -n.
	Requested int `json:"requested"`
	// Established is how many connected.
	Established int `json:"established"`
	// Failed is how many did not.
	Failed int `json:"failed"`
	// OpenSeconds is the time to attempt all connections.
	OpenSeconds float64 `json:"open_s"`
	// Held is how many were still up when the event was printed.
	Held int `json:"held"`
	// Trimmed is how many of the established ones the target had closed
	// by then.
	Trimmed int `json:"trimmed"`
	// HeldSeconds is how long they were held (result only).
	HeldSeconds float64 `json:"held_s,omitempty"`
	// FirstError is the first connect error, if any.
	FirstError string `json:"first_error,omitempty"`
}
