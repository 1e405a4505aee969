package exchange

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	bsexchange "github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	format "github.com/ipfs/go-ipld-format"
	multihash "github.com/multiformats/go-multihash"
)

// memExchange serves blocks from a map and counts the wants it gets.
type memExchange struct {
	mu     sync.Mutex
	blocks map[cid.Cid]blocks.Block
	wants  map[cid.Cid]int
	// notified counts blocks announced through NotifyNewBlocks.
	notified int
	// order lists the CIDs asked for, in order.
	order []cid.Cid
}

func (m *memExchange) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wants[c]++
	m.order = append(m.order, c)
	b, ok := m.blocks[c]
	if !ok {
		return nil, fmt.Errorf("no %s", c)
	}
	return b, nil
}

func (m *memExchange) GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error) {
	out := make(chan blocks.Block, len(cs))
	for _, c := range cs {
		if b, err := m.GetBlock(ctx, c); err == nil {
			out <- b
		}
	}
	close(out)
	return out, nil
}

func (m *memExchange) NotifyNewBlocks(_ context.Context, bs ...blocks.Block) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notified += len(bs)
	return nil
}
func (m *memExchange) Close() error                                  { return nil }
func (m *memExchange) NewSession(context.Context) bsexchange.Fetcher { return m }

// tree builds a dag-pb tree of the given fan-out and depth; it returns the root.
func tree(m *memExchange, fanout, depth int, tag string) cid.Cid {
	if depth == 0 {
		b := blocks.NewBlock([]byte(tag))
		m.blocks[b.Cid()] = b
		return b.Cid()
	}
	nd := merkledag.NodeWithData([]byte(tag))
	for i := 0; i < fanout; i++ {
		c := tree(m, fanout, depth-1, fmt.Sprintf("%s/%d", tag, i))
		if err := nd.AddRawLink(fmt.Sprint(i), &format.Link{Cid: c}); err != nil {
			panic(err)
		}
	}
	m.blocks[nd.Cid()] = nd
	return nd.Cid()
}

// walk fetches root's DAG through f the way a walker does: one GetBlock
// per node, breadth first, decoding dag-pb links. after, if given, runs
// after each block with the count so far.
func walk(t *testing.T, ctx context.Context, f bsexchange.Fetcher, root cid.Cid, after ...func(n int)) int {
	t.Helper()
	n := 0
	queue := []cid.Cid{root}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		b, err := f.GetBlock(ctx, c)
		if err != nil {
			t.Fatalf("GetBlock %s: %v", c, err)
		}
		if !b.Cid().Equals(c) {
			t.Fatalf("asked %s, got %s", c, b.Cid())
		}
		n++
		for _, fn := range after {
			fn(n)
		}
		if c.Type() == cid.DagProtobuf {
			nd, err := merkledag.DecodeProtobuf(b.RawData())
			if err != nil {
				continue // a leaf made by blocks.NewBlock (CIDv0, raw bytes)
			}
			for _, l := range nd.Links() {
				queue = append(queue, l.Cid)
			}
		}
	}
	return n
}

// pollFor checks cond every 5 ms until it holds or d has passed.
func pollFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met within %s", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// twoLevels builds a tree of fan-out 8 and depth 2 (1 + 8 + 64 blocks) in
// a fresh in-memory exchange and wraps it for prefetching, width 128, over
// an empty blockstore.
func twoLevels(tag string) (*memExchange, cid.Cid, *PrefetchExchange) {
	m := newMem()
	root := tree(m, 8, 2, tag)
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	return m, root, NewPrefetchExchange(m, bs, 128, nil).(*PrefetchExchange)
}

func newMem() *memExchange {
	return &memExchange{blocks: map[cid.Cid]blocks.Block{}, wants: map[cid.Cid]int{}}
}

func TestPrefetchServesTheWalkerEachBlockOnce(t *testing.T) {
	m := newMem()
	root := tree(m, 8, 3, "r") // 1 + 8 + 64 + 512 blocks
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	px := NewPrefetchExchange(m, bs, 64, nil).(*PrefetchExchange)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The in-memory exchange answers at once, so a walker could outrun the
	// prefetcher's goroutine on a loaded machine: let the prefetcher ask
	// for the root's other links (released when the walker asks for the
	// first) before the walk goes on.
	waitPrefetch := func(n int) {
		deadline := time.Now().Add(10 * time.Second)
		for n == 2 && px.Stats().Requested == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	if got := walk(t, ctx, px.NewSession(ctx), root, waitPrefetch); got != len(m.blocks) {
		t.Fatalf("walked %d blocks, the DAG has %d", got, len(m.blocks))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for c, n := range m.wants {
		if n != 1 {
			t.Fatalf("%s wanted %d times: fetched twice", c, n)
		}
	}
	if len(m.wants) != len(m.blocks) {
		t.Fatalf("%d blocks wanted, the DAG has %d", len(m.wants), len(m.blocks))
	}
	s := px.Stats()
	if s.Served == 0 || s.Served+1 > uint64(len(m.blocks)) || s.Failed != 0 {
		t.Fatalf("stats %+v: want most blocks served from prefetch, none failed", s)
	}
	// The prefetcher stores nothing: blockservice stores what the walker gets.
	if has, _ := bs.Has(ctx, root); has {
		t.Fatal("the prefetcher wrote to the blockstore")
	}
	if NewPrefetchExchange(m, bs, 0, nil) != bsexchange.SessionExchange(m) {
		t.Fatal("width 0 must return the exchange unchanged")
	}
}

func TestPrefetchSkipsStoredBlocksAndSurvivesMissingOnes(t *testing.T) {
	m := newMem()
	root := tree(m, 4, 2, "s") // 1 + 4 + 16
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// One subtree is stored already; one leaf exists nowhere.
	nd, _ := merkledag.DecodeProtobuf(m.blocks[root].RawData())
	stored := nd.Links()[0].Cid
	if err := bs.Put(ctx, m.blocks[stored]); err != nil {
		t.Fatal(err)
	}
	sub, _ := merkledag.DecodeProtobuf(m.blocks[nd.Links()[1].Cid].RawData())
	missing := sub.Links()[0].Cid
	delete(m.blocks, missing)

	px := NewPrefetchExchange(m, bs, 8, nil).(*PrefetchExchange)
	sess := px.NewSession(ctx)
	if _, err := sess.GetBlock(ctx, root); err != nil {
		t.Fatal(err)
	}
	// The caller descends into the last child (its siblings, the stored
	// one among them, are released to the prefetcher) and into a sibling
	// of the missing leaf (releasing it).
	for _, c := range []cid.Cid{nd.Links()[3].Cid, nd.Links()[1].Cid, sub.Links()[1].Cid} {
		if _, err := sess.GetBlock(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// The missing leaf: its prefetch fails, and the caller's own fetch
	// then reports the exchange's error instead of hanging.
	if err := pollFor(10*time.Second, func() bool { return px.Stats().Failed > 0 }); err != nil {
		t.Fatalf("the missing leaf's prefetch did not fail: %v", err)
	}
	gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
	defer gcancel()
	if _, err := sess.GetBlock(gctx, missing); err == nil || gctx.Err() != nil {
		t.Fatalf("missing block: err %v, ctx %v; want the exchange's error", err, gctx.Err())
	}
	m.mu.Lock()
	n := m.wants[stored]
	m.mu.Unlock()
	if n != 0 {
		t.Fatalf("a stored block was wanted %d times", n)
	}
}

func TestPrefetchDropsUnclaimedBlocksWhenTheSessionEnds(t *testing.T) {
	m, root, px := twoLevels("u")
	ctx, cancel := context.WithCancel(context.Background())
	sess := px.NewSession(ctx)
	if _, err := sess.GetBlock(ctx, root); err != nil {
		t.Fatal(err)
	}
	nd, _ := merkledag.DecodeProtobuf(m.blocks[root].RawData())
	if _, err := sess.GetBlock(ctx, nd.Links()[0].Cid); err != nil { // releases the 7 siblings
		t.Fatal(err)
	}
	if err := pollFor(10*time.Second, func() bool { return px.Stats().Requested == 7 }); err != nil {
		t.Fatalf("requested %d, want the 7 siblings", px.Stats().Requested)
	}
	cancel()
	if err := pollFor(10*time.Second, func() bool { return px.Stats().Unused > 0 }); err != nil {
		t.Fatal(err)
	}
	if s := px.Stats(); s.Requested != 7 || s.Unused == 0 || s.Served != 0 {
		t.Fatalf("stats %+v: want the 7 siblings requested, some unused, none served", s)
	}
	// What the ended session held goes back to the node's total.
	if err := pollFor(10*time.Second, func() bool { return px.bytes.Load() == 0 }); err != nil {
		t.Fatalf("%d bytes still counted for the node after its only session ended", px.bytes.Load())
	}
}

func TestPrefetchTotalBoundsAllSessions(t *testing.T) {
	px := &PrefetchExchange{width: 1024}
	mk := func() *prefetchSession {
		return &prefetchSession{p: px, seen: map[cid.Cid]bool{}, ahead: map[cid.Cid]*ahead{},
			signal: make(chan struct{}, 1), room: make(chan struct{}, 1)}
	}
	nd := merkledag.NodeWithData(nil)
	for i := range 64 {
		b := blocks.NewBlock(fmt.Appendf(nil, "leaf %d", i))
		if err := nd.AddRawLink(fmt.Sprint(i), &format.Link{Cid: b.Cid(), Size: 16 << 10}); err != nil {
			t.Fatal(err)
		}
	}
	// Other sessions hold all but 10 blocks' worth of the node's total.
	px.bytes.Store(PrefetchTotalBytes - 10*16<<10)
	s := mk()
	s.got = 1024 // past the slow start
	s.links(nd)
	s.claim(nd.Links()[0].Cid) // the caller descends: the other 63 are queued
	batch := s.take()
	if len(batch) != 10 {
		t.Fatalf("%d wants went out with room for 10 under the node's total, want 10", len(batch))
	}
	if got := s.take(); len(got) != 0 {
		t.Fatalf("%d more wants went out past the node's total", len(got))
	}
	// An arrival moves its bytes from in flight to held: still no room.
	s.arrive(batch[0], blocks.NewBlock(make([]byte, 16<<10)), false)
	if got := s.take(); len(got) != 0 {
		t.Fatalf("%d wants went out while the block is held", len(got))
	}
	// The caller claims it: room for one more.
	if s.claim(batch[0].c) == nil {
		t.Fatal("claim of an arrived entry: nil")
	}
	if got := s.take(); len(got) != 1 {
		t.Fatalf("after one claim %d more wants, want 1", len(got))
	}
}

func TestPrefetchBudgetBoundsBytesAhead(t *testing.T) {
	s := &prefetchSession{p: &PrefetchExchange{width: 4096}, got: 4096}
	if got := s.budgetLocked(); got != PrefetchBytes/(16<<10) {
		t.Fatalf("no blocks seen: budget %d, want %d at the 16 KiB guess", got, PrefetchBytes/(16<<10))
	}
	s.nBlocks, s.nBytes = 10, 10*256<<10
	if got := s.budgetLocked(); got != PrefetchBytes/(256<<10) {
		t.Fatalf("256 KiB blocks: budget %d, want %d", got, PrefetchBytes/(256<<10))
	}
	s.cached = PrefetchBytes
	if got := s.budgetLocked(); got != 0 {
		t.Fatalf("budget full of unclaimed blocks: %d, want 0", got)
	}
	s = &prefetchSession{p: &PrefetchExchange{width: 8}, live: 8, flight: 8, got: 8}
	if got := s.budgetLocked(); got != 0 {
		t.Fatalf("width used up: budget %d, want 0", got)
	}
	// Blocks held for the caller count against the bytes, not the width.
	s = &prefetchSession{p: &PrefetchExchange{width: 8}, live: 8, flight: 0, cached: 8 * 16 << 10, got: 8}
	if got := s.budgetLocked(); got != 8 {
		t.Fatalf("8 blocks held, none in flight: budget %d, want the whole width 8", got)
	}
	// Slow start: the width grows by one per block through the session.
	s = &prefetchSession{p: &PrefetchExchange{width: 256}}
	if got := s.budgetLocked(); got != prefetchStartWidth {
		t.Fatalf("new session: budget %d, want the start width %d", got, prefetchStartWidth)
	}
	s.got = 100
	if got := s.budgetLocked(); got != prefetchStartWidth+100 {
		t.Fatalf("after 100 blocks: budget %d, want %d", got, prefetchStartWidth+100)
	}
	s.got = 1000
	if got := s.budgetLocked(); got != 256 {
		t.Fatalf("after 1000 blocks: budget %d, want the width 256", got)
	}
	// Raw leaves count too, not only the dag-pb nodes: a file of small raw
	// leaves has few inner nodes, and counting only those held its walk
	// at 32 + that few wants.
	s = &prefetchSession{p: &PrefetchExchange{width: 256}}
	for i := range 100 {
		raw, err := cid.V1Builder{Codec: cid.Raw, MhType: multihash.SHA2_256}.Sum([]byte(fmt.Sprint("leaf ", i)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := blocks.NewBlockWithCid([]byte(fmt.Sprint("leaf ", i)), raw)
		if err != nil {
			t.Fatal(err)
		}
		s.links(b)
	}
	if got := s.budgetLocked(); got != prefetchStartWidth+100 {
		t.Fatalf("after 100 raw leaves: budget %d, want %d", got, prefetchStartWidth+100)
	}
}

func TestPrefetchWidthCountsTheCallersOwnWants(t *testing.T) {
	s := &prefetchSession{p: &PrefetchExchange{width: 8}, live: 2, flight: 2, own: 3}
	if got := s.budgetLocked(); got != 3 {
		t.Fatalf("width 8, 2 prefetch wants in flight, 3 of the caller's wants: budget %d, want 3", got)
	}
	s.own = 8
	if got := s.budgetLocked(); got != 0 {
		t.Fatalf("the caller's wants fill the width: budget %d, want 0", got)
	}

	// The caller's wants are counted while in flight and released when
	// they end, with a block or without one (a missing block).
	m := newMem()
	root := tree(m, 4, 1, "o") // root + 4 leaves
	nd, _ := merkledag.DecodeProtobuf(m.blocks[root].RawData())
	leaves := []cid.Cid{nd.Links()[0].Cid, nd.Links()[1].Cid}
	missing := blocks.NewBlock([]byte("nowhere")).Cid()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	px := NewPrefetchExchange(m, bs, 8, nil).(*PrefetchExchange)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := px.NewSession(ctx).(*prefetchSession)
	ch, err := sess.GetBlocks(ctx, append(leaves, missing))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range ch {
		n++
	}
	if n != len(leaves) {
		t.Fatalf("got %d blocks, want %d", n, len(leaves))
	}
	if _, err := sess.GetBlock(ctx, missing); err == nil {
		t.Fatal("GetBlock of a missing block: no error")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sess.mu.Lock()
		own := sess.own
		sess.mu.Unlock()
		if own == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the caller's wants still counted after they ended: %d", own)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A UnixFS DAG starts with small dag-pb nodes and ends in large leaves:
// the wants for the leaves must be counted at their links' sizes, not at
// the average of the small nodes seen before them.
func TestPrefetchCountsEachWantAtItsLinksSize(t *testing.T) {
	const leaf = 64 << 10
	nd := merkledag.NodeWithData(nil)
	for i := range 1024 {
		b := blocks.NewBlock(fmt.Appendf(nil, "leaf %d", i)) // stands in for a 64 KiB raw leaf
		if err := nd.AddRawLink(fmt.Sprint(i), &format.Link{Cid: b.Cid(), Size: leaf}); err != nil {
			t.Fatal(err)
		}
	}
	s := &prefetchSession{p: &PrefetchExchange{width: 1024}, own: 32, got: 1024,
		seen: map[cid.Cid]bool{}, ahead: map[cid.Cid]*ahead{}, signal: make(chan struct{}, 1)}
	// What arrived so far: the root and six nodes like nd, about 8 KiB.
	s.nBlocks, s.nBytes = 7, 7*8<<10
	s.links(nd)
	s.claim(nd.Links()[0].Cid) // the caller descends into nd
	batch := s.take()
	if want := PrefetchBytes / leaf; len(batch) != want {
		t.Fatalf("%d wants of %d KiB leaves in flight (%d MiB), want %d (PrefetchBytes %d MiB)",
			len(batch), leaf>>10, len(batch)*leaf>>20, want, PrefetchBytes>>20)
	}
	if s.flightBytes != PrefetchBytes {
		t.Fatalf("flightBytes %d, want %d", s.flightBytes, PrefetchBytes)
	}
	// As leaves arrive and the caller claims them, room frees up at the
	// leaves' size.
	for _, e := range batch[:4] {
		s.arrive(e, blocks.NewBlock(make([]byte, leaf)), false)
		if s.claim(e.c) == nil {
			t.Fatal("claim of an arrived entry: nil")
		}
	}
	if got := s.take(); len(got) != 4 {
		t.Fatalf("after 4 leaves were claimed: %d more wants, want 4", len(got))
	}
	// A dag-pb link's Tsize is its whole subtree: the guess is capped.
	if g := s.guessLocked(link{size: 44 << 20}); g != maxBlockGuess {
		t.Fatalf("guess for a 44 MiB subtree: %d, want %d", g, maxBlockGuess)
	}
	if g := s.guessLocked(link{}); g != s.avgLocked() {
		t.Fatalf("guess without a size: %d, want the average %d", g, s.avgLocked())
	}
}

func TestPrefetchLeavesLargeBlocksToTheCaller(t *testing.T) {
	nd := merkledag.NodeWithData(nil)
	sizes := map[string]uint64{
		"16 KiB leaf":                  16 << 10,
		"64 KiB chunk in dag-pb":       64<<10 + 14,
		"256 KiB leaf":                 256 << 10,
		"subtree of 174 16 KiB leaves": 174 * 16 << 10,
		"no size":                      0,
	}
	byCid := map[cid.Cid]string{}
	var trigger cid.Cid // a small link the caller asks for itself
	for name, size := range sizes {
		b := blocks.NewBlock([]byte(name))
		byCid[b.Cid()] = name
		if err := nd.AddRawLink(name, &format.Link{Cid: b.Cid(), Size: size}); err != nil {
			t.Fatal(err)
		}
	}
	extra := blocks.NewBlock([]byte("the caller's own"))
	trigger = extra.Cid()
	if err := nd.AddRawLink("own", &format.Link{Cid: trigger, Size: 1 << 10}); err != nil {
		t.Fatal(err)
	}
	newSession := func(avg int64) *prefetchSession {
		s := &prefetchSession{p: &PrefetchExchange{width: 1024},
			seen: map[cid.Cid]bool{}, ahead: map[cid.Cid]*ahead{}, signal: make(chan struct{}, 1)}
		s.nBlocks, s.nBytes = 4, 4*avg
		return s
	}
	queued := func(s *prefetchSession) map[string]bool {
		got := map[string]bool{}
		for _, l := range s.pending {
			got[byCid[l.c]] = true
		}
		return got
	}
	s := newSession(16 << 10)
	s.links(nd)
	if n := len(s.pending); n != 0 {
		t.Fatalf("%d links queued before the caller asked for any of the node's links, want 0", n)
	}
	s.claim(trigger)
	got := queued(s)
	for name, want := range map[string]bool{"16 KiB leaf": true, "64 KiB chunk in dag-pb": true,
		"256 KiB leaf": false, "subtree of 174 16 KiB leaves": false, "no size": true} {
		if got[name] != want {
			t.Errorf("average block 16 KiB: %s queued %v, want %v", name, got[name], want)
		}
	}
	if got[""] {
		t.Error("the link the caller asked for itself was queued too")
	}
	s = newSession(256 << 10)
	s.links(nd)
	s.claim(trigger)
	if queued(s)["no size"] {
		t.Error("average block 256 KiB: a link without a size was queued")
	}
	// A large link left to the caller is not marked seen, so the caller's
	// own GetBlock goes to the inner session as for any block.
	for c, name := range byCid {
		if _, ok := s.seen[c]; ok && sizes[name] > PrefetchMaxBlock {
			t.Errorf("%s: seen", name)
		}
	}
}

func TestPrefetchAsksForANodesLinksOnlyOnceTheCallerDescends(t *testing.T) {
	m, root, px := twoLevels("d")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := px.NewSession(ctx)
	// A listing: the caller reads the node and asks for none of its links.
	if _, err := sess.GetBlock(ctx, root); err != nil {
		t.Fatal(err)
	}
	sp := sess.(*prefetchSession)
	sp.mu.Lock()
	pending := len(sp.pending)
	sp.mu.Unlock()
	if r := px.Stats().Requested; r != 0 || pending != 0 {
		t.Fatalf("after reading only the root: %d requested, %d queued; want nothing asked ahead", r, pending)
	}
	// The caller descends into the first child: its 7 siblings are asked
	// for ahead, and nothing below them until the caller goes there.
	nd, _ := merkledag.DecodeProtobuf(m.blocks[root].RawData())
	if _, err := sess.GetBlock(ctx, nd.Links()[0].Cid); err != nil {
		t.Fatal(err)
	}
	if err := pollFor(10*time.Second, func() bool {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		return px.Stats().Requested == 7 && sp.flight == 0
	}); err != nil {
		t.Fatalf("siblings of the first child: requested %d, want 7, all arrived", px.Stats().Requested)
	}
	sp.mu.Lock()
	pending = len(sp.pending)
	sp.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d links of the prefetched siblings queued before the caller went there", pending)
	}
}

// leafParent adds a dag-pb node to m whose n links name 256 KiB leaves
// (above PrefetchMaxBlock); it returns the node and its leaves in order.
// The links are unnamed, as in UnixFS files (dag-pb sorts links by name).
func leafParent(m *memExchange, n int) (cid.Cid, []cid.Cid) {
	nd := merkledag.NodeWithData(nil)
	var leaves []cid.Cid
	for i := 0; i < n; i++ {
		b := blocks.NewBlock([]byte(fmt.Sprint("leaf ", i)))
		m.blocks[b.Cid()] = b
		leaves = append(leaves, b.Cid())
		if err := nd.AddRawLink("", &format.Link{Cid: b.Cid(), Size: 256 << 10}); err != nil {
			panic(err)
		}
	}
	m.blocks[nd.Cid()] = nd
	return nd.Cid(), leaves
}

func (m *memExchange) wanted(c cid.Cid) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.wants[c]
}

// getRun asks f for cs with one GetBlocks, as the DAG reader does, and
// checks that each arrives.
func getRun(t *testing.T, ctx context.Context, f bsexchange.Fetcher, cs []cid.Cid) {
	t.Helper()
	ch, err := f.GetBlocks(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	got := map[cid.Cid]bool{}
	for b := range ch {
		got[b.Cid()] = true
	}
	for _, c := range cs {
		if !got[c] {
			t.Fatalf("GetBlocks did not deliver %s", c)
		}
	}
}

// largeSiblings makes a parent of 30 large leaves in a fresh in-memory
// exchange, wraps it for prefetching (width 256, empty blockstore), opens a
// session on ctx and fetches the parent through it.
func largeSiblings(t *testing.T, ctx context.Context, n int) (*memExchange, []cid.Cid, *PrefetchExchange, bsexchange.Fetcher) {
	t.Helper()
	m := newMem()
	parent, leaves := leafParent(m, n)
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	px := NewPrefetchExchange(m, bs, 256, nil).(*PrefetchExchange)
	f := px.NewSession(ctx)
	if _, err := f.GetBlock(ctx, parent); err != nil {
		t.Fatal(err)
	}
	return m, leaves, px, f
}

func TestPrefetchReadsAheadOfRunsOfLargeSiblings(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, leaves, _, f := largeSiblings(t, ctx, 45)
	asked := func(cs []cid.Cid) bool {
		for _, c := range cs {
			if m.wanted(c) == 0 {
				return false
			}
		}
		return true
	}
	waitAsked := func(cs []cid.Cid) {
		t.Helper()
		if pollFor(time.Second, func() bool { return asked(cs) }) != nil {
			t.Fatalf("the %d siblings after the caller's run were not asked for ahead", len(cs))
		}
	}
	notAsked := func(cs []cid.Cid) {
		t.Helper()
		for _, c := range cs {
			if m.wanted(c) != 0 {
				t.Fatalf("read ahead past the next %d runs (%s)", readAheadRuns, c)
			}
		}
	}
	getRun(t, ctx, f, leaves[0:10])
	waitAsked(leaves[10:30])
	notAsked(leaves[30:])
	// The next run comes from what was read ahead, each block fetched
	// once, and adds the one run past what was asked for; the last runs
	// stop at the parent's end.
	getRun(t, ctx, f, leaves[10:20])
	waitAsked(leaves[30:40])
	notAsked(leaves[40:])
	getRun(t, ctx, f, leaves[20:30])
	waitAsked(leaves[40:45])
	getRun(t, ctx, f, leaves[30:40])
	getRun(t, ctx, f, leaves[40:45])
	for i, c := range leaves {
		if n := m.wanted(c); n != 1 {
			t.Errorf("leaf %d asked for %d times, want once", i, n)
		}
	}
	// What the caller read is forgotten, so a long read holds no place
	// per block it already has.
	ps := f.(*prefetchSession)
	ps.mu.Lock()
	left := len(ps.sibs)
	ps.mu.Unlock()
	if left != 0 {
		t.Errorf("%d sibling places kept after every sibling was read", left)
	}
}

func TestPrefetchLeavesLargeBlocksOfOneAtATimeWalkersAlone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, leaves, px, f := largeSiblings(t, ctx, 30)
	for _, c := range leaves[:10] {
		if _, err := f.GetBlock(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	getRun(t, ctx, f, leaves[29:30]) // a run of one is no run
	// Give a wrongly started read-ahead time to show.
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		for i, c := range leaves[10:29] {
			if m.wanted(c) != 0 {
				t.Fatalf("leaf %d asked for ahead of a one-at-a-time walker", 10+i)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := px.Stats().Requested; r != 0 {
		t.Errorf("prefetcher requested %d blocks, want 0", r)
	}
	ps := f.(*prefetchSession)
	ps.mu.Lock()
	left := len(ps.sibs)
	ps.mu.Unlock()
	if left != 19 { // 30 less the 11 read
		t.Errorf("%d sibling places kept, want the 19 not read", left)
	}
}

// gatedExchange answers GetBlocks from a memExchange only once release is
// closed, and records, for each call, the CIDs asked and how many blocks
// it had delivered by then.
type gatedExchange struct {
	*memExchange
	release   chan struct{}
	mu        sync.Mutex
	calls     [][]cid.Cid
	delivered []int // blocks delivered when each call came
	sent      int
}

func (g *gatedExchange) NewSession(context.Context) bsexchange.Fetcher { return g }

func (g *gatedExchange) GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error) {
	g.mu.Lock()
	g.calls = append(g.calls, cs)
	g.delivered = append(g.delivered, g.sent)
	g.mu.Unlock()
	in, err := g.memExchange.GetBlocks(ctx, cs)
	if err != nil {
		return nil, err
	}
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		<-g.release
		for b := range in {
			g.mu.Lock()
			g.sent++
			g.mu.Unlock()
			out <- b
		}
	}()
	return out, nil
}

// A reader's run goes to the peer before the next run is read ahead, and
// the read-ahead waits for the run's first block: boxo's client sends one
// round of a peer's wants in map order, so a read-ahead asked with the run
// was served mixed into it (over a 100 Mbit link the first byte came after
// 1.6x stock's time; docs/bitswap.md, "Seventh pass").
func TestPrefetchReadAheadWaitsForTheRunsFirstBlock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := newMem()
	parent, leaves := leafParent(m, 30)
	g := &gatedExchange{memExchange: m, release: make(chan struct{})}
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	px := NewPrefetchExchange(g, bs, 256, nil).(*PrefetchExchange)
	f := px.NewSession(ctx)
	if _, err := f.GetBlock(ctx, parent); err != nil {
		t.Fatal(err)
	}
	ch, err := f.GetBlocks(ctx, leaves[0:10])
	if err != nil {
		t.Fatal(err)
	}
	close(g.release)
	for range ch {
	}
	if pollFor(time.Second, func() bool { return m.wanted(leaves[10]) > 0 }) != nil {
		t.Fatal("the next run was not read ahead")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.calls) != 2 || !g.calls[0][0].Equals(leaves[0]) || !g.calls[1][0].Equals(leaves[10]) {
		t.Fatalf("inner calls %v, want the run, then the next run", g.calls)
	}
	if g.delivered[1] == 0 {
		t.Fatal("the next run was asked for before any block of the run arrived")
	}
}

// fourNodes adds to m a root whose 4 links name dag-pb nodes (at a size
// above PrefetchMaxBlock, so the caller fetches them itself), each with 8
// small raw leaves; it returns the root and the nodes.
func fourNodes(m *memExchange) (cid.Cid, []*merkledag.ProtoNode) {
	root := merkledag.NodeWithData(nil)
	var nodes []*merkledag.ProtoNode
	for i := 0; i < 4; i++ {
		nd := merkledag.NodeWithData(nil)
		for j := 0; j < 8; j++ {
			b, err := blocks.NewBlockWithCid([]byte(fmt.Sprint("leaf ", i, j)),
				cid.NewCidV1(cid.Raw, mustSum(fmt.Sprint("leaf ", i, j))))
			if err != nil {
				panic(err)
			}
			m.blocks[b.Cid()] = b
			if err := nd.AddRawLink("", &format.Link{Cid: b.Cid(), Size: uint64(len(b.RawData()))}); err != nil {
				panic(err)
			}
		}
		m.blocks[nd.Cid()] = nd
		nodes = append(nodes, nd)
		if err := root.AddRawLink("", &format.Link{Cid: nd.Cid(), Size: 1 << 20}); err != nil {
			panic(err)
		}
	}
	m.blocks[root.Cid()] = root
	return root.Cid(), nodes
}

// fourNodesExchange builds fourNodes in a fresh in-memory exchange and
// wraps it for prefetching, width 128, over an empty blockstore.
func fourNodesExchange() (*memExchange, cid.Cid, []*merkledag.ProtoNode, *PrefetchExchange) {
	m := newMem()
	root, nodes := fourNodes(m)
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	return m, root, nodes, NewPrefetchExchange(m, bs, 128, nil).(*PrefetchExchange)
}

func mustSum(s string) multihash.Multihash {
	h, err := multihash.Sum([]byte(s), multihash.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return h
}

// asked reports which of cs m was asked for.
func (m *memExchange) asked(cs []*format.Link) int {
	n := 0
	for _, l := range cs {
		if m.wanted(l.Cid) > 0 {
			n++
		}
	}
	return n
}

func TestPrefetchLooksAheadInTheOrderNodesWereStored(t *testing.T) {
	m, root, nodes, px := fourNodesExchange()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := px.NewSession(ctx)
	sp := sess.(*prefetchSession)
	get := func(c cid.Cid) {
		t.Helper()
		b, err := sess.GetBlock(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		// What Kubo's blockservice does once it has stored the block.
		if err := px.NotifyNewBlocks(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	settled := func(what string, want [4]int) {
		t.Helper()
		var got [4]int
		if err := pollFor(10*time.Second, func() bool {
			sp.mu.Lock()
			defer sp.mu.Unlock()
			for i, nd := range nodes {
				got[i] = m.asked(nd.Links())
			}
			return got == want && sp.flight == 0
		}); err != nil {
			t.Fatalf("%s: leaves asked for per node %v, want %v", what, got, want)
		}
	}
	get(root)
	// The walkers fetch the four nodes; their stores end in the order
	// 3, 1, 0, 2 (not the order the nodes arrived in).
	for _, i := range []int{3, 1, 0, 2} {
		get(nodes[i].Cid())
	}
	settled("the nodes fetched, no leaf asked for", [4]int{})
	// One descent (a reader of one part of the file): that node's leaves
	// only.
	get(nodes[0].Links()[0].Cid)
	settled("one descent", [4]int{8, 0, 0, 0})
	// A second descent: a walk of the whole DAG. The look-ahead asks for
	// the leaves of the nodes left, in the order they were stored.
	get(nodes[2].Links()[0].Cid)
	settled("two descents", [4]int{8, 8, 8, 8})
	if n := px.Stats().LookedAhead; n != 2 {
		t.Fatalf("LookedAhead = %d, want 2 (nodes 3 and 1)", n)
	}
	m.mu.Lock()
	first := map[cid.Cid]int{}
	for i, c := range m.order {
		if _, ok := first[c]; !ok {
			first[c] = i
		}
	}
	m.mu.Unlock()
	if a, b := first[nodes[3].Links()[1].Cid], first[nodes[1].Links()[1].Cid]; a > b {
		t.Fatalf("node 1's leaves were asked for before node 3's (%d, %d); node 3 was stored first", b, a)
	}
	// The walker then gets every other leaf from what was asked ahead,
	// each asked for once.
	for _, i := range []int{3, 1, 0, 2} {
		for j, l := range nodes[i].Links() {
			if j == 0 && (i == 0 || i == 2) {
				continue // fetched by the descents above (and stored)
			}
			get(l.Cid)
		}
	}
	for _, nd := range nodes {
		for _, l := range nd.Links() {
			if n := m.wanted(l.Cid); n != 1 {
				t.Fatalf("leaf %s asked for %d times, want 1", l.Cid, n)
			}
		}
	}
}

func TestPrefetchLooksAheadOnlyAtStoredNodes(t *testing.T) {
	m, root, nodes, px := fourNodesExchange()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := px.NewSession(ctx)
	// Nobody announces stores (a caller that keeps what it fetches in
	// memory): two descents get their own nodes' leaves and nothing else.
	for _, c := range []cid.Cid{root, nodes[0].Cid(), nodes[1].Cid(), nodes[2].Cid(),
		nodes[0].Links()[0].Cid, nodes[1].Links()[0].Cid} {
		if _, err := sess.GetBlock(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := pollFor(10*time.Second, func() bool { return px.Stats().Requested == 14 }); err != nil {
		t.Fatalf("requested %d, want 14 (7 siblings in each of two nodes)", px.Stats().Requested)
	}
	if n := m.asked(nodes[2].Links()); n != 0 {
		t.Fatalf("%d leaves of a node nobody stored or descended into were asked for", n)
	}
	// Ending the session forgets the parked nodes.
	cancel()
	if err := pollFor(10*time.Second, func() bool {
		n := 0
		px.parents.Range(func(any, any) bool { n++; return true })
		return n == 0
	}); err != nil {
		t.Fatal("the exchange still maps parked nodes to an ended session")
	}
}

func TestPrefetchSessionsShareTheWidth(t *testing.T) {
	px := &PrefetchExchange{width: 40}
	mk := func(tag string) (*prefetchSession, *merkledag.ProtoNode) {
		s := &prefetchSession{p: px, seen: map[cid.Cid]bool{}, ahead: map[cid.Cid]*ahead{},
			signal: make(chan struct{}, 1), room: make(chan struct{}, 1)}
		s.got = 1024 // past the slow start
		nd := merkledag.NodeWithData([]byte(tag))
		for i := range 64 {
			b := blocks.NewBlock(fmt.Appendf(nil, "%s leaf %d", tag, i))
			if err := nd.AddRawLink(fmt.Sprint(i), &format.Link{Cid: b.Cid(), Size: 1 << 10}); err != nil {
				t.Fatal(err)
			}
		}
		s.links(nd)
		s.claim(nd.Links()[0].Cid) // the caller descends: the other 63 are queued
		return s, nd
	}
	a, _ := mk("a")
	b, _ := mk("b")
	first := a.take()
	if len(first) != 40 {
		t.Fatalf("the first session sent %d wants, want the whole width (40)", len(first))
	}
	if got := b.take(); len(got) != 0 {
		t.Fatalf("a second session sent %d wants while the first had the node's width in flight", len(got))
	}
	// Three of the first session's blocks arrive: room for three.
	for _, e := range first[:3] {
		a.arrive(e, blocks.NewBlock(make([]byte, 1<<10)), false)
	}
	if got := b.take(); len(got) != 3 {
		t.Fatalf("after 3 arrivals the second session sent %d wants, want 3", len(got))
	}
	if n := px.flight.Load(); n != 40 {
		t.Fatalf("node's prefetch wants in flight %d, want 40", n)
	}
}

// rawLeafParent adds a dag-pb node to m whose n links name raw leaves of
// 1 KiB (small, so prefetched); it returns the node and its leaves.
func rawLeafParent(m *memExchange, n int, tag string) (cid.Cid, []cid.Cid) {
	nd := merkledag.NodeWithData(nil)
	var leaves []cid.Cid
	for i := 0; i < n; i++ {
		data := make([]byte, 1<<10)
		copy(data, fmt.Sprint(tag, " leaf ", i))
		b, err := blocks.NewBlockWithCid(data, cid.NewCidV1(cid.Raw, mustSumBytes(data)))
		if err != nil {
			panic(err)
		}
		m.blocks[b.Cid()] = b
		leaves = append(leaves, b.Cid())
		if err := nd.AddRawLink("", &format.Link{Cid: b.Cid(), Size: uint64(len(data))}); err != nil {
			panic(err)
		}
	}
	m.blocks[nd.Cid()] = nd
	return nd.Cid(), leaves
}

func mustSumBytes(b []byte) multihash.Multihash {
	h, err := multihash.Sum(b, multihash.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return h
}

// gatedStore is a blockstore that records each PutMany's size, can hold
// the first one until gate is closed (before anything is stored), and
// can fail them all.
type gatedStore struct {
	blockstore.Blockstore
	gate chan struct{} // nil: no gate
	fail error

	mu      sync.Mutex
	batches []int
	writing []cid.Cid // the CIDs of the PutMany waiting at the gate
}

func (g *gatedStore) PutMany(ctx context.Context, bs []blocks.Block) error {
	g.mu.Lock()
	first := len(g.batches) == 0
	g.batches = append(g.batches, len(bs))
	if first && g.gate != nil {
		for _, b := range bs {
			g.writing = append(g.writing, b.Cid())
		}
	}
	g.mu.Unlock()
	if first && g.gate != nil {
		<-g.gate
	}
	if g.fail != nil {
		return g.fail
	}
	return g.Blockstore.PutMany(ctx, bs)
}

// newGatedStore is a gatedStore over an empty in-memory blockstore whose
// first PutMany waits until gate is closed.
func newGatedStore() *gatedStore {
	return &gatedStore{Blockstore: blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore())), gate: make(chan struct{})}
}

func (g *gatedStore) stats() (batches []int, writing []cid.Cid) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.batches...), append([]cid.Cid(nil), g.writing...)
}

// firstThenRest answers each GetBlocks with its first block at once and
// the rest once more is closed.
type firstThenRest struct {
	*memExchange
	more chan struct{}
}

func (f *firstThenRest) NewSession(context.Context) bsexchange.Fetcher { return f }

func (f *firstThenRest) GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error) {
	in, err := f.memExchange.GetBlocks(ctx, cs)
	if err != nil {
		return nil, err
	}
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		first := true
		for b := range in {
			if !first {
				<-f.more
			}
			first = false
			out <- b
		}
	}()
	return out, nil
}

// leavesSession makes a parent of n small raw leaves, a prefetching
// exchange over store (width 64) and the exchange wrap makes of the
// leaves' (nil: the in-memory one), and a session that fetched the parent
// and the first leaf, which releases the other leaves to the prefetcher.
func leavesSession(t *testing.T, ctx context.Context, store blockstore.Blockstore, n int, wrap func(*memExchange) bsexchange.SessionExchange) (*memExchange, []cid.Cid, *PrefetchExchange, *prefetchSession) {
	t.Helper()
	m := newMem()
	parent, leaves := rawLeafParent(m, n, t.Name())
	var inner bsexchange.SessionExchange = m
	if wrap != nil {
		inner = wrap(m)
	}
	px := NewPrefetchExchange(inner, store, 64, nil).(*PrefetchExchange)
	sess := px.NewSession(ctx).(*prefetchSession)
	for _, c := range []cid.Cid{parent, leaves[0]} {
		if _, err := sess.GetBlock(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return m, leaves, px, sess
}

// firstWriteHeld makes leavesSession's exchange answer each GetBlocks with
// its first block only until more is closed, and returns once the first
// prefetched leaf's write waits at store's gate.
func firstWriteHeld(t *testing.T, ctx context.Context, store *gatedStore, n int) (*memExchange, []cid.Cid, *PrefetchExchange, *prefetchSession, chan struct{}) {
	t.Helper()
	more := make(chan struct{})
	m, leaves, px, sess := leavesSession(t, ctx, store, n, func(m *memExchange) bsexchange.SessionExchange {
		return &firstThenRest{memExchange: m, more: more}
	})
	if err := pollFor(10*time.Second, func() bool { _, writing := store.stats(); return len(writing) > 0 }); err != nil {
		t.Fatalf("the first leaf was not written: %v", err)
	}
	return m, leaves, px, sess, more
}

func TestPrefetchStoresLeavesAsTheyArriveInSharedWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := newGatedStore()
	m, leaves, px, sess, more := firstWriteHeld(t, ctx, store, 20)
	// The 18 that arrive meanwhile queue for the next write.
	close(more)
	err := pollFor(10*time.Second, func() bool {
		_, writing := store.stats()
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return len(writing)+len(sess.writeQ) == 19
	})
	if err != nil {
		t.Fatalf("the 19 prefetched leaves did not all queue for writing: %v", err)
	}
	if px.Stats().Stored != 0 {
		t.Fatalf("stored %d before the first write ended", px.Stats().Stored)
	}
	close(store.gate)
	if err := pollFor(10*time.Second, func() bool { return px.Stats().Stored == 19 && px.bytes.Load() == 0 }); err != nil {
		t.Fatalf("stats %+v, %d bytes held: want 19 leaves stored and nothing held", px.Stats(), px.bytes.Load())
	}
	// Nothing stays behind for the written leaves: a walk of a million
	// leaves must not keep a million entries.
	sess.mu.Lock()
	left := len(sess.ahead)
	sess.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d entries kept for leaves written ahead", left)
	}
	if batches, _ := store.stats(); len(batches) != 2 || batches[0]+batches[1] != 19 {
		t.Fatalf("PutMany calls of %v blocks: want the 19 leaves in two writes, those that came during the first in the second", batches)
	}
	m.mu.Lock()
	notified := m.notified
	m.mu.Unlock()
	if notified != 19 {
		t.Fatalf("the inner exchange was told of %d stored blocks, want 19", notified)
	}
	// The caller gets each leaf (blockservice would find it in the
	// blockstore first; the session reads it there too), none fetched twice.
	for _, c := range leaves[1:] {
		if has, _ := store.Has(ctx, c); !has {
			t.Fatalf("leaf %s not in the blockstore", c)
		}
		b, err := sess.GetBlock(ctx, c)
		if err != nil || !b.Cid().Equals(c) || string(b.RawData()) != string(m.blocks[c].RawData()) {
			t.Fatalf("GetBlock %s: %v, %v", c, b, err)
		}
		if n := m.wanted(c); n != 1 {
			t.Fatalf("leaf %s wanted %d times", c, n)
		}
	}
}

func TestPrefetchCallerOfALeafBeingWrittenWaitsForTheWrite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := newGatedStore()
	m, _, px, sess := leavesSession(t, ctx, store, 8, nil)
	var writing []cid.Cid
	if err := pollFor(10*time.Second, func() bool { _, writing = store.stats(); return len(writing) > 0 }); err != nil {
		t.Fatal(err)
	}
	c := writing[0]
	type result struct {
		b   blocks.Block
		err error
		has bool // the block was in the blockstore when GetBlock returned
	}
	done := make(chan result, 1)
	go func() {
		b, err := sess.GetBlock(ctx, c)
		has, _ := store.Blockstore.Has(ctx, c)
		done <- result{b, err, has}
	}()
	// The claim is made (the entry is taken) while the write is held.
	if err := pollFor(10*time.Second, func() bool {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		e := sess.ahead[c]
		return e == nil // claimed
	}); err != nil {
		t.Fatal(err)
	}
	close(store.gate)
	r := <-done
	if r.err != nil || !r.b.Cid().Equals(c) {
		t.Fatalf("GetBlock: %v, %v", r.b, r.err)
	}
	if !r.has {
		t.Fatal("GetBlock returned a leaf being written before its write ended: the caller's own store would write it again")
	}
	if n := m.wanted(c); n != 1 {
		t.Fatalf("wanted %d times", n)
	}
	if err := pollFor(10*time.Second, func() bool { return px.Stats().Stored == 7 && px.bytes.Load() == 0 }); err != nil {
		t.Fatalf("stats %+v, %d bytes held", px.Stats(), px.bytes.Load())
	}
}

func TestPrefetchHoldsLeavesWhoseWriteFailed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := newGatedStore()
	store.gate, store.fail = nil, fmt.Errorf("disk full")
	m, leaves, px, sess := leavesSession(t, ctx, store, 10, nil)
	if err := pollFor(10*time.Second, func() bool {
		b, _ := store.stats()
		n := 0
		for _, k := range b {
			n += k
		}
		return n == 9
	}); err != nil {
		t.Fatalf("the 9 leaves were not all tried: %v", err)
	}
	for _, c := range leaves[1:] {
		b, err := sess.GetBlock(ctx, c)
		if err != nil || !b.Cid().Equals(c) {
			t.Fatalf("GetBlock %s: %v, %v", c, b, err)
		}
		if n := m.wanted(c); n != 1 {
			t.Fatalf("leaf %s wanted %d times: the held copy was not served", c, n)
		}
	}
	if s := px.Stats(); s.Stored != 0 || s.Served != 9 {
		t.Fatalf("stats %+v: want nothing stored, the 9 leaves served from memory", s)
	}
	if err := pollFor(10*time.Second, func() bool { return px.bytes.Load() == 0 }); err != nil {
		t.Fatalf("%d bytes still held after every leaf was claimed", px.bytes.Load())
	}
}

func TestPrefetchSessionEndingDuringAWriteLeavesNothingBehind(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := newGatedStore()
	_, _, px, sess, more := firstWriteHeld(t, ctx, store, 12)
	close(more) // the other 10 arrive and queue behind the held write
	if err := pollFor(10*time.Second, func() bool {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return len(sess.writeQ) == 10
	}); err != nil {
		t.Fatal(err)
	}
	cancel() // the session ends with one write held and ten leaves queued
	if err := pollFor(10*time.Second, func() bool {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return sess.closed
	}); err != nil {
		t.Fatal(err)
	}
	close(store.gate)
	// The writer ends, nothing stays counted against the node's total, and
	// the entries of the session are gone.
	if err := pollFor(10*time.Second, func() bool {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return !sess.writing && len(sess.writeQ) == 0 && len(sess.ahead) == 0 && px.bytes.Load() == 0
	}); err != nil {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		t.Fatalf("after the session ended: writing %v, %d queued, %d entries, %d bytes counted", sess.writing, len(sess.writeQ), len(sess.ahead), px.bytes.Load())
	}
	// The held write ends; the ten queued behind it are dropped with the
	// session, not written.
	if batches, _ := store.stats(); len(batches) != 1 {
		t.Fatalf("PutMany calls of %v blocks: want only the one under way when the session ended", batches)
	}
	// All 11 were held when it ended (the one being written too, which its
	// write then stored).
	if s := px.Stats(); s.Unused != 11 || s.Stored != 1 {
		t.Fatalf("stats %+v: want the 11 held leaves counted unused, the one under way stored", s)
	}
}
