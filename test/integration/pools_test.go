package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/kubo/config"

	"github.com/kubo-highload/highload/bench/loadgen"
)

// TestDisconnectPoolInDaemon floods a daemon until Bitswap breakers trip,
// and checks that the abusive peers are disconnected through the live-sized
// pool that `ipfs stats highload health` lists under Pools.
func TestDisconnectPoolInDaemon(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	n := newNode(t, newHarness(t, ourBin(t)))
	setPlugin(n, config.Plugin{Config: map[string]any{
		"Health":  healthConfig(nil),
		"Bitswap": map[string]any{"UnknownPeerRate": 2000, "BreakerCooldown": "2s"},
	}})
	startDaemon(n)

	type pool struct {
		Name                  string
		Size, Running, Queued int
		Processed, Dropped    uint64
	}
	pools := func() []pool {
		res := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "health", "--enc=json")
		var out struct{ Pools []pool }
		if err := json.Unmarshal(res.Stdout.Bytes(), &out); err != nil {
			t.Fatalf("decoding `ipfs stats highload health --enc=json`: %v\n%s", err, res.Stdout.String())
		}
		return out.Pools
	}
	if ps := pools(); len(ps) != 1 || ps[0].Name != "bitswap/disconnect" || ps[0].Size != 1 || ps[0].Processed != 0 {
		t.Fatalf("pools before any trip: %+v", ps)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flood := make(chan error, 1)
	go func() {
		_, err := loadgen.Flood(ctx, loadgen.FloodConfig{Target: addrInfo(t, n), Peers: 8, Wants: 1000, Rate: 10, Duration: 90 * time.Second})
		flood <- err
	}()
	var last []pool
	if err := waitFor(60*time.Second, func() (bool, string) {
		last = pools()
		return len(last) == 1 && last[0].Processed > 0, fmt.Sprintf("pools %+v, trips %v", last, policyStats(t, n).Trips)
	}); err != nil {
		t.Fatalf("no abusive peer was disconnected through the pool: %v", err)
	}
	if p := last[0]; p.Size < 1 || p.Size > 8 {
		t.Fatalf("pool size %d outside 1..8: %+v", p.Size, p)
	}
	cancel()
	if err := <-flood; err != nil {
		t.Errorf("flood: %v", err)
	}
	text := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "health").Stdout.String()
	if !strings.Contains(text, "Pools (sized live by backlog):") || !strings.Contains(text, "bitswap/disconnect:") {
		t.Fatalf("health text lacks the pool:\n%s", text)
	}
	stopDaemon(t, n)
}
