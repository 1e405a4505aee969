package connmgr

import (
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct{ t atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.t.Add(int64(d)) }

// fakeConn is a network.Conn for the unit tests of ordering and counting;
// the tests that need real connections use real hosts on loopback.
type fakeConn struct {
	network.Conn // nil: any other method panics, which a test would show
	remote       peer.ID
	dir          network.Direction
	streams      int
	mu           sync.Mutex
	closed       bool
	onClose      func() // called once, on the first close
}

func (c *fakeConn) RemotePeer() peer.ID { return c.remote }
func (c *fakeConn) Stat() network.ConnStats {
	return network.ConnStats{Stats: network.Stats{Direction: c.dir}, NumStreams: c.streams}
}
func (c *fakeConn) RemoteMultiaddr() ma.Multiaddr {
	return ma.StringCast("/ip4/127.0.0.1/tcp/4001")
}
func (c *fakeConn) CloseWithError(network.ConnErrorCode) error {
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	f := c.onClose
	c.mu.Unlock()
	if first && f != nil {
		f()
	}
	return nil
}
func (c *fakeConn) Close() error { return c.CloseWithError(0) }
func (c *fakeConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func randomPeer(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newTestManager returns a manager whose background loops effectively never
// fire on their own (long intervals); tests drive rounds directly.
func newTestManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	if cfg.TrimInterval == 0 {
		cfg.TrimInterval = time.Hour
	}
	if cfg.AdaptInterval == 0 {
		cfg.AdaptInterval = time.Hour
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// connect adds a fake connection to a new peer and returns it.
func connect(t *testing.T, m *Manager, dir network.Direction) *fakeConn {
	t.Helper()
	c := &fakeConn{remote: randomPeer(t), dir: dir}
	m.Notifee().Connected(nil, c)
	return c
}

// waitFor polls cond every 20ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
