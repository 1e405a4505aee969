package exchange

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/client"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	iface "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// These tests run real libp2p hosts on loopback and real boxo Bitswap
// instances: the direct wants travel on real streams and their answers
// come back through Bitswap's receiver and tracers as in the daemon.

func newLoopbackHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newStore() blockstore.Blockstore {
	return blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
}

// providerNode runs a stock boxo Bitswap on a fresh host serving bs.
func providerNode(t *testing.T, ctx context.Context, bs blockstore.Blockstore) host.Host {
	t.Helper()
	h := newLoopbackHost(t)
	b := bitswap.New(ctx, bsnet.NewFromIpfsHost(h), nil, bs)
	t.Cleanup(func() { b.Close() })
	return h
}

// fetcherNode runs a boxo Bitswap wired as plugin/bitswap.go wires Kubo's:
// the direct wants see messages through the client's tracer (senders)
// and the server's (replies), and send on a network of their own.
func fetcherNode(t *testing.T, ctx context.Context, bs blockstore.Blockstore) (host.Host, *bitswap.Bitswap, *DirectWants) {
	t.Helper()
	h := newLoopbackHost(t)
	d := NewDirectWants()
	b := bitswap.New(ctx, bsnet.NewFromIpfsHost(h), nil, bs,
		bitswap.WithClientOption(client.WithTracer(d.Senders())),
		bitswap.WithServerOption(server.WithTracer(SplitTracer(d, nil))))
	t.Cleanup(func() { b.Close() })
	d.Attach()
	d.OnReceived(b.Server.ReceivedBlocks)
	d.Start(ctx, h)
	return h, b, d
}

func connectHosts(t *testing.T, from host.Host, to ...host.Host) {
	t.Helper()
	for _, h := range to {
		if err := from.Connect(context.Background(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
}

// fileDag stores in bs a root over nodes dag-pb nodes of leaves raw leaves
// (1 KiB each) and returns the root and the leaves by node.
func fileDag(t *testing.T, bs blockstore.Blockstore, nodes, leaves int, tag string) (cid.Cid, [][]blocks.Block) {
	t.Helper()
	ctx := context.Background()
	root := &merkledag.ProtoNode{}
	var all [][]blocks.Block
	for i := 0; i < nodes; i++ {
		nd := &merkledag.ProtoNode{}
		var ls []blocks.Block
		for j := 0; j < leaves; j++ {
			data := make([]byte, 1024)
			copy(data, fmt.Sprintf("%s leaf %d/%d", tag, i, j))
			leaf := merkledag.NewRawNode(data)
			if err := bs.Put(ctx, leaf); err != nil {
				t.Fatal(err)
			}
			if err := nd.AddNodeLink(fmt.Sprint(j), leaf); err != nil {
				t.Fatal(err)
			}
			ls = append(ls, leaf)
		}
		if err := bs.Put(ctx, nd); err != nil {
			t.Fatal(err)
		}
		if err := root.AddNodeLink(fmt.Sprint(i), nd); err != nil {
			t.Fatal(err)
		}
		all = append(all, ls)
	}
	if err := bs.Put(ctx, root); err != nil {
		t.Fatal(err)
	}
	return root.Cid(), all
}

// fetchGraph walks root as `pin add` does (merkledag.FetchGraph, 32
// walkers) through a blockservice over the prefetching exchange.
func fetchGraph(ctx context.Context, bs blockstore.Blockstore, px *PrefetchExchange, root cid.Cid) error {
	bserv := blockservice.New(bs, px)
	return merkledag.FetchGraph(ctx, root, merkledag.NewDAGService(bserv))
}

// walkInOrder gets root and, depth first, every block under it, one at a
// time.
func walkInOrder(ctx context.Context, ses *blockservice.Session, root cid.Cid) error {
	b, err := ses.GetBlock(ctx, root)
	if err != nil {
		return err
	}
	if root.Type() != cid.DagProtobuf {
		return nil
	}
	nd, err := merkledag.DecodeProtobuf(b.RawData())
	if err != nil {
		return err
	}
	for _, l := range nd.Links() {
		if err := walkInOrder(ctx, ses, l.Cid); err != nil {
			return err
		}
	}
	return nil
}

func countBlocks(t *testing.T, bs blockstore.Blockstore) int {
	t.Helper()
	ch, err := bs.AllKeysChan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range ch {
		n++
	}
	return n
}

func TestDirectWantsFetchAWholeDagFromARealProvider(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pbs, fbs := newStore(), newStore()
	root, _ := fileDag(t, pbs, 4, 64, "whole")
	ph := providerNode(t, ctx, pbs)
	fh, fb, d := fetcherNode(t, ctx, fbs)
	connectHosts(t, fh, ph)
	px := NewPrefetchExchange(fb, fbs, 64, d).(*PrefetchExchange)

	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	if err := fetchGraph(fctx, fbs, px, root); err != nil {
		t.Fatal(err)
	}
	if n := countBlocks(t, fbs); n != 1+4+4*64 {
		t.Fatalf("fetcher holds %d blocks, want %d", n, 1+4+4*64)
	}
	st := d.Stats()
	// The root and the first nodes come through boxo's session (their
	// parents' senders are not known yet); the leaves' parents came from
	// the provider, so their wants go direct.
	if st.Blocks < 4*64/2 || st.Sent != st.Blocks || st.DontHaves != 0 || st.Timeouts != 0 || st.Failed != 0 {
		t.Fatalf("direct stats %+v: want most leaves sent and answered directly, nothing failed", st)
	}
	if st.Messages == 0 || st.Messages >= st.Sent {
		t.Fatalf("direct stats %+v: want several wants per message", st)
	}
	bst, err := fb.Stat()
	if err != nil {
		t.Fatal(err)
	}
	// boxo's client still counts what the direct wants brought, and none
	// of it as a duplicate (the leaves are written ahead only after its
	// duplicate check: the server's tracer runs last).
	if bst.BlocksReceived != uint64(1+4+4*64) || bst.DupBlksReceived != 0 {
		t.Fatalf("bitswap stat: %d blocks received, %d duplicates; want %d and 0", bst.BlocksReceived, bst.DupBlksReceived, 1+4+4*64)
	}
	// The server's ledger counts what the direct wants brought, as it
	// does for the blocks boxo's sessions wanted (`ipfs bitswap ledger`).
	if r := fb.LedgerForPeer(ph.ID()); r == nil || r.Recv < uint64(4*64*1024) {
		t.Fatalf("ledger for the provider %+v: want at least the %d bytes of the leaves received", r, 4*64*1024)
	}
	if ps := px.Stats(); ps.Direct != st {
		t.Fatalf("prefetch stats carry direct %+v, want %+v", ps.Direct, st)
	}
}

// A provider that sent the node but lacks some of its leaves answers their
// direct wants with DONT_HAVE; the walker then gets them through boxo's
// session from another peer.
func TestDirectWantsFallBackToBoxoOnDontHave(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	full, partial, other, fbs := newStore(), newStore(), newStore(), newStore()
	root, leaves := fileDag(t, full, 2, 32, "partial")
	// partial has everything but the first node's last 8 leaves; other
	// has only those.
	ch, _ := full.AllKeysChan(ctx)
	missing := map[cid.Cid]bool{}
	for _, b := range leaves[0][24:] {
		missing[b.Cid()] = true
		copyBlock(t, full, other, b.Cid())
	}
	for k := range ch {
		if !missing[k] {
			copyBlock(t, full, partial, k)
		}
	}
	ph := providerNode(t, ctx, partial)
	oh := providerNode(t, ctx, other)
	fh, fb, d := fetcherNode(t, ctx, fbs)
	connectHosts(t, fh, ph, oh)
	px := NewPrefetchExchange(fb, fbs, 64, d).(*PrefetchExchange)

	// One block at a time, as `dag export` walks: the caller's first leaf
	// of a node releases the node's other leaves to the prefetcher, which
	// asks the node's sender for them directly.
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	if err := walkInOrder(fctx, blockservice.NewSession(fctx, blockservice.New(fbs, px)), root); err != nil {
		t.Fatal(err)
	}
	if n := countBlocks(t, fbs); n != 1+2+2*32 {
		t.Fatalf("fetcher holds %d blocks, want %d", n, 1+2+2*32)
	}
	if st := d.Stats(); st.DontHaves != 8 || st.Blocks == 0 || st.Timeouts != 0 {
		t.Fatalf("direct stats %+v: want 8 DONT_HAVEs for the missing leaves and blocks for the rest", st)
	}
}

// silentPeer records the Bitswap messages it gets and answers none.
type silentPeer struct {
	mu   sync.Mutex
	msgs []bsmsg.BitSwapMessage
}

func (s *silentPeer) ReceiveMessage(_ context.Context, _ peer.ID, m bsmsg.BitSwapMessage) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
}
func (*silentPeer) ReceiveError(error)       {}
func (*silentPeer) PeerConnected(peer.ID)    {}
func (*silentPeer) PeerDisconnected(peer.ID) {}

// entries returns, over all messages so far, the CIDs wanted as blocks
// and the CIDs cancelled.
func (s *silentPeer) entries() (wants, cancels map[cid.Cid]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wants, cancels = map[cid.Cid]bool{}, map[cid.Cid]bool{}
	for _, m := range s.msgs {
		for _, e := range m.Wantlist() {
			if e.Cancel {
				cancels[e.Cid] = true
			} else if e.WantType == 0 { // want-block
				wants[e.Cid] = true
			}
		}
	}
	return wants, cancels
}

func newSilentPeer(t *testing.T) (host.Host, *silentPeer) {
	h := newLoopbackHost(t)
	s := &silentPeer{}
	bsnet.NewFromIpfsHost(h).Start(s)
	return h, s
}

// fetcherBesideASilentPeer starts a fetcher node (see fetcherNode) over an
// empty store, connected to a silent peer.
func fetcherBesideASilentPeer(t *testing.T, ctx context.Context) (host.Host, *silentPeer, *bitswap.Bitswap, *DirectWants) {
	t.Helper()
	sh, silent := newSilentPeer(t)
	fh, fb, d := fetcherNode(t, ctx, newStore())
	connectHosts(t, fh, sh)
	return sh, silent, fb, d
}

func TestDirectWantsTimeOutAndCancelAtAPeerThatDoesNotAnswer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sh, silent, _, d := fetcherBesideASilentPeer(t, ctx)

	c := blocks.NewBlock([]byte("never answered")).Cid()
	ended := make(chan blocks.Block, 1)
	d.want([]*directWant{{c: c, p: sh.ID(), deliver: func(b blocks.Block) { ended <- b }}})
	if err := pollFor(10*time.Second, func() bool { w, _ := silent.entries(); return w[c] }); err != nil {
		t.Fatalf("the want-block never reached the peer: %v", err)
	}
	select {
	case <-ended:
		t.Fatal("the want ended before its timeout")
	default:
	}
	if w := d.Stats().Waiting; w != 1 {
		t.Fatalf("%d wants out, want 1", w)
	}
	d.expireAt(time.Now().Add(DirectTimeout))
	select {
	case b := <-ended:
		if b != nil {
			t.Fatal("a timed-out want delivered a block")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the timed-out want never ended")
	}
	if err := pollFor(10*time.Second, func() bool { _, cs := silent.entries(); return cs[c] }); err != nil {
		t.Fatalf("the timed-out want was not cancelled at the peer: %v", err)
	}
	if st := d.Stats(); st.Timeouts != 1 || st.Sent != 1 || st.Blocks != 0 || st.Waiting != 0 {
		t.Fatalf("direct stats %+v: want one sent, one timed out", st)
	}
	// A late answer finds nothing waiting.
	d.MessageReceived(sh.ID(), blockMsg(blocks.NewBlock([]byte("never answered"))))
	if st := d.Stats(); st.Blocks != 0 {
		t.Fatalf("a block after the timeout was counted: %+v", st)
	}
}

func blockMsg(b blocks.Block) bsmsg.BitSwapMessage {
	m := bsmsg.New(false)
	m.AddBlock(b)
	return m
}

// When the prefetch session ends, its direct wants still out are cancelled
// at the peer, and nothing is delivered for them.
func TestDirectWantsOfAnEndedSessionAreCancelledAtThePeer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sh, silent, fb, d := fetcherBesideASilentPeer(t, ctx)
	px := NewPrefetchExchange(fb, newStore(), 64, d).(*PrefetchExchange)

	sctx, scancel := context.WithCancel(ctx)
	s := px.NewSession(sctx).(*prefetchSession)
	var cs []cid.Cid
	var ws []*directWant
	for i := 0; i < 5; i++ {
		c := blocks.NewBlock([]byte(fmt.Sprint("out when the session ends ", i))).Cid()
		cs = append(cs, c)
		ws = append(ws, &directWant{c: c, p: sh.ID(), owner: s, deliver: func(blocks.Block) { t.Error("a want of the ended session was delivered") }})
	}
	d.want(ws)
	if err := pollFor(10*time.Second, func() bool { w, _ := silent.entries(); return len(w) == 5 }); err != nil {
		t.Fatal(err)
	}
	scancel()
	if err := pollFor(10*time.Second, func() bool {
		_, cancels := silent.entries()
		for _, c := range cs {
			if !cancels[c] {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("the ended session's wants were not cancelled: %v", err)
	}
	d.mu.Lock()
	left := len(d.waiting)
	d.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d wants still waiting after their session ended", left)
	}
}

// A want whose message cannot be sent (no connection and no address for
// the peer) ends without a block at once, counted as not sent.
func TestDirectWantsToAnUnreachablePeerEndAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, d := fetcherNode(t, ctx, newStore())
	gone := newLoopbackHost(t)
	id := gone.ID()
	gone.Close()
	ended := make(chan blocks.Block, 1)
	d.want([]*directWant{{c: blocks.NewBlock([]byte("x")).Cid(), p: id, deliver: func(b blocks.Block) { ended <- b }}})
	select {
	case b := <-ended:
		if b != nil {
			t.Fatal("delivered a block")
		}
	case <-time.After(2 * DirectTimeout):
		t.Fatal("the want to an unreachable peer never ended")
	}
	if st := d.Stats(); st.Failed != 1 || st.Sent != 0 {
		t.Fatalf("direct stats %+v: want one not sent", st)
	}
}

var _ iface.Receiver = (*silentPeer)(nil)

// A want answered with a DONT_HAVE, or with its block by another peer, is
// cancelled at the peer asked, whose ledger would otherwise keep it.
func TestDirectWantsAnsweredOtherwiseAreCancelledAtThePeerAsked(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sh, silent, _, d := fetcherBesideASilentPeer(t, ctx)

	dont := blocks.NewBlock([]byte("the peer has not got it")).Cid()
	other := blocks.NewBlock([]byte("another peer sends it"))
	got := make(chan blocks.Block, 2)
	deliver := func(b blocks.Block) { got <- b }
	d.want([]*directWant{{c: dont, p: sh.ID(), deliver: deliver}, {c: other.Cid(), p: sh.ID(), deliver: deliver}})
	if err := pollFor(10*time.Second, func() bool { w, _ := silent.entries(); return w[dont] && w[other.Cid()] }); err != nil {
		t.Fatal(err)
	}
	m := bsmsg.New(false)
	m.AddDontHave(dont)
	d.MessageReceived(sh.ID(), m)
	d.MessageReceived(peer.ID("someone else"), blockMsg(other))
	for i := 0; i < 2; i++ {
		select {
		case b := <-got:
			if b != nil && !b.Cid().Equals(other.Cid()) {
				t.Fatalf("delivered %s", b.Cid())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a want never ended")
		}
	}
	if err := pollFor(10*time.Second, func() bool { _, cs := silent.entries(); return cs[dont] && cs[other.Cid()] }); err != nil {
		t.Fatalf("not cancelled at the peer asked: %v", err)
	}
	if st := d.Stats(); st.DontHaves != 1 || st.Blocks != 1 {
		t.Fatalf("direct stats %+v: want one DONT_HAVE and one block", st)
	}
}

// The prefetcher's and the direct wants' counters reach Prometheus, and a
// node without a prefetcher reports none of them.
func TestPrefetchCollectorReportsTheDirectWants(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var on bool
	st := PrefetchStats{Requested: 10, Served: 7, Stored: 6, MaxBytes: PrefetchTotalBytes,
		Direct: DirectStats{Sent: 9, Messages: 2, Blocks: 8, DontHaves: 1, Redirected: 3, Spilled: 5}}
	if err := reg.Register(NewPrefetchCollector(func() (PrefetchStats, bool) { return st, on })); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("without a prefetcher: %d metrics, %v", n, err)
	}
	on = true
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	exp := `
# HELP highload_bitswap_direct_wants_total Want-blocks sent straight to a peer past boxo's session (prefetch wants, a reader's own runs, the first HAVE's want-block), by result: sent, block, dont_have, timeout, not_sent; redirected (sent to another peer than the parent's sender, whose window was full or who was much slower) and spilled (not sent: no peer had room, boxo's session asked instead).
# TYPE highload_bitswap_direct_wants_total counter
highload_bitswap_direct_wants_total{result="block"} 8
highload_bitswap_direct_wants_total{result="dont_have"} 1
highload_bitswap_direct_wants_total{result="not_sent"} 0
highload_bitswap_direct_wants_total{result="redirected"} 3
highload_bitswap_direct_wants_total{result="sent"} 9
highload_bitswap_direct_wants_total{result="spilled"} 5
highload_bitswap_direct_wants_total{result="timeout"} 0
# HELP highload_bitswap_direct_messages_total Messages that carried the direct wants and their cancels.
# TYPE highload_bitswap_direct_messages_total counter
highload_bitswap_direct_messages_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "highload_bitswap_direct_wants_total", "highload_bitswap_direct_messages_total"); err != nil {
		t.Fatal(err)
	}
}
