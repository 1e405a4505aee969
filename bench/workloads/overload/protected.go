package overload

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/kubo-highload/highload/bench/internal/daemon"
)

// W5's protected peer: provider and fetcher are each other's Peering.Peers,
// so both Kubo (its peering service) and the highload pool protect the
// connection between them. During the flood W5 watches it from the fetcher
// (which is not flooded, so its answers are prompt), then kills it on the
// provider and times the redial.

// linkPoll is how often the fetcher is asked whether it still has the
// provider; reconnectBound bounds the wait for a redial.
const (
	linkPoll       = 250 * time.Millisecond
	reconnectPoll  = 50 * time.Millisecond
	reconnectBound = 60 * time.Second
)

// connected reports whether n has a connection to id (`swarm peers`).
func connected(ctx context.Context, n *daemon.Node, id string) (bool, error) {
	var res struct {
		Peers []struct{ Peer string }
	}
	if err := n.RPCJSON(ctx, "swarm/peers", nil, &res); err != nil {
		return false, err
	}
	for _, p := range res.Peers {
		if p.Peer == id {
			return true, nil
		}
	}
	return false, nil
}

// linkWatch counts the times the fetcher lost the provider.
type linkWatch struct {
	mu    sync.Mutex
	drops int
	polls int
	stop  chan struct{}
	done  chan struct{}
}

// watchLink starts polling from's `swarm peers` for to every linkPoll and
// counts connected→disconnected transitions (a drop shorter than linkPoll
// can be missed; the highload variant's exact count comes from its pool).
func watchLink(ctx context.Context, from, to *daemon.Node) *linkWatch {
	w := &linkWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(linkPoll)
		defer t.Stop()
		was := true
		for {
			cctx, cancel := context.WithTimeout(ctx, idTimeout)
			up, err := connected(cctx, from, to.PeerID())
			cancel()
			if err == nil {
				w.mu.Lock()
				w.polls++
				if was && !up {
					w.drops++
				}
				w.mu.Unlock()
				was = up
			}
			select {
			case <-t.C:
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return w
}

func (w *linkWatch) finish() (drops, polls int) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.drops, w.polls
}

// poolLosses reads, on a highload node, how often the pool lost peer id
// and how many trimmed connections were of protected peers. ok is false on
// stock Kubo (no such command) or when id is not in the pool.
func poolLosses(ctx context.Context, n *daemon.Node, id string) (losses, trimmedProtected uint64, ok bool) {
	var s struct {
		TrimmedProtected uint64 `json:"trimmed_protected"`
		Pool             []struct {
			ID     string `json:"id"`
			Losses uint64 `json:"losses"`
		} `json:"pool"`
	}
	if err := n.RPCJSON(ctx, "stats/highload/connmgr", nil, &s); err != nil {
		return 0, 0, false
	}
	for _, p := range s.Pool {
		if p.ID == id {
			return p.Losses, s.TrimmedProtected, true
		}
	}
	return 0, s.TrimmedProtected, false
}

// killAndTimeReconnect closes every connection between the provider and the
// fetcher from the provider's side (`swarm disconnect /p2p/<id>`: without a
// transport address Kubo closes all of the peer's connections; with one, only
// those to that address, and both sides dial each other here) and returns how
// long until the provider has the fetcher again (whichever side redials).
// When bound passes first it returns bound and timedOut.
func killAndTimeReconnect(ctx context.Context, provider, fetcher *daemon.Node, bound time.Duration) (d time.Duration, timedOut bool, err error) {
	addr := "/p2p/" + fetcher.PeerID()
	start := time.Now()
	if _, err := provider.RPC(ctx, "swarm/disconnect", url.Values{"arg": {addr}}, nil); err != nil {
		return 0, false, fmt.Errorf("overload: swarm disconnect on %s: %w", provider.Name, err)
	}
	// The disconnect is synchronous; a poll right away sees the link down
	// unless the redial already happened, which then counts as its time.
	for {
		cctx, cancel := context.WithTimeout(ctx, idTimeout)
		up, err := connected(cctx, provider, fetcher.PeerID())
		cancel()
		d = time.Since(start)
		if err == nil && up {
			return d, false, nil
		}
		if ctx.Err() != nil {
			return d, false, ctx.Err()
		}
		if d >= bound {
			return bound, true, nil
		}
		time.Sleep(reconnectPoll)
	}
}
