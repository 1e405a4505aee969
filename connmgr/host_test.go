package connmgr

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// newHost starts a real libp2p host on loopback TCP; cm may be nil.
func newHost(t *testing.T, cm *Manager) host.Host {
	t.Helper()
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
	}
	if cm != nil {
		opts = append(opts, libp2p.ConnectionManager(cm))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func info(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

func TestRealHostsTrimHonoursProtectionAndTags(t *testing.T) {
	m := newTestManager(t, Config{LowWater: 2, HighWater: 100, GracePeriod: 50 * time.Millisecond})
	h := newHost(t, m)
	var others []host.Host
	for range 6 {
		o := newHost(t, nil)
		if err := o.Connect(context.Background(), info(h)); err != nil {
			t.Fatal(err)
		}
		others = append(others, o)
	}
	waitFor(t, 5*time.Second, "6 connections tracked", func() bool { return m.ConnCount() == 6 })
	if h.ConnManager() != m {
		t.Fatal("the host does not use our manager")
	}
	protected, valued := others[0].ID(), others[1].ID()
	m.Protect(protected, "test")
	m.TagPeer(valued, "useful", 100)
	waitFor(t, 5*time.Second, "grace period over", func() bool {
		return m.GetTagInfo(protected).FirstSeen.Add(50*time.Millisecond).Before(time.Now()) &&
			m.GetTagInfo(others[5].ID()).FirstSeen.Add(50*time.Millisecond).Before(time.Now())
	})
	m.TrimOpenConns(context.Background())
	waitFor(t, 5*time.Second, "trimmed to LowWater on both sides", func() bool {
		return len(h.Network().Peers()) == 2
	})
	for _, p := range []peer.ID{protected, valued} {
		if h.Network().Connectedness(p) != network.Connected {
			t.Errorf("peer %s (protected or valued) was trimmed", p)
		}
	}
	if s := m.Stats(); s.Trimmed != 4 || s.Conns != 2 || len(s.Protected) != 1 || !s.Protected[0].Connected {
		t.Errorf("stats after trim: %+v", s)
	}
}

func TestRealHostsBackgroundTrimAboveHighWater(t *testing.T) {
	m := newTestManager(t, Config{LowWater: 2, HighWater: 3, GracePeriod: time.Millisecond,
		MinGracePeriod: time.Millisecond, MaxTrimPerRound: 1, RoundPause: 10 * time.Millisecond})
	h := newHost(t, m)
	for range 6 {
		o := newHost(t, nil)
		if err := o.Connect(context.Background(), info(h)); err != nil {
			t.Fatal(err)
		}
	}
	// No explicit trim: the Connected signal and gradual rounds of one
	// bring the count down to LowWater.
	waitFor(t, 10*time.Second, "background trim to LowWater", func() bool {
		return len(h.Network().Peers()) == 2 && m.ConnCount() == 2
	})
	if s := m.Stats(); s.TrimRounds < 2 {
		t.Errorf("expected several gradual rounds, got %d", s.TrimRounds)
	}
}

func TestPoolReconnectsProtectedPeer(t *testing.T) {
	m := newTestManager(t, Config{LowWater: 0, HighWater: 1, GracePeriod: time.Millisecond, MinGracePeriod: time.Millisecond})
	h := newHost(t, m)
	friend := newHost(t, nil)
	pool, err := m.StartPool(h, PoolConfig{Peers: []peer.AddrInfo{info(friend)}, MinBackoff: 50 * time.Millisecond,
		KeepAlive: 50 * time.Millisecond, Ping: HostPinger(h)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartPool(h, PoolConfig{}); err == nil {
		t.Error("second pool accepted")
	}
	if !m.IsProtected(friend.ID(), PoolTag) {
		t.Fatal("pool peer not protected")
	}
	waitFor(t, 10*time.Second, "pool dials its peer", func() bool {
		return h.Network().Connectedness(friend.ID()) == network.Connected
	})
	// LowWater 0: a trim closes everything but the protected pool peer.
	stranger := newHost(t, nil)
	if err := stranger.Connect(context.Background(), info(h)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "stranger trimmed", func() bool {
		m.TrimOpenConns(context.Background())
		return h.Network().Connectedness(stranger.ID()) != network.Connected
	})
	if h.Network().Connectedness(friend.ID()) != network.Connected {
		t.Fatal("protected pool peer trimmed")
	}
	// Kill its connection: the pool redials it.
	if err := h.Network().ClosePeer(friend.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "pool reconnects after a kill", func() bool {
		st := pool.State()
		return len(st) == 1 && st[0].Connected && st[0].Reconnects >= 1
	})
	waitFor(t, 5*time.Second, "keep-alive ping measured", func() bool {
		return pool.State()[0].RTT > 0 && h.Peerstore().LatencyEWMA(friend.ID()) > 0
	})
	// A peer that cannot be dialled backs off.
	gone := newHost(t, nil)
	goneInfo := info(gone)
	gone.Close()
	pool.Add(goneInfo)
	waitFor(t, 10*time.Second, "failures recorded with backoff", func() bool {
		for _, s := range pool.State() {
			if s.ID == goneInfo.ID.String() && s.Failures >= 2 && !s.NextDial.IsZero() && s.LastError != "" {
				return true
			}
		}
		return false
	})
	pool.Remove(goneInfo.ID)
	if m.IsProtected(goneInfo.ID, "") {
		t.Error("removed pool peer still protected")
	}
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	p := &Pool{cfg: PoolConfig{MinBackoff: time.Second, MaxBackoff: 10 * time.Second}}
	for f, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: 10 * time.Second} {
		got := p.backoff(f)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("backoff(%d) = %s, want %s ±20%%", f, got, want)
		}
	}
}

// Two nodes that keep each other in their pools both see a loss at once.
// Without a tie-break both redial at once; with TCP port reuse the crossing
// dials become one simultaneous open that fails the TLS handshake both ways
// (and the swarm's dial backoff then keeps them apart for 5 s or more). With
// it, the end with the greater ID waits and the other one's dial brings the
// link back: no dial fails, whichever end closed the connection.
func TestMutualPoolsRedialWithoutColliding(t *testing.T) {
	mgrA := newTestManager(t, Config{LowWater: 10, HighWater: 20})
	mgrB := newTestManager(t, Config{LowWater: 10, HighWater: 20})
	a, b := newHost(t, mgrA), newHost(t, mgrB)
	pa, err := mgrA.StartPool(a, PoolConfig{Peers: []peer.AddrInfo{info(b)}, MinBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := mgrB.StartPool(b, PoolConfig{Peers: []peer.AddrInfo{info(a)}, MinBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	up := func() bool {
		return a.Network().Connectedness(b.ID()) == network.Connected &&
			b.Network().Connectedness(a.ID()) == network.Connected
	}
	waitFor(t, 10*time.Second, "the pools connect", up)
	yielder, first := pa, pb
	if a.ID() < b.ID() {
		yielder, first = pb, pa
	}
	connIDs := func() map[string]bool {
		ids := map[string]bool{}
		for _, c := range a.Network().ConnsToPeer(b.ID()) {
			ids[c.ID()] = true
		}
		return ids
	}
	const kills = 12
	for i := range kills {
		// Alternate which end closes. Loss notifications are asynchronous:
		// an end may see the new connection before the old one's close and
		// count no loss, so the test follows the connections themselves.
		closer, other := a, b
		if i%2 == 1 {
			closer, other = b, a
		}
		old := connIDs()
		if err := closer.Network().ClosePeer(other.ID()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "a new connection", func() bool {
			if !up() {
				return false
			}
			for id := range connIDs() {
				if !old[id] {
					return true
				}
			}
			return false
		})
	}
	// A pool counts a redial when its Connect returns, which can be
	// after the new connection is visible above: poll for the count.
	var y, f PoolPeer
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		y, f = yielder.State()[0], first.State()[0]
		if y.Reconnects+f.Reconnects >= kills || time.Now().After(deadline) {
			break
		}
	}
	if y.FailedDials != 0 || f.FailedDials != 0 {
		t.Errorf("dials failed: yielding end %+v, first end %+v", y, f)
	}
	if f.Yields != 0 || y.Reconnects > y.Yields {
		t.Errorf("the smaller ID's end yielded %d times (want 0); the greater's redialled %d times after %d yields", f.Yields, y.Reconnects, y.Yields)
	}
	if y.Reconnects+f.Reconnects < kills {
		t.Errorf("%d redials for %d kills: yielding end %+v, first end %+v", y.Reconnects+f.Reconnects, kills, y, f)
	}
}
