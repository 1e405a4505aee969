package exchange

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	cid "github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// wantRecorder is a Bitswap server tracer that records the kinds of
// wants each CID was asked with.
type wantRecorder struct {
	mu    sync.Mutex
	haves map[cid.Cid]int
	wants map[cid.Cid]int // want-blocks
}

func (r *wantRecorder) MessageReceived(_ peer.ID, m bsmsg.BitSwapMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range m.Wantlist() {
		if e.Cancel {
			continue
		}
		if e.WantType == pb.Message_Wantlist_Have {
			r.haves[e.Cid]++
		} else {
			r.wants[e.Cid]++
		}
	}
}

func (*wantRecorder) MessageSent(peer.ID, bsmsg.BitSwapMessage) {}

// asked returns how often c was asked for with a want-have and with a
// want-block.
func (r *wantRecorder) asked(c cid.Cid) (haves, wants int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.haves[c], r.wants[c]
}

// recordingProvider runs a stock boxo Bitswap serving bs whose server
// records the wants it gets.
func recordingProvider(t *testing.T, ctx context.Context, bs blockstore.Blockstore) (host.Host, *wantRecorder) {
	t.Helper()
	h := newLoopbackHost(t)
	r := &wantRecorder{haves: map[cid.Cid]int{}, wants: map[cid.Cid]int{}}
	b := bitswap.New(ctx, bsnet.NewFromIpfsHost(h), nil, bs, bitswap.WithServerOption(server.WithTracer(r)))
	t.Cleanup(func() { b.Close() })
	return h, r
}

// linksOf returns the links of the dag-pb node c in bs.
func linksOf(t *testing.T, bs blockstore.Blockstore, c cid.Cid) []cid.Cid {
	t.Helper()
	b, err := bs.Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := merkledag.DecodeProtobuf(b.RawData())
	if err != nil {
		t.Fatal(err)
	}
	var out []cid.Cid
	for _, l := range nd.Links() {
		out = append(out, l.Cid)
	}
	return out
}

// smallRoot stores a node of 100 raw leaves of 1 KiB (all small links)
// and returns it.
func smallRoot(t *testing.T, bs blockstore.Blockstore, tag string) cid.Cid {
	t.Helper()
	top, _ := fileDag(t, bs, 1, 100, tag) // its root links the one node
	return linksOf(t, bs, top)[0]
}

// copyBlock puts c, from one store, in another.
func copyBlock(t *testing.T, from, to blockstore.Blockstore, c cid.Cid) {
	t.Helper()
	b, err := from.Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := to.Put(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// resolveThenWalk does what `ipfs pin add` does: it fetches root outside
// any session (Kubo resolves the path first), then walks the DAG from it
// in a session of its own (merkledag.FetchGraph, 32 walkers).
func resolveThenWalk(t *testing.T, ctx context.Context, fbs blockstore.Blockstore, px *PrefetchExchange, root cid.Cid) {
	t.Helper()
	bserv := blockservice.New(fbs, px)
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := bserv.GetBlock(fctx, root); err != nil {
		t.Fatal(err)
	}
	if err := merkledag.FetchGraph(fctx, root, merkledag.NewDAGService(bserv)); err != nil {
		t.Fatal(err)
	}
}

// The walk's session reads the root from the blockstore, so it never saw
// it; without adopting it, the root's links went to boxo's session, which
// knew no peer and broadcast want-haves first.
func TestPrefetchAdoptsTheRootResolvedBeforeTheWalk(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(blockstore.Blockstore) (cid.Cid, []cid.Cid)
		total int
		large bool
	}{
		{"large links (inner nodes)", func(bs blockstore.Blockstore) (cid.Cid, []cid.Cid) {
			// Each node's Tsize (64 leaves of 1 KiB) is over
			// PrefetchMaxBlock: the caller's own wants.
			root, _ := fileDag(t, bs, 4, 64, "adopt-large")
			return root, linksOf(t, bs, root)
		}, 1 + 4 + 4*64, true},
		{"small links (leaves)", func(bs blockstore.Blockstore) (cid.Cid, []cid.Cid) {
			root := smallRoot(t, bs, "adopt-small")
			return root, linksOf(t, bs, root)
		}, 1 + 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pbs, fbs := newStore(), newStore()
			root, first := tc.build(pbs)
			ph, rec := recordingProvider(t, ctx, pbs)
			fh, fb, d := fetcherNode(t, ctx, fbs)
			connectHosts(t, fh, ph)
			px := NewPrefetchExchange(fb, fbs, 256, d).(*PrefetchExchange)

			resolveThenWalk(t, ctx, fbs, px, root)
			if n := countBlocks(t, fbs); n != tc.total {
				t.Fatalf("fetcher holds %d blocks, want %d", n, tc.total)
			}
			for _, c := range first {
				haves, wants := rec.asked(c)
				// A large link stays the walker's own want on boxo's
				// session, which broadcasts a want-have (it has seen
				// no block yet).
				if tc.large && (haves != 1 || wants < 1) {
					t.Fatalf("the root's large link %s was asked for with %d want-haves and %d want-blocks; want boxo's want-have and a want-block", c, haves, wants)
				}
				if !tc.large && (haves != 0 || wants != 1) {
					t.Fatalf("the root's small link %s was asked for with %d want-haves and %d want-blocks; want one want-block and no want-have", c, haves, wants)
				}
			}
			if st := d.Stats(); st.Sent < uint64(len(first)) || st.Blocks < uint64(len(first)) || st.DontHaves != 0 || st.Timeouts != 0 {
				t.Fatalf("direct stats %+v: want at least the root's %d links asked for and answered directly", st, len(first))
			}
		})
	}
}

// rootOnlyPeer is a fetcher connected to a provider that holds only the
// root of a DAG (4 nodes of 64 leaves, or with small a node of 100
// leaves); full holds the whole DAG, for a second provider.
type rootOnlyPeer struct {
	full, fbs blockstore.Blockstore
	root      cid.Cid
	fh        host.Host
	d         *DirectWants
	bserv     blockservice.BlockService
}

func newRootOnlyPeer(t *testing.T, ctx context.Context, tag string, small bool) rootOnlyPeer {
	t.Helper()
	full, rootOnly, fbs := newStore(), newStore(), newStore()
	root, _ := fileDag(t, full, 4, 64, tag)
	if small {
		root = smallRoot(t, full, tag)
	}
	copyBlock(t, full, rootOnly, root)
	ah := providerNode(t, ctx, rootOnly)
	fh, fb, d := fetcherNode(t, ctx, fbs)
	connectHosts(t, fh, ah)
	px := NewPrefetchExchange(fb, fbs, 256, d).(*PrefetchExchange)
	return rootOnlyPeer{full: full, fbs: fbs, root: root, fh: fh, d: d, bserv: blockservice.New(fbs, px)}
}

// connectFull connects the fetcher to a second provider holding the
// whole DAG.
func (r rootOnlyPeer) connectFull(t *testing.T, ctx context.Context) {
	t.Helper()
	connectHosts(t, r.fh, providerNode(t, ctx, r.full))
}

// A peer that sent the root but lacks the rest answers the adopted wants
// with DONT_HAVE; the walk then gets everything through boxo's session
// from another provider.
func TestAdoptedWantsFallBackToBoxoOnDontHave(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRootOnlyPeer(t, ctx, "adopt-fallback", true)
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	if _, err := r.bserv.GetBlock(fctx, r.root); err != nil {
		t.Fatal(err)
	}
	// The second provider comes only now, so the root came from the first.
	r.connectFull(t, ctx)
	if err := merkledag.FetchGraph(fctx, r.root, merkledag.NewDAGService(r.bserv)); err != nil {
		t.Fatal(err)
	}
	if n := countBlocks(t, r.fbs); n != 1+100 {
		t.Fatalf("fetcher holds %d blocks, want %d", n, 1+100)
	}
	if st := r.d.Stats(); st.DontHaves < 100 || st.Timeouts != 0 || st.Failed != 0 {
		t.Fatalf("direct stats %+v: want a DONT_HAVE for each of the root's 100 links, no timeout", st)
	}
}

// A fetch outside any session, which boxo's client starts with a
// want-have broadcast, asks the first peer that answers HAVE for the
// block directly, without waiting for boxo's next
// message round; the block still comes through boxo's client, counted
// once.
func TestTheFirstHaveForAFreshWantStartsADirectWantBlock(t *testing.T) {
	for _, tc := range []struct {
		name string
		get  func(context.Context, blockservice.BlockService, cid.Cid) error
	}{
		{"outside any session", func(ctx context.Context, bs blockservice.BlockService, c cid.Cid) error {
			_, err := bs.GetBlock(ctx, c)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pbs, fbs := newStore(), newStore()
			// 40 links make the root over 1 KiB, which boxo's server
			// sends in answer to a want-have itself
			// (WantHaveReplaceSize).
			root, _ := fileDag(t, pbs, 40, 1, "have-"+tc.name)
			rb, err := pbs.Get(ctx, root)
			if err != nil {
				t.Fatal(err)
			}
			ph, rec := recordingProvider(t, ctx, pbs)
			fh, fb, d := fetcherNode(t, ctx, fbs)
			connectHosts(t, fh, ph)
			px := NewPrefetchExchange(fb, fbs, 256, d).(*PrefetchExchange)
			fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
			defer fcancel()
			if err := tc.get(fctx, blockservice.New(fbs, px), root); err != nil {
				t.Fatal(err)
			}
			if st := d.Stats(); st.Sent != 1 || st.Blocks != 1 || st.DontHaves != 0 {
				t.Fatalf("direct stats %+v: want the root asked for directly once and answered with its block", st)
			}
			if haves, wants := rec.asked(root); haves != 1 || wants < 1 {
				t.Fatalf("the provider got %d want-haves and %d want-blocks for the root; want boxo's want-have and a want-block", haves, wants)
			}
			bst, err := fb.Stat()
			if err != nil {
				t.Fatal(err)
			}
			// boxo's client counts the block. (A second copy is possible
			// on a loaded machine: boxo's own want-block goes out if the
			// direct one's block takes over 20 ms.)
			if bst.BlocksReceived < 1 {
				t.Fatalf("bitswap stat: %d blocks received; want the root counted", bst.BlocksReceived)
			}
			// boxo's client tells the server of the block (its session
			// wanted it; a later copy it does not); DirectWants must not
			// tell it a second time.
			if r := fb.LedgerForPeer(ph.ID()); r == nil || r.Recv != uint64(len(rb.RawData())) {
				t.Fatalf("ledger for the provider %+v: want the root's %d bytes received, counted once", r, len(rb.RawData()))
			}
		})
	}
}

// readRun asks a session for cs in one run, as a reader does (boxo's DAG
// reader asks for up to 10 children at a time), and returns the blocks.
func readRun(t *testing.T, ctx context.Context, ses *blockservice.Session, cs []cid.Cid) {
	t.Helper()
	got := map[cid.Cid]bool{}
	for b := range ses.GetBlocks(ctx, cs) {
		got[b.Cid()] = true
	}
	if len(got) != len(cs) {
		t.Fatalf("got %d of the run's %d blocks", len(got), len(cs))
	}
}

// A reader's run of large links (inner nodes over a subtree, big leaves)
// goes directly to the peer that sent their parent, past boxo's 20 ms
// rounds; the blocks are counted once by the client and the ledger.
func TestAReadersRunOfLargeLinksGoesDirect(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pbs, fbs := newStore(), newStore()
	root, _ := fileDag(t, pbs, 4, 64, "run")
	links := linksOf(t, pbs, root)
	var size uint64
	for _, c := range append([]cid.Cid{root}, links...) {
		b, err := pbs.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		size += uint64(len(b.RawData()))
	}
	ph := providerNode(t, ctx, pbs)
	fh, fb, d := fetcherNode(t, ctx, fbs)
	connectHosts(t, fh, ph)
	px := NewPrefetchExchange(fb, fbs, 256, d).(*PrefetchExchange)
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	ses := blockservice.NewSession(fctx, blockservice.New(fbs, px))
	if _, err := ses.GetBlock(fctx, root); err != nil {
		t.Fatal(err)
	}
	readRun(t, fctx, ses, links)
	// The root (under 1 KiB) came with boxo's want-have; the run is 4
	// direct wants.
	if st := d.Stats(); st.Sent != 4 || st.Blocks != 4 || st.DontHaves != 0 {
		t.Fatalf("direct stats %+v: want the run's 4 links asked for directly and answered", st)
	}
	bst, err := fb.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if bst.BlocksReceived != 1+4 || bst.DupBlksReceived != 0 {
		t.Fatalf("bitswap stat: %d blocks received, %d duplicates; want 5 and 0", bst.BlocksReceived, bst.DupBlksReceived)
	}
	if r := fb.LedgerForPeer(ph.ID()); r == nil || r.Recv != size {
		t.Fatalf("ledger for the provider %+v: want %d bytes received", r, size)
	}
}

// A run asked of a peer that lacks it comes through boxo's session from
// another provider.
func TestAReadersDirectRunFallsBackToBoxoOnDontHave(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRootOnlyPeer(t, ctx, "run-fallback", false)
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	ses := blockservice.NewSession(fctx, r.bserv)
	if _, err := ses.GetBlock(fctx, r.root); err != nil {
		t.Fatal(err)
	}
	r.connectFull(t, ctx)
	readRun(t, fctx, ses, linksOf(t, r.full, r.root))
	if st := r.d.Stats(); st.DontHaves != 4 || st.Timeouts != 0 || st.Failed != 0 {
		t.Fatalf("direct stats %+v: want a DONT_HAVE for each of the run's 4 links, no timeout", st)
	}
}
