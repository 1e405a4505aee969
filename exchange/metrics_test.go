package exchange

import (
	"github.com/ipfs/boxo/bitswap/server"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PeerRate[ClassUnknown] = 10
	p, _ := newTestPolicy(t, cfg)
	want(p, "flooder", 30)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(p.Stats)); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	exp := `
# HELP highload_bitswap_shed_requests_total Wants answered DONT_HAVE by the policy, per class and reason.
# TYPE highload_bitswap_shed_requests_total counter
highload_bitswap_shed_requests_total{class="good",reason="backlog"} 0
highload_bitswap_shed_requests_total{class="good",reason="breaker"} 0
highload_bitswap_shed_requests_total{class="good",reason="overload"} 0
highload_bitswap_shed_requests_total{class="priority",reason="backlog"} 0
highload_bitswap_shed_requests_total{class="priority",reason="breaker"} 0
highload_bitswap_shed_requests_total{class="priority",reason="overload"} 0
highload_bitswap_shed_requests_total{class="unknown",reason="backlog"} 0
highload_bitswap_shed_requests_total{class="unknown",reason="breaker"} 20
highload_bitswap_shed_requests_total{class="unknown",reason="overload"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "highload_bitswap_shed_requests_total"); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentHooks runs the hooks from many goroutines (for -race).
func TestConcurrentHooks(t *testing.T) {
	p, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			id := peer.ID([]byte{'p', byte(g)})
			for i := 0; i < 2000; i++ {
				p.Filter(id, testCID(i))
				if i%16 == 0 {
					sent(p, id, 16)
					p.Compare(&taskInfo{Peer: id}, &taskInfo{Peer: peer.ID("other")})
					_ = p.Stats()
				}
			}
		}(g)
	}
	wg.Wait()
	if s := p.Stats(); s.Classes[ClassUnknown].Accepted+s.ShedTotal() != 16000 {
		t.Fatalf("accepted %d + shed %d != 16000", s.Classes[ClassUnknown].Accepted, s.ShedTotal())
	}
}

type taskInfo = server.TaskInfo
