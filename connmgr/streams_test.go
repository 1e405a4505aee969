package connmgr

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
)

// newWatchedHost is a real TCP host whose yamux is wrapped by m.WatchStreams.
func newWatchedHost(t *testing.T, m *Manager) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
		libp2p.ConnectionManager(m),
		libp2p.Muxer(yamux.ID, m.WatchStreams(yamux.DefaultTransport)),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestWatchStreamsReportsResetsAndErrors(t *testing.T) {
	m := newTestManager(t, Config{LowWater: 0, HighWater: 10})
	h := newWatchedHost(t, m)
	q := newHost(t, nil)
	ctx := context.Background()
	if err := h.Connect(ctx, info(q)); err != nil {
		t.Fatal(err)
	}
	events := func() (float64, float64) {
		qq := m.Quality(q.ID())
		return qq.StreamErrors, qq.StreamResets
	}
	// Clean exchanges report nothing: q echoes and closes.
	q.SetStreamHandler("/echo", func(s network.Stream) {
		b, _ := io.ReadAll(s)
		_, _ = s.Write(b)
		_ = s.Close()
	})
	for range 3 {
		s, err := h.NewStream(ctx, q.ID(), "/echo")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = s.Write([]byte("hi"))
		_ = s.CloseWrite()
		if b, err := io.ReadAll(s); err != nil || string(b) != "hi" {
			t.Fatalf("echo: %q, %v", b, err)
		}
		_ = s.Close()
	}
	if e, r := events(); e != 0 || r != 0 {
		t.Fatalf("clean streams reported errors %.1f, resets %.1f", e, r)
	}

	// q resets: h's read fails with a remote reset.
	q.SetStreamHandler("/reset", func(s network.Stream) { _ = s.Reset() })
	// (libp2p may see the reset already while confirming the protocol.)
	if s, err := h.NewStream(ctx, q.ID(), "/reset"); err == nil {
		_, _ = s.Write([]byte("x"))
		if _, err := io.ReadAll(s); err == nil {
			t.Fatal("read of a reset stream succeeded")
		}
	}
	waitFor(t, 5*time.Second, "a remote reset reported", func() bool { _, r := events(); return r > 0.9 })

	// h resets a stream itself.
	s, err := h.NewStream(ctx, q.ID(), "/echo")
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Reset()
	waitFor(t, 5*time.Second, "a local reset reported", func() bool { _, r := events(); return r > 1.9 })

	// A read deadline passes on h's side: an error, not a reset.
	q.SetStreamHandler("/silent", func(s network.Stream) {
		time.Sleep(time.Second)
		_ = s.Close()
	})
	s, err = h.NewStream(ctx, q.ID(), "/silent")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = s.Write([]byte("x"))
	_ = s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := s.Read(make([]byte, 1)); err == nil {
		t.Fatal("read past its deadline succeeded")
	}
	_ = s.Close()
	waitFor(t, 5*time.Second, "a timeout reported as an error", func() bool { e, _ := events(); return e > 0.9 })
	e, r := events()
	if st := m.Stats(); st.StreamErrors < 1 || st.StreamResets < 2 {
		t.Errorf("stats totals: errors %d, resets %d", st.StreamErrors, st.StreamResets)
	}
	if q := m.Quality(q.ID()); q.Score >= 0 {
		t.Errorf("score %.1f with %.1f errors and %.1f resets: want it lowered below 0", q.Score, e, r)
	}

	// A peer that is gone leaves no entry behind, even if reported later.
	_ = h.Network().ClosePeer(q.ID())
	waitFor(t, 5*time.Second, "q no longer tracked", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		_, ok := m.peers[q.ID()]
		return !ok
	})
	m.ReportStreamReset(q.ID())
	m.qm.Lock()
	_, left := m.quality[q.ID()]
	m.qm.Unlock()
	if left {
		t.Error("a report for a disconnected peer was kept")
	}
}
