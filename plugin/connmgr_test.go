package plugin

import (
	"reflect"
	"strings"
	"testing"
	"time"

	kconfig "github.com/ipfs/kubo/config"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"

	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/tlsbatch"
)

func swarm(low, high int64) kconfig.SwarmConfig {
	var sw kconfig.SwarmConfig
	sw.ConnMgr.LowWater = kconfig.NewOptionalInteger(low)
	sw.ConnMgr.HighWater = kconfig.NewOptionalInteger(high)
	sw.ConnMgr.GracePeriod = kconfig.NewOptionalDuration(20 * time.Second)
	return sw
}

func TestConnMgrSettings(t *testing.T) {
	def := (&hlconfig.Config{}).Resolved().ConnMgr
	mc, err := connMgrSettings(swarm(32, 96), def, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if mc.LowWater != 32 || mc.HighWater != 96 || mc.GracePeriod != 20*time.Second || mc.TrimInterval != 10*time.Second ||
		mc.RoundPause != time.Second || mc.AdaptInterval != 5*time.Second || mc.SlowLatency != time.Second {
		t.Errorf("settings %+v", mc)
	}
	with := func(f func(c *hlconfig.ConnMgrConfig)) *hlconfig.ConnMgrConfig {
		c := *def
		f(&c)
		return &c
	}
	for _, tc := range []struct {
		name  string
		sw    kconfig.SwarmConfig
		c     *hlconfig.ConnMgrConfig
		limit int
		want  string
	}{
		{"inverted", swarm(100, 50), def, 0, "Swarm.ConnMgr.LowWater (100) must be at least 0 and below Swarm.ConnMgr.HighWater (50)"},
		{"equal", swarm(50, 50), def, 0, "below Swarm.ConnMgr.HighWater"},
		{"min above high", swarm(32, 96), with(func(c *hlconfig.ConnMgrConfig) { c.MinHighWater = kconfig.NewOptionalInteger(200) }), 0,
			"Config.ConnMgr.MinHighWater (200) is above Swarm.ConnMgr.HighWater (96)"},
		{"max below high", swarm(32, 96), with(func(c *hlconfig.ConnMgrConfig) { c.MaxHighWater = kconfig.NewOptionalInteger(50) }), 0,
			"Config.ConnMgr.MaxHighWater (50) is below Swarm.ConnMgr.HighWater (96)"},
		{"max above rcmgr", swarm(32, 96), with(func(c *hlconfig.ConnMgrConfig) { c.MaxHighWater = kconfig.NewOptionalInteger(5000) }), 1000,
			"Config.ConnMgr.MaxHighWater (5000) must be below the resource manager's connection limit (1000"},
		{"min above rcmgr", swarm(32, 960), def, 400,
			"Config.ConnMgr.MinHighWater (480) must be below the resource manager's connection limit (400"},
		{"grace", swarm(32, 96), with(func(c *hlconfig.ConnMgrConfig) { c.MinGracePeriod = kconfig.NewOptionalDuration(time.Hour) }), 0,
			"Config.ConnMgr.MinGracePeriod (1h0m0s) is above Swarm.ConnMgr.GracePeriod (20s)"},
	} {
		_, err := connMgrSettings(tc.sw, tc.c, tc.limit)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// The default MaxHighWater (0: twice HighWater) is not refused for
	// exceeding the limit: the manager clamps it live.
	if _, err := connMgrSettings(swarm(32, 96), def, 150); err != nil {
		t.Errorf("default bounds refused under a limit the manager can clamp to: %v", err)
	}
}

func TestProtectedPeers(t *testing.T) {
	const id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	ais, err := protectedPeers([]string{"/ip4/10.0.0.1/tcp/4001/p2p/" + id, id, "/ip4/10.0.0.2/udp/4001/quic-v1/p2p/" + id})
	if err != nil {
		t.Fatal(err)
	}
	if len(ais) != 1 || ais[0].ID.String() != id || len(ais[0].Addrs) != 2 {
		t.Fatalf("merged peers %v", ais)
	}
	for _, bad := range []string{"/ip4/10.0.0.1/tcp/4001", "hello", ""} {
		_, err := protectedPeers([]string{id, bad})
		if err == nil || !strings.Contains(err.Error(), "Config.ConnMgr.ProtectedPeers[1]") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}

func TestPressureHook(t *testing.T) {
	if connMgrPressureLevel() != 0 {
		t.Fatal("pressure with no monitor running")
	}
	setConnMgrPressure(func() int { return 2 })
	defer setConnMgrPressure(healthConnMgrPressure)
	if connMgrPressureLevel() != 2 {
		t.Fatal("pressure source not used")
	}
	if connMgrQuality() != nil {
		t.Fatal("quality without a manager")
	}
}

func TestTuneMuxers(t *testing.T) {
	lc := &libp2p.Config{Muxers: []tptu.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}}}
	c := (&hlconfig.Config{}).Resolved().ConnMgr
	tuneMuxers(lc, c)
	got := lc.Muxers[0].Muxer.(*yamux.Transport).Config()
	if got.KeepAliveInterval != 2*time.Minute || got.MeasureRTTInterval != 5*time.Minute || got.AcceptBacklog != 512 {
		t.Errorf("tuned yamux config: keep-alive %s, RTT %s, backlog %d", got.KeepAliveInterval, got.MeasureRTTInterval, got.AcceptBacklog)
	}
	if got.MaxStreamWindowSize != yamux.DefaultTransport.Config().MaxStreamWindowSize {
		t.Error("other yamux settings not kept")
	}
	if d := yamux.DefaultTransport.Config(); d.KeepAliveInterval != 30*time.Second || d.AcceptBacklog != 256 {
		t.Error("libp2p's shared DefaultTransport was modified")
	}
}

func TestClusterAPI(t *testing.T) {
	c := (&hlconfig.Config{}).Resolved().ConnMgr
	if u, err := clusterAPI(c); err != nil || u != "" {
		t.Fatalf("default: %q, %v; want off", u, err)
	}
	c.ClusterAPI = kconfig.NewOptionalString("http://127.0.0.1:9094")
	if u, err := clusterAPI(c); err != nil || u != "http://127.0.0.1:9094" {
		t.Fatalf("good URL: %q, %v", u, err)
	}
	for _, bad := range []string{"127.0.0.1:9094", "ftp://h/", "http://"} {
		c.ClusterAPI = kconfig.NewOptionalString(bad)
		_, err := clusterAPI(c)
		if err == nil || !strings.Contains(err.Error(), "Config.ConnMgr.ClusterAPI") {
			t.Errorf("%q: got %v, want an error naming Config.ConnMgr.ClusterAPI", bad, err)
		}
	}
}

// TestRcmgrConnLimit reads the clamp from a real resource manager built
// the way Kubo builds it for W7 (ConnsInbound finite, streams unlimited)
// and with a stream limit below it, which Kubo's own check also applies.
func TestRcmgrConnLimit(t *testing.T) {
	if got := rcmgrConnLimit(nil)(); got != 0 {
		t.Errorf("no resource manager: limit %d, want 0", got)
	}
	build := func(system rcmgr.ResourceLimits) network.ResourceManager {
		t.Helper()
		limits := rcmgr.PartialLimitConfig{System: system}.Build(rcmgr.InfiniteLimits)
		rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rm.Close() })
		return rm
	}
	for _, c := range []struct {
		name   string
		system rcmgr.ResourceLimits
		want   int
	}{
		{"unlimited", rcmgr.ResourceLimits{}, 0},
		{"W7: Kubo's 2 x HighWater inbound, streams unlimited", rcmgr.ResourceLimits{
			ConnsInbound: 22000, Conns: rcmgr.Unlimited, Streams: rcmgr.Unlimited, StreamsInbound: rcmgr.Unlimited,
			FD: 61440}, 22000},
		{"a stream limit below the connection limit", rcmgr.ResourceLimits{ConnsInbound: 22000, StreamsInbound: 5000}, 5000},
		{"total connections", rcmgr.ResourceLimits{Conns: 900, ConnsInbound: 22000}, 900},
		{"the FD limit is not a connection limit", rcmgr.ResourceLimits{ConnsInbound: 22000, FD: 1000}, 22000},
	} {
		if got := rcmgrConnLimit(build(c.system))(); got != c.want {
			t.Errorf("%s: limit %d, want %d", c.name, got, c.want)
		}
	}
}

// TestBatchTLSWritesSwapsOnlyTLS: the TLS constructor becomes tlsbatch's,
// Noise's stays, and libp2p can build a host from the result (the
// constructor's signature is one libp2p accepts).
func TestBatchTLSWritesSwapsOnlyTLS(t *testing.T) {
	var lc libp2p.Config
	if err := lc.Apply(libp2p.Security(libp2ptls.ID, libp2ptls.New), libp2p.Security(noise.ID, noise.New)); err != nil {
		t.Fatal(err)
	}
	batchTLSWrites(&lc)
	fn := func(v any) uintptr { return reflect.ValueOf(v).Pointer() }
	if got := lc.SecurityTransports[0]; got.ID != libp2ptls.ID || fn(got.Constructor) != fn(tlsbatch.New) {
		t.Fatalf("TLS entry: %s with constructor %v, want tlsbatch.New", got.ID, got.Constructor)
	}
	if got := lc.SecurityTransports[1]; got.ID != noise.ID || fn(got.Constructor) != fn(noise.New) {
		t.Fatalf("Noise entry changed: %s", got.ID)
	}
	h, err := libp2p.New(libp2p.NoListenAddrs, func(c *libp2p.Config) error {
		c.SecurityTransports = lc.SecurityTransports
		return nil
	})
	if err != nil {
		t.Fatalf("libp2p refused the swapped constructor: %v", err)
	}
	h.Close()
}
