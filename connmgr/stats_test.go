package connmgr

import (
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStatsAndCollector(t *testing.T) {
	m := newTestManager(t, Config{LowWater: 2, HighWater: 10, Limit: func() int { return 1000 }})
	var conns []*fakeConn
	for i := range 5 {
		c := connect(t, m, network.DirOutbound)
		m.TagPeer(c.remote, "v", i*10)
		conns = append(conns, c)
	}
	m.Protect(conns[0].remote, "keep")
	s := m.Stats()
	if s.Conns != 5 || s.Peers != 5 || s.HighWater != 10 || s.LowWater != 2 || s.GracePeriod != 20*time.Second {
		t.Fatalf("stats %+v", s)
	}
	if len(s.Best) != 3 || s.Best[0].Value != 40 || len(s.Worst) != 3 || s.Worst[0].Value != 0 {
		t.Errorf("best %+v worst %+v", s.Best, s.Worst)
	}
	if len(s.Protected) != 1 || s.Protected[0].Tags[0] != "keep" || !s.Protected[0].Connected {
		t.Errorf("protected %+v", s.Protected)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(Collector{M: m}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP highload_connmgr_connections Connections tracked by the connection manager.
# TYPE highload_connmgr_connections gauge
highload_connmgr_connections 5
# HELP highload_connmgr_watermark_connections Live connection watermarks of the adaptive connection manager.
# TYPE highload_connmgr_watermark_connections gauge
highload_connmgr_watermark_connections{mark="high"} 10
highload_connmgr_watermark_connections{mark="low"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"highload_connmgr_connections", "highload_connmgr_watermark_connections"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n < 10 {
		t.Errorf("gathered %d metrics: %v", n, err)
	}
}
