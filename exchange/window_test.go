package exchange

import (
	"context"
	"fmt"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// sizedWants returns n wants of distinct blocks for p, each counting size
// bytes against p's window, and the blocks; each want's end goes to ended.
func sizedWants(p peer.ID, n int, size int64, tag string, ended chan blocks.Block) ([]*directWant, []blocks.Block) {
	var ws []*directWant
	var bs []blocks.Block
	for i := 0; i < n; i++ {
		b := blocks.NewBlock([]byte(fmt.Sprintf("%s %d", tag, i)))
		bs = append(bs, b)
		ws = append(ws, &directWant{c: b.Cid(), p: p, size: size, deliver: func(b blocks.Block) { ended <- b }})
	}
	return ws, bs
}

func setRate(d *DirectWants, p peer.ID, rate float64) {
	d.mu.Lock()
	d.rates[p] = &peerRate{rate: rate, used: time.Now()}
	d.mu.Unlock()
}

// A peer with no rate measured takes directInitWindow of sized wants; the
// rest are spilled: not sent, never delivered, counted. A want without a
// size goes out whatever the window.
func TestDirectWantsPastTheInitialWindowAreSpilled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sh, silent, _, d := fetcherBesideASilentPeer(t, ctx)
	const size = 256 << 10
	ended := make(chan blocks.Block, 16)
	ws, _ := sizedWants(sh.ID(), 12, size, "initial window", ended)
	spilled := d.want(ws)
	in := directInitWindow / size
	if len(spilled) != len(ws)-in {
		t.Fatalf("%d wants spilled, want %d past the initial window of %d", len(spilled), len(ws)-in, in)
	}
	for i, w := range spilled {
		if w != ws[in+i] {
			t.Fatalf("spilled want %d is %s, want the wants past the window in order", i, w.c)
		}
	}
	unsized := blocks.NewBlock([]byte("no size")).Cid()
	if sp := d.want([]*directWant{{c: unsized, p: sh.ID(), deliver: func(b blocks.Block) { ended <- b }}}); len(sp) != 0 {
		t.Fatal("a want without a size was spilled")
	}
	if err := pollFor(10*time.Second, func() bool { w, _ := silent.entries(); return len(w) == in+1 }); err != nil {
		w, _ := silent.entries()
		t.Fatalf("the peer got %d wants, want %d: %v", len(w), in+1, err)
	}
	w, _ := silent.entries()
	for _, x := range spilled {
		if w[x.c] {
			t.Fatalf("spilled want %s reached the peer", x.c)
		}
	}
	if err := pollFor(10*time.Second, func() bool { return d.Stats().Sent == uint64(in+1) }); err != nil {
		t.Fatalf("direct stats %+v: want %d sent", d.Stats(), in+1)
	}
	if st := d.Stats(); st.Spilled != uint64(len(spilled)) || st.Waiting != in+1 || st.Redirected != 0 {
		t.Fatalf("direct stats %+v: want %d spilled, %d waiting", st, len(spilled), in+1)
	}
	select {
	case b := <-ended:
		t.Fatalf("a want ended (%v) though none was answered", b)
	default:
	}
}

// A peer's rate is the bytes of the blocks it answered direct wants with
// over the time it had wants out, and its window that rate times
// directQueueTime, never under directMinWindow.
func TestDirectRateAndWindowFollowTheBlocksAnswered(t *testing.T) {
	d := NewDirectWants()
	p := peer.ID("measured")
	dp := &directPeer{id: p}
	t0 := time.Now()
	dp.mark = t0
	d.mu.Lock()
	defer d.mu.Unlock()
	if w := d.windowLocked(p); w != directInitWindow {
		t.Fatalf("window %d before any sample, want %d", w, directInitWindow)
	}
	// 256 KiB every 100 ms: each block closes a sample of 2.5 MiB/s.
	at := t0
	for i := 0; i < 4; i++ {
		at = at.Add(100 * time.Millisecond)
		d.arrivedLocked(dp, 256<<10, at)
	}
	const slow = float64(256<<10) / 0.1
	if r := d.rates[p].rate; r < slow*0.99 || r > slow*1.01 {
		t.Fatalf("rate %.0f B/s, want %.0f", r, slow)
	}
	if w, want := d.windowLocked(p), int64(slow*directQueueTime.Seconds()); w < want-1 || w > want+1 {
		t.Fatalf("window %d, want %d", w, want)
	}
	// 1 MiB in 10 ms closes a sample at directSampleBytes; the rate moves
	// a third of the way to it.
	at = at.Add(10 * time.Millisecond)
	d.arrivedLocked(dp, directSampleBytes, at)
	fast := float64(directSampleBytes) / 0.01
	if r, want := d.rates[p].rate, slow+(fast-slow)/3; r < want*0.99 || r > want*1.01 {
		t.Fatalf("rate %.0f B/s after a fast sample, want %.0f", r, want)
	}
	// A sample not closed yet moves nothing.
	before := d.rates[p].rate
	at = at.Add(time.Millisecond)
	d.arrivedLocked(dp, 1, at)
	if d.rates[p].rate != before {
		t.Fatal("an open sample moved the rate")
	}
	// A very slow peer keeps directMinWindow.
	q := peer.ID("crawling")
	d.rates[q] = &peerRate{rate: 1000}
	if w := d.windowLocked(q); w != directMinWindow {
		t.Fatalf("window %d of a 1 kB/s peer, want the minimum %d", w, directMinWindow)
	}
}

// Past a slow peer's window, wants go to a peer that sent blocks spilled
// from it, which answers sooner at its rate; a DONT_HAVE from that peer
// ends it.
func TestDirectWantsPastAFullWindowGoToThePeerThatAnsweredItsSpills(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slowH, slow := newSilentPeer(t)
	otherH, other := newSilentPeer(t)
	fh, _, d := fetcherNode(t, ctx, newStore())
	connectHosts(t, fh, slowH, otherH)
	const size = 256 << 10
	setRate(d, slowH.ID(), directMinWindow) // 1 MiB/s: a window of 1 MiB, 4 wants
	ended := make(chan blocks.Block, 32)

	ws, bs := sizedWants(slowH.ID(), 8, size, "to the slow peer", ended)
	spilled := d.want(ws)
	if len(spilled) != 4 {
		t.Fatalf("%d spilled, want 4 past a 1 MiB window", len(spilled))
	}
	// boxo's session got a spilled block from the other peer: the client's
	// tracer sees it.
	d.Senders().MessageReceived(otherH.ID(), blockMsg(bs[4]))
	d.mu.Lock()
	alts := append([]peer.ID(nil), d.alts[slowH.ID()]...)
	d.mu.Unlock()
	if len(alts) != 1 || alts[0] != otherH.ID() {
		t.Fatalf("alternatives of the slow peer %v, want the peer that sent its spilled block", alts)
	}

	// The slow peer is full: the next wants go to the other one, which has
	// no rate yet.
	more, _ := sizedWants(slowH.ID(), 2, size, "past the window", ended)
	if sp := d.want(more); len(sp) != 0 {
		t.Fatalf("%d spilled with another peer holding the blocks", len(sp))
	}
	for _, w := range more {
		if w.p != otherH.ID() || w.meant != slowH.ID() {
			t.Fatalf("want went to %s meant for %s, want the other peer, meant for the slow one", w.p, w.meant)
		}
	}
	if err := pollFor(10*time.Second, func() bool { w, _ := other.entries(); return w[more[0].c] && w[more[1].c] }); err != nil {
		t.Fatalf("the redirected wants never reached the other peer: %v", err)
	}

	// The slow peer answers its four; the other is measured fast. With
	// room at both, the want goes to the one that answers it sooner.
	m := bsmsg.New(false)
	for _, b := range bs[:4] {
		m.AddBlock(b)
	}
	d.MessageReceived(slowH.ID(), m)
	for i := 0; i < 4; i++ {
		if b := <-ended; b == nil {
			t.Fatal("an answered want ended without its block")
		}
	}
	setRate(d, otherH.ID(), 100<<20)
	next, _ := sizedWants(slowH.ID(), 1, size, "sooner", ended)
	if sp := d.want(next); len(sp) != 0 || next[0].p != otherH.ID() {
		t.Fatalf("want went to %s (spilled %d), want the faster peer", next[0].p, len(sp))
	}

	// Not much slower than the other (within directPreferOwn), its own
	// peer keeps the want while it has room.
	setRate(d, slowH.ID(), 10<<20)
	own, _ := sizedWants(slowH.ID(), 1, size, "own peer", ended)
	if sp := d.want(own); len(sp) != 0 || own[0].p != slowH.ID() || own[0].meant != "" {
		t.Fatalf("want went to %s (spilled %d), want its own peer, 10 MiB/s against 100", own[0].p, len(sp))
	}

	// The other peer has not got one after all: it is no longer an
	// alternative, and the want ends without a block.
	dh := bsmsg.New(false)
	dh.AddDontHave(more[0].c)
	d.MessageReceived(otherH.ID(), dh)
	if b := <-ended; b != nil {
		t.Fatal("a DONT_HAVE delivered a block")
	}
	last, _ := sizedWants(slowH.ID(), 1, size, "back to the slow peer", ended)
	if sp := d.want(last); len(sp) != 0 || last[0].p != slowH.ID() {
		t.Fatalf("want went to %s (spilled %d), want the slow peer once the other said DONT_HAVE", last[0].p, len(sp))
	}
	if err := pollFor(10*time.Second, func() bool { w, _ := slow.entries(); return w[last[0].c] }); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Redirected != 3 || st.Spilled != 4 {
		t.Fatalf("direct stats %+v: want 3 redirected, 4 spilled", st)
	}
}

// A reader's run past its peer's window gets every block once: the wants
// past the window through boxo's session, at once, beside the direct
// ones, from a real provider.
func TestReaderRunPastThePeersWindowGetsEveryBlockOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pbs, fbs := newStore(), newStore()
	root := &merkledag.ProtoNode{}
	var leaves []cid.Cid
	for i := 0; i < 12; i++ {
		data := make([]byte, 128<<10)
		copy(data, fmt.Sprint("large leaf ", i))
		leaf := merkledag.NewRawNode(data)
		if err := pbs.Put(ctx, leaf); err != nil {
			t.Fatal(err)
		}
		if err := root.AddNodeLink(fmt.Sprint(i), leaf); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leaf.Cid())
	}
	if err := pbs.Put(ctx, root); err != nil {
		t.Fatal(err)
	}
	ph := providerNode(t, ctx, pbs)
	fh, fb, d := fetcherNode(t, ctx, fbs)
	connectHosts(t, fh, ph)
	px := NewPrefetchExchange(fb, fbs, 64, d).(*PrefetchExchange)
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	s := px.NewSession(sctx).(*prefetchSession)
	if _, err := s.GetBlock(sctx, root.Cid()); err != nil {
		t.Fatal(err)
	}
	if p, ok := d.sender(root.Cid()); !ok || p != ph.ID() {
		t.Fatalf("root's sender %q, want the provider", p)
	}
	// A slow provider, as measured: a window of 1 MiB, 8 leaves of the 10.
	setRate(d, ph.ID(), 1)
	ch, err := s.GetBlocks(sctx, leaves[:10])
	if err != nil {
		t.Fatal(err)
	}
	got := map[cid.Cid]int{}
	for b := range ch {
		got[b.Cid()]++
		if len(got) == 10 {
			break
		}
	}
	for _, c := range leaves[:10] {
		if got[c] != 1 {
			t.Fatalf("leaf %s came %d times, want once", c, got[c])
		}
	}
	st := d.Stats()
	if st.Spilled != 2 || st.Sent < 8 {
		t.Fatalf("direct stats %+v: want 8 leaves sent direct and 2 spilled", st)
	}
	bst, err := fb.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if bst.DupBlksReceived != 0 {
		t.Fatalf("%d duplicate blocks", bst.DupBlksReceived)
	}
}
