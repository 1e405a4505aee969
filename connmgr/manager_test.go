package connmgr

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestConfigRefusesInvertedWatermarks(t *testing.T) {
	for _, c := range []Config{
		{LowWater: 10, HighWater: 5},
		{LowWater: 5, HighWater: 5},
		{LowWater: 1, HighWater: 0},
		{LowWater: 5, HighWater: 10, MinHighWater: 20},
		{LowWater: 5, HighWater: 10, MaxHighWater: 8},
		{LowWater: 5, HighWater: 10, GracePeriod: time.Second, MinGracePeriod: 2 * time.Second},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted a bad config", c)
		} else if !strings.Contains(err.Error(), "connmgr:") {
			t.Errorf("error %q does not say where it comes from", err)
		}
	}
}

// The tests that drive trimRound or TrimOpenConns themselves use a HighWater
// no connect reaches, so that the background loop never trims beside them.

func TestTrimOrderWorstFirst(t *testing.T) {
	clk := newFakeClock()
	latency := map[peer.ID]time.Duration{}
	m := newTestManager(t, Config{LowWater: 3, HighWater: 100, GracePeriod: time.Second, Now: clk.Now,
		Latency: func(p peer.ID) time.Duration { return latency[p] }})
	valued := connect(t, m, network.DirOutbound)
	m.TagPeer(valued.remote, "bitswap", 50)
	fast := connect(t, m, network.DirOutbound)
	latency[fast.remote] = 10 * time.Millisecond
	slowButValued := connect(t, m, network.DirOutbound)
	m.TagPeer(slowButValued.remote, "bitswap", 100)
	latency[slowButValued.remote] = 3 * time.Second
	erring := connect(t, m, network.DirOutbound)
	for range 4 {
		m.ReportStreamError(erring.remote)
	}
	plain := connect(t, m, network.DirOutbound)
	inbound := connect(t, m, network.DirInbound)
	clk.Advance(2 * time.Second)

	if q := m.Quality(slowButValued.remote); !q.Slow || q.Latency != 3*time.Second {
		t.Fatalf("slow peer not detected: %+v", q)
	}
	// Worst first: the slow peer (whatever its value), then the erring one,
	// then inbound before outbound at equal value.
	want := []*fakeConn{slowButValued, erring, inbound}
	if n := m.trimRound(3); n != 3 {
		t.Fatalf("trimRound(3) closed %d connections", n)
	}
	for _, c := range want {
		if !c.isClosed() {
			t.Errorf("peer %s should have been trimmed first (quality %+v)", c.remote, m.Quality(c.remote))
		}
	}
	for _, c := range []*fakeConn{valued, fast, plain} {
		if c.isClosed() {
			t.Errorf("peer %s trimmed before worse ones", c.remote)
		}
	}
	if got := m.ConnCount(); got != 3 {
		t.Errorf("ConnCount after trim = %d, want 3", got)
	}
	// The next worst is plain (no value, unknown latency), then fast, then valued.
	m.trimRound(1)
	if !plain.isClosed() || fast.isClosed() || valued.isClosed() {
		t.Errorf("second round: plain closed=%v fast=%v valued=%v", plain.isClosed(), fast.isClosed(), valued.isClosed())
	}
}

func TestGracePeriod(t *testing.T) {
	clk := newFakeClock()
	m := newTestManager(t, Config{LowWater: 1, HighWater: 100, GracePeriod: 10 * time.Second, Now: clk.Now})
	old := connect(t, m, network.DirInbound)
	clk.Advance(11 * time.Second)
	var young []*fakeConn
	for range 3 {
		young = append(young, connect(t, m, network.DirInbound))
	}
	clk.Advance(5 * time.Second)
	m.TrimOpenConns(context.Background())
	if !old.isClosed() {
		t.Error("the connection past its grace period was not trimmed")
	}
	for _, c := range young {
		if c.isClosed() {
			t.Error("a connection inside its grace period was trimmed")
		}
	}
	clk.Advance(6 * time.Second) // young ones now 11s old
	m.TrimOpenConns(context.Background())
	closed := 0
	for _, c := range young {
		if c.isClosed() {
			closed++
		}
	}
	if closed != 2 || m.ConnCount() != 1 {
		t.Errorf("after grace: closed %d of 3 (want 2), count %d (want LowWater 1)", closed, m.ConnCount())
	}
}

func TestBackgroundTrimIsGradual(t *testing.T) {
	clk := newFakeClock()
	m := newTestManager(t, Config{LowWater: 10, HighWater: 20, GracePeriod: time.Second, Now: clk.Now,
		MaxTrimPerRound: 4, RoundPause: time.Hour})
	for range 30 {
		connect(t, m, network.DirInbound)
	}
	// The signal from Connected woke the loop; everything is in its grace
	// period, so its round closed nothing, but the manager now drains.
	waitFor(t, 5*time.Second, "the wake-up to start a drain", func() bool { return m.Stats().Draining })
	if m.ConnCount() != 30 {
		t.Fatalf("connections in their grace period trimmed: %d left", m.ConnCount())
	}
	clk.Advance(2 * time.Second)
	// Rounds (driven by hand; the loop waits RoundPause, an hour): the
	// excess over HighWater goes at once, then at most 4 a round down to
	// LowWater.
	var counts []int
	for m.backgroundRound() {
		counts = append(counts, m.ConnCount())
	}
	counts = append(counts, m.ConnCount())
	want := []int{20, 16, 12, 10}
	if len(counts) != len(want) {
		t.Fatalf("counts after each round %v, want %v", counts, want)
	}
	for i := range want {
		if counts[i] != want[i] {
			t.Fatalf("counts after each round %v, want %v", counts, want)
		}
	}
	if m.Stats().Draining {
		t.Error("still draining at LowWater")
	}
	// Below HighWater, nothing happens.
	for range 5 {
		connect(t, m, network.DirInbound)
	}
	clk.Advance(2 * time.Second)
	if m.backgroundRound() || m.ConnCount() != 15 {
		t.Errorf("trimmed below HighWater: count %d", m.ConnCount())
	}
}

func TestTagsMatchLibp2pContract(t *testing.T) {
	m := newTestManager(t, Config{LowWater: 1, HighWater: 2})
	p := randomPeer(t)
	if m.GetTagInfo(p) != nil {
		t.Fatal("unknown peer has tag info")
	}
	// Tags before a connection are kept (temporary entry).
	m.TagPeer(p, "a", 5)
	m.TagPeer(p, "b", 7)
	m.TagPeer(p, "a", 3)
	m.UpsertTag(p, "c", func(v int) int { return v + 10 })
	m.UpsertTag(p, "c", func(v int) int { return v + 10 })
	ti := m.GetTagInfo(p)
	if ti == nil || ti.Value != 3+7+20 || ti.Tags["a"] != 3 || ti.Tags["c"] != 20 {
		t.Fatalf("tag info %+v", ti)
	}
	m.UntagPeer(p, "b")
	m.UntagPeer(p, "missing")
	if ti := m.GetTagInfo(p); ti.Value != 23 || len(ti.Tags) != 2 {
		t.Fatalf("after untag: %+v", ti)
	}
	c := &fakeConn{remote: p, dir: network.DirOutbound}
	m.Notifee().Connected(nil, c)
	ti = m.GetTagInfo(p)
	if ti.Value != 23 || len(ti.Conns) != 1 {
		t.Fatalf("connected peer lost its early tags: %+v", ti)
	}
	m.Notifee().Connected(nil, c) // duplicate notification is ignored
	if m.ConnCount() != 1 {
		t.Fatalf("duplicate Connected counted: %d", m.ConnCount())
	}
	m.Notifee().Disconnected(nil, c)
	if m.GetTagInfo(p) != nil || m.ConnCount() != 0 {
		t.Fatal("disconnected peer still tracked")
	}
	m.Notifee().Disconnected(nil, c) // unknown: ignored
	m.UntagPeer(p, "a")              // untracked: ignored, no entry created
	if m.GetTagInfo(p) != nil {
		t.Fatal("UntagPeer created an entry")
	}
}

func TestProtection(t *testing.T) {
	clk := newFakeClock()
	m := newTestManager(t, Config{LowWater: 0, HighWater: 100, GracePeriod: time.Second, Now: clk.Now})
	c := connect(t, m, network.DirInbound)
	p := c.remote
	m.Protect(p, "x")
	m.Protect(p, "y")
	if !m.IsProtected(p, "x") || !m.IsProtected(p, "") || m.IsProtected(p, "z") {
		t.Fatal("IsProtected wrong")
	}
	if !m.Unprotect(p, "x") {
		t.Fatal("Unprotect(x) should report still protected by y")
	}
	if m.IsProtected(p, "x") || !m.IsProtected(p, "y") {
		t.Fatal("tag x still protects")
	}
	other := connect(t, m, network.DirInbound)
	clk.Advance(2 * time.Second)
	m.TrimOpenConns(context.Background())
	if c.isClosed() {
		t.Fatal("protected peer trimmed")
	}
	if !other.isClosed() {
		t.Fatal("unprotected peer kept with LowWater 0")
	}
	if m.Unprotect(p, "y") {
		t.Fatal("Unprotect of last tag reports protected")
	}
	if m.IsProtected(p, "") {
		t.Fatal("still protected")
	}
	m.TrimOpenConns(context.Background())
	if !c.isClosed() {
		t.Fatal("unprotected peer kept")
	}
	if m.Unprotect(randomPeer(t), "x") {
		t.Fatal("Unprotect of unknown peer reports protected")
	}
}

func TestDecayingTags(t *testing.T) {
	clk := newFakeClock()
	m := newTestManager(t, Config{LowWater: 1, HighWater: 2, Now: clk.Now, DecayResolution: time.Hour})
	var d connmgr.Decayer = m
	tag, err := d.RegisterDecayingTag("dht", time.Minute, connmgr.DecayFixed(3), connmgr.BumpSumUnbounded())
	if err != nil {
		t.Fatal(err)
	}
	if tag.Interval() != time.Hour {
		t.Errorf("interval below resolution not raised: %s", tag.Interval())
	}
	if _, err := d.RegisterDecayingTag("dht", time.Hour, connmgr.DecayFixed(1), connmgr.BumpSumUnbounded()); err == nil {
		t.Error("duplicate tag name accepted")
	}
	c := connect(t, m, network.DirInbound)
	m.TagPeer(c.remote, "plain", 1)
	if err := tag.Bump(c.remote, 10); err != nil {
		t.Fatal(err)
	}
	if err := tag.Bump(c.remote, 5); err != nil {
		t.Fatal(err)
	}
	if ti := m.GetTagInfo(c.remote); ti.Value != 16 || ti.Tags["dht"] != 15 {
		t.Fatalf("after bumps: %+v", ti)
	}
	clk.Advance(time.Hour)
	m.decay.tick()
	if ti := m.GetTagInfo(c.remote); ti.Tags["dht"] != 12 || ti.Value != 13 {
		t.Fatalf("after decay: %+v", ti)
	}
	if err := tag.Remove(c.remote); err != nil {
		t.Fatal(err)
	}
	if ti := m.GetTagInfo(c.remote); ti.Value != 1 {
		t.Fatalf("after remove: %+v", ti)
	}
	_ = tag.Bump(c.remote, 4)
	if err := tag.Close(); err != nil {
		t.Fatal(err)
	}
	if ti := m.GetTagInfo(c.remote); ti.Value != 1 {
		t.Fatalf("closing the tag left its value: %+v", ti)
	}
	if tag.Bump(c.remote, 1) == nil {
		t.Error("bump on closed tag accepted")
	}
	if _, err := d.RegisterDecayingTag("dht", time.Hour, connmgr.DecayFixed(1), connmgr.BumpSumUnbounded()); err != nil {
		t.Errorf("name not free after Close: %v", err)
	}
}

func TestNoTrimStormOnConnect(t *testing.T) {
	clk := newFakeClock()
	m := newTestManager(t, Config{LowWater: 5, HighWater: 10, GracePeriod: time.Minute, Now: clk.Now,
		RoundPause: time.Hour})
	// 250 connections above HighWater, all in their grace period: each
	// Connected past HighWater sends a wake-up, but the trimmer scans the
	// peers at most once per RoundPause.
	for range 250 {
		connect(t, m, network.DirInbound)
	}
	waitFor(t, 5*time.Second, "the first round to mark the manager draining", func() bool { return m.Stats().Draining })
	for range 50 {
		connect(t, m, network.DirInbound)
	}
	if n := m.scans.Load(); n != 1 {
		t.Errorf("%d scans of the peers for 290 wake-ups, want 1", n)
	}
	if m.ConnCount() != 300 {
		t.Errorf("young connections trimmed: count %d", m.ConnCount())
	}
}

func TestDrainRecountsArrivals(t *testing.T) {
	clk := newFakeClock()
	// HighWater 100: no Connected wakes the background loop, the test
	// drives the rounds alone.
	m := newTestManager(t, Config{LowWater: 2, HighWater: 100, GracePeriod: time.Second, Now: clk.Now,
		MaxTrimPerRound: 100, RoundPause: time.Hour})
	m.draining.Store(true) // as if a pass over HighWater had started the drain
	var old []*fakeConn
	for range 5 {
		old = append(old, connect(t, m, network.DirInbound))
	}
	clk.Advance(2 * time.Second)
	// A peer connects while the round closes the old ones.
	var late *fakeConn
	var once sync.Once
	for _, c := range old {
		c.onClose = func() { once.Do(func() { late = connect(t, m, network.DirInbound) }) }
	}
	m.backgroundRound()
	if late == nil || m.ConnCount() != 3 || !m.Stats().Draining {
		t.Fatalf("after the round: count %d draining %v; want 3 and still draining", m.ConnCount(), m.Stats().Draining)
	}
	clk.Advance(2 * time.Second)
	m.backgroundRound()
	if m.ConnCount() != 2 || m.Stats().Draining {
		t.Errorf("the arrival during the round was not trimmed down to LowWater: count %d", m.ConnCount())
	}
}
