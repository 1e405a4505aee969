package exchange

import (
	"fmt"
	"testing"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/ipfs/go-peertaskqueue"
	"github.com/ipfs/go-peertaskqueue/peertask"
	"github.com/libp2p/go-libp2p/core/peer"
)

// popOrder pushes n wants of one peer into boxo's queue as the engine does
// (filter, then push), in several messages, and pops them one at a time,
// answering each; it returns the want numbers in the order served.
func popOrder(t *testing.T, p *Policy, id peer.ID, n, perMessage int) []int {
	t.Helper()
	q := queueFor(p)
	index := map[cid.Cid]int{}
	for i := 0; i < n; i += perMessage {
		var tasks []peertask.Task
		for k := i; k < min(i+perMessage, n); k++ {
			c := testCID(k + 1)
			index[c] = k
			if !p.Filter(id, c) {
				t.Fatalf("want %d denied", k)
			}
			tasks = append(tasks, peertask.Task{Topic: c, Priority: 1, Work: 1})
		}
		q.PushTasks(id, tasks...)
	}
	return popAll(t, p, q, id, n, index)
}

// receive hands m to the policy as Bitswap does (the tracer first, then
// the engine's filter for each want, in map order as the engine meets
// them) and returns a queue holding the admitted wants.
func receive(t *testing.T, p *Policy, id peer.ID, m bsmsg.BitSwapMessage, index map[cid.Cid]int) *peertaskqueue.PeerTaskQueue {
	t.Helper()
	p.MessageReceived(id, m)
	q := queueFor(p)
	var tasks []peertask.Task
	for _, e := range m.Wantlist() {
		if !p.Filter(id, e.Cid) {
			t.Fatalf("want %d denied", index[e.Cid])
		}
		tasks = append(tasks, peertask.Task{Topic: e.Cid, Priority: 1, Work: 1})
	}
	q.PushTasks(id, tasks...)
	return q
}

// popAll pops id's n tasks from q one at a time, answering each (so the
// policy forgets it), and returns their numbers in index in the order
// served.
func popAll(t *testing.T, p *Policy, q *peertaskqueue.PeerTaskQueue, id peer.ID, n int, index map[cid.Cid]int) []int {
	t.Helper()
	var order []int
	for len(order) < n {
		_, tasks, _ := q.PopTasks(1)
		if len(tasks) == 0 {
			t.Fatalf("queue empty after %d of %d", len(order), n)
		}
		m := bsmsg.New(false)
		for _, task := range tasks {
			order = append(order, index[task.Topic.(cid.Cid)])
			m.AddDontHave(task.Topic.(cid.Cid))
		}
		p.MessageSent(id, m)
		q.TasksDone(id, tasks...)
	}
	return order
}

func TestOnePeersWantsAreServedOldestFirst(t *testing.T) {
	p, _ := newTestPolicy(t, simConfig())
	order := popOrder(t, p, peer.ID("reader"), 30, 10)
	for i, k := range order {
		if k != i {
			t.Fatalf("served in order %v, want 0..29", order)
		}
	}
	if n := p.state("reader").order.len(); n != 0 {
		t.Fatalf("%d wants still remembered after all were answered", n)
	}
}

func TestArrivalOrderForgetsCancelledAndReplacedWants(t *testing.T) {
	p, _ := newTestPolicy(t, simConfig())
	id := peer.ID("reader")
	for i := range 5 {
		p.Filter(id, testCID(i+1))
	}
	st := p.state(id)
	m := bsmsg.New(false)
	m.Cancel(testCID(1))
	m.Cancel(testCID(2))
	p.MessageReceived(id, m)
	if n := st.order.len(); n != 3 {
		t.Fatalf("after two cancels %d wants remembered, want 3", n)
	}
	if !st.order.before(testCID(3), testCID(4)) || st.order.before(testCID(4), testCID(3)) {
		t.Fatal("want 3 does not come before want 4")
	}
	if !st.order.before(testCID(5), testCID(1)) {
		t.Fatal("a remembered want does not come before a forgotten one")
	}
	p.MessageReceived(id, bsmsg.New(true)) // a full wantlist replaces the old one
	if n := st.order.len(); n != 0 {
		t.Fatalf("after a full wantlist %d old wants remembered, want 0", n)
	}
}

func TestArrivalOrderIsBounded(t *testing.T) {
	var a arrival
	for i := range maxOrdered + 100 {
		a.add(testCID(i + 1))
	}
	if n := a.len(); n != maxOrdered {
		t.Fatalf("%d wants remembered, want the bound %d", n, maxOrdered)
	}
	if !a.before(testCID(1), testCID(maxOrdered+50)) {
		t.Fatal("a want past the bound does not sort after a remembered one")
	}
}

// The engine meets one message's wants in map order; expect (called from
// MessageReceived, before the engine) makes the filter number them by the
// client's priorities, so they are served in the order the client asked.
func TestOneMessagesWantsAreServedInPriorityOrder(t *testing.T) {
	p, _ := newTestPolicy(t, simConfig())
	id := peer.ID("reader")
	const n = 30
	m := bsmsg.New(false)
	index := numbered(n, func(k int, c cid.Cid) {
		m.AddEntry(c, int32(1000-k), 0, true) // the client's order: descending priority
	})
	q := receive(t, p, id, m, index)
	inOrder(t, popAll(t, p, q, id, n, index), "descending priority")
}

// numbered calls each with the want numbers 0..n-1 and their CIDs, and
// returns the numbers by CID.
func numbered(n int, each func(k int, c cid.Cid)) map[cid.Cid]int {
	index := map[cid.Cid]int{}
	for k := range n {
		c := testCID(k + 1)
		index[c] = k
		each(k, c)
	}
	return index
}

// inOrder fails t unless order is 0, 1, 2, ...
func inOrder(t *testing.T, order []int, what string) {
	t.Helper()
	for i, k := range order {
		if k != i {
			t.Fatalf("served in order %v, want 0..%d (%s)", order, len(order)-1, what)
		}
	}
}

// A reader that got a node from us asks for its children next; they are
// served in the node's link order, whatever priorities the client gave
// them (boxo's client gives one round's wants priorities in map order).
func TestChildrenOfASentNodeAreServedInLinkOrder(t *testing.T) {
	p, _ := newTestPolicy(t, simConfig())
	id := peer.ID("reader")
	const n = 30
	nd := merkledag.NodeWithData(nil)
	index := numbered(n, func(_ int, c cid.Cid) {
		if err := nd.AddRawLink("", &format.Link{Cid: c, Size: 256 << 10}); err != nil {
			t.Fatal(err)
		}
	})
	sent := bsmsg.New(false)
	sent.AddBlock(nd)
	p.MessageSent(id, sent)
	m := bsmsg.New(false)
	for k := range n {
		m.AddEntry(testCID(k+1), int32(k+1), 0, true) // ascending: the reverse of the links
	}
	m.AddEntry(testCID(n+1), 1000, 0, true) // not a child: after the children
	index[testCID(n+1)] = n
	q := receive(t, p, id, m, index)
	inOrder(t, popAll(t, p, q, id, n+1, index), "the node's links, then the other want")
}

func TestDagpbLinksReadsTheLinksInOrder(t *testing.T) {
	nd := merkledag.NodeWithData([]byte("data"))
	var want []uint64
	for k := range 5 {
		c := testCID(k + 1)
		want = append(want, linkKey(c))
		if err := nd.AddRawLink(fmt.Sprint("name", k), &format.Link{Cid: c, Size: uint64(k)}); err != nil {
			t.Fatal(err)
		}
	}
	got := dagpbLinks(nd.RawData(), 1<<10)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("link keys %v, want %v", got, want)
	}
	if got := dagpbLinks(nd.RawData(), 3); len(got) != 3 {
		t.Fatalf("%d links under a limit of 3", len(got))
	}
	for _, bad := range [][]byte{{0x12}, {0x12, 0x05, 0x0a}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if got := dagpbLinks(bad, 1<<10); got != nil {
			t.Errorf("dagpbLinks(%x) = %v, want nil", bad, got)
		}
	}
}

func TestSentNodesKeepTheNewestLinksWithinTheBound(t *testing.T) {
	var a arrival
	node := func(tag, n int) blocks.Block {
		nd := merkledag.NodeWithData([]byte(fmt.Sprint(tag)))
		for k := range n {
			if err := nd.AddRawLink("", &format.Link{Cid: testCID(tag*10000 + k + 1)}); err != nil {
				t.Fatal(err)
			}
		}
		return nd
	}
	for tag := range 5 { // 5 x 1,000 links, one node per message
		m := bsmsg.New(false)
		m.AddBlock(node(tag, 1000))
		a.sawNodes(m.Blocks())
	}
	total := 0
	for _, ls := range a.nodes {
		total += len(ls)
	}
	if total > keptLinks || len(a.nodes) != 2 {
		t.Fatalf("%d nodes, %d links kept; want the newest 2 within %d", len(a.nodes), total, keptLinks)
	}
	if a.nodes[1][0] != linkKey(testCID(4*10000+1)) {
		t.Fatal("the newest node is not the last kept")
	}
	m := bsmsg.New(false)
	m.AddBlock(node(9, maxNodeLinks+50))
	a.sawNodes(m.Blocks())
	if n := len(a.nodes[len(a.nodes)-1]); n != maxNodeLinks {
		t.Fatalf("%d links kept of one node, want the bound %d", n, maxNodeLinks)
	}
}
