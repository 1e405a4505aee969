package exchange

import (
	"testing"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	cid "github.com/ipfs/go-cid"
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
	index := map[cid.Cid]int{}
	for k := range n {
		c := testCID(k + 1)
		index[c] = k
		m.AddEntry(c, int32(1000-k), 0, true) // the client's order: descending priority
	}
	p.MessageReceived(id, m)
	q := queueFor(p)
	var tasks []peertask.Task
	for _, e := range m.Wantlist() { // map order, as the engine meets them
		if !p.Filter(id, e.Cid) {
			t.Fatalf("want %d denied", index[e.Cid])
		}
		tasks = append(tasks, peertask.Task{Topic: e.Cid, Priority: 1, Work: 1})
	}
	q.PushTasks(id, tasks...)
	order := popAll(t, p, q, id, n, index)
	for i, k := range order {
		if k != i {
			t.Fatalf("served in order %v, want 0..%d (descending priority)", order, n-1)
		}
	}
}
