package plugin

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kubo-highload/highload/autoscale"
	"github.com/kubo-highload/highload/exchange"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// Our worker pools that size themselves live (autoscale.Pool.AutoSize),
// listed by `ipfs stats highload health` under "Pools".
var (
	poolsMu sync.Mutex
	pools   = map[string]func() autoscale.PoolStats{}
)

// registerPool lists a pool's stats under name until ctx ends.
func registerPool(ctx context.Context, name string, stats func() autoscale.PoolStats) {
	poolsMu.Lock()
	pools[name] = stats
	poolsMu.Unlock()
	hlstate.SetLive("pools", livePools)
	go func() {
		<-ctx.Done()
		poolsMu.Lock()
		delete(pools, name)
		poolsMu.Unlock()
	}()
}

// PoolStatus is one live-sized worker pool, as `ipfs stats highload
// health` shows it.
type PoolStatus struct {
	// Name says whose pool it is, e.g. "bitswap/disconnect".
	Name string
	autoscale.PoolStats
}

func livePools() any {
	poolsMu.Lock()
	defer poolsMu.Unlock()
	out := make([]PoolStatus, 0, len(pools))
	for name, f := range pools {
		out = append(out, PoolStatus{Name: name, PoolStats: f()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Disconnect pool bounds: a flood trips many peers at once; one worker
// keeps up with a trickle, up to 8 drain a burst, and 1,024 queued peers
// are enough for any burst we have measured (W5 trips 32).
const (
	disconnectMaxWorkers = 8
	disconnectQueue      = 1024
	disconnectSizeEvery  = 250 * time.Millisecond
)

// disconnectOnTrip returns the Bitswap policy's trip handler: the peers
// whose breaker trips are disconnected (unless priority) by a pool that
// sizes itself by its backlog, instead of one goroutine per trip; a burst
// beyond the queue is dropped and counted, never blocks the policy.
func disconnectOnTrip(ctx context.Context, nw network.Network, p *exchange.Policy) func(peer.ID, exchange.Fault) {
	pool := autoscale.NewPool(1, disconnectQueue, func(id peer.ID) {
		if p.ClassOf(id) != exchange.ClassPriority {
			_ = nw.ClosePeer(id)
		}
	})
	go pool.AutoSize(ctx, 1, disconnectMaxWorkers, disconnectSizeEvery)
	go func() {
		<-ctx.Done()
		pool.Close()
	}()
	registerPool(ctx, "bitswap/disconnect", pool.Stats)
	return func(id peer.ID, _ exchange.Fault) { pool.TrySubmit(id) }
}
