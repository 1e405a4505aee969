package exchange

import (
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/ipfs/boxo/bitswap/server"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	"github.com/ipfs/go-peertaskqueue"
	"github.com/ipfs/go-peertaskqueue/peertask"
	"github.com/ipfs/go-peertaskqueue/peertracker"
	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	capTestBlock = 256 << 10
	capTestCap   = 1 << 20 // four blocks
)

// capQueue is boxo's engine queue with a TaskComparator and
// MaxOutstandingBytesPerPeer capTestCap (engine.go, NewEngine).
func capQueue(p *Policy) *peertaskqueue.PeerTaskQueue {
	cmp := func(a, b *peertask.QueueTask) bool {
		return p.Compare(&server.TaskInfo{Peer: a.Target, Cid: a.Topic.(cid.Cid)}, &server.TaskInfo{Peer: b.Target, Cid: b.Topic.(cid.Cid)})
	}
	return peertaskqueue.New(
		peertaskqueue.IgnoreFreezing(true),
		peertaskqueue.MaxOutstandingWorkPerPeer(capTestCap),
		peertaskqueue.PeerComparator(peertracker.TaskPriorityPeerComparator(cmp)),
		peertaskqueue.TaskComparator(cmp),
	)
}

// capRig drives the queue the way the engine and server do: pop, the
// tracer's MessageSent, then (when the peer's link is not stalled) the
// engine's TasksDone and the client's cancel for the blocks it got.
type capRig struct {
	t    *testing.T
	p    *Policy
	q    *peertaskqueue.PeerTaskQueue
	next int
	data []byte
}

func newCapRig(t *testing.T, opts ...Option) (*capRig, *clock) {
	p, clk := newTestPolicy(t, simConfig(), opts...)
	return &capRig{t: t, p: p, q: capQueue(p), data: make([]byte, capTestBlock)}, clk
}

func (r *capRig) push(id peer.ID, n int) {
	var tasks []peertask.Task
	for i := 0; i < n; i++ {
		r.next++
		c := testCID(r.next)
		r.p.Filter(id, c)
		tasks = append(tasks, peertask.Task{Topic: c, Priority: 1, Work: capTestBlock})
	}
	r.q.PushTasks(id, tasks...)
}

// pop pops one message and sends it; it returns the peer ("" when the
// queue gave nothing) and the tasks.
func (r *capRig) pop() (peer.ID, []*peertask.Task) {
	id, tasks, _ := r.q.PopTasks(capTestBlock)
	if len(tasks) == 0 {
		return "", nil
	}
	m := bsmsg.New(false)
	for _, task := range tasks {
		b, err := blocks.NewBlockWithCid(r.data, task.Topic.(cid.Cid))
		if err != nil {
			r.t.Fatal(err)
		}
		m.AddBlock(b)
	}
	r.p.MessageSent(id, m)
	return id, tasks
}

// done finishes the sends of tasks; with ack the client cancels them.
func (r *capRig) done(id peer.ID, tasks []*peertask.Task, ack bool) {
	r.q.TasksDone(id, tasks...)
	if !ack {
		return
	}
	m := bsmsg.New(false)
	for _, task := range tasks {
		m.Cancel(task.Topic.(cid.Cid))
	}
	r.p.MessageReceived(id, m)
}

// prime serves B one message, then A one (A cancels it when ack), so that
// by pass A (priority, its pass grows 8x slower) comes before B (unknown).
func (r *capRig) prime(a, b peer.ID, ack bool) {
	r.p.SetPriorityPeers([]peer.ID{a})
	for _, id := range []peer.ID{b, a} {
		r.push(id, 1)
		got, tasks := r.pop()
		if got != id {
			r.t.Fatalf("priming pop went to %q, want %q", got, id)
		}
		r.done(id, tasks, ack || id == b)
	}
}

// stalledPeer sets up peer A (priority: its pass grows 8x slower than B's,
// so A stays first by pass) which has acknowledged blocks before and whose
// link then stalls, and peer B (unknown) whose sends complete at once.
// It pops `pops` messages and returns how many went to each, and how many
// pops gave nothing although B had tasks queued.
func stalledPeer(t *testing.T, opts ...Option) (toA, toB, empty int) {
	r, _ := newCapRig(t, opts...)
	a, b := peer.ID("peer-a"), peer.ID("peer-b")
	r.prime(a, b, true)
	r.push(a, 16)
	r.push(b, 16)
	for i := 0; i < 12; i++ {
		id, tasks := r.pop()
		switch id {
		case a:
			toA++ // A's link is stalled: no TasksDone, no cancel
		case b:
			toB++
			r.done(b, tasks, true)
		default:
			empty++
		}
	}
	return toA, toB, empty
}

// Without the estimate, the reproduction of the caveat: A reaches the
// outstanding-bytes cap at the top of the queue and PopTasks gives nothing
// while B waits. This pins boxo's behaviour the fix is for.
func TestCappedPeerHoldsQueueWithoutEstimate(t *testing.T) {
	toA, toB, empty := stalledPeer(t)
	if toA != 4 || toB != 0 || empty != 8 {
		t.Fatalf("without the estimate: A %d, B %d, empty pops %d; want 4, 0, 8 (boxo's hold)", toA, toB, empty)
	}
}

// With the estimate, A at its cap goes below B, and B is served. One
// empty pop is allowed, as in the engine: the queue re-sorts A after the
// pop that brings it to the cap, before the tracer's MessageSent counts
// that pop's block; the empty pop's own re-sort then moves A down.
func TestCappedPeerDoesNotHoldQueue(t *testing.T) {
	toA, toB, empty := stalledPeer(t, WithOutstandingCap(capTestCap))
	if empty > 1 {
		t.Fatalf("%d pops gave nothing while B had tasks (A %d, B %d); want at most 1", empty, toA, toB)
	}
	if toA != 4 || toB != 12-4-empty {
		t.Fatalf("A %d, B %d, empty %d; want A at its cap (4) and B the rest", toA, toB, empty)
	}
}

// A peer that never acknowledged a block with a cancel is never moved
// down: the estimate would only be a guess for it.
func TestNonAckingPeerKeepsPassOrder(t *testing.T) {
	r, _ := newCapRig(t, WithOutstandingCap(capTestCap))
	a, b := peer.ID("peer-a"), peer.ID("peer-b")
	r.prime(a, b, false)
	r.push(a, 8)
	r.push(b, 8)
	for i := 0; i < 4; i++ {
		id, tasks := r.pop()
		if id != a {
			t.Fatalf("pop %d went to %q; want the priority peer by pass order", i, id)
		}
		r.done(a, tasks, false)
	}
	if f := r.p.state(a).fl.bytes.Load(); f != 5*capTestBlock {
		t.Fatalf("in flight %d, want %d (sent, never acknowledged)", f, 5*capTestBlock)
	}
}

// A peer that stops reading stays below the others however long it is
// silent (the clock alone never brings it back to hold the queue), and
// its unacknowledged blocks stop counting at its next message after
// inflightTTL.
func TestStalledPeerStaysDownUntilItTalks(t *testing.T) {
	r, clk := newCapRig(t, WithOutstandingCap(capTestCap))
	a, b := peer.ID("peer-a"), peer.ID("peer-b")
	r.prime(a, b, true)
	r.push(a, 16)
	r.push(b, 16)
	var stalled [][]*peertask.Task
	for i := 0; i < 4; i++ {
		id, tasks := r.pop()
		if id != a {
			t.Fatalf("pop %d went to %q, want A (under its cap)", i, id)
		}
		stalled = append(stalled, tasks)
	}
	clk.add(time.Minute)
	for i := 0; i < 4; i++ {
		id, tasks := r.pop()
		if id == a {
			t.Fatalf("pop %d, a minute into A's stall, went to A", i)
		}
		if id == b {
			r.done(b, tasks, true)
		}
	}
	// A's sends finally end (boxo's send timeout) and A asks again: its
	// message prunes the expired entries and A is back by pass order.
	for _, tasks := range stalled {
		r.q.TasksDone(a, tasks...)
	}
	m := bsmsg.New(false)
	m.AddEntry(testCID(1<<22), 1, 0, true)
	r.p.MessageReceived(a, m)
	if f := r.p.state(a).fl.bytes.Load(); f != 0 {
		t.Fatalf("A's in-flight estimate %d after its message past the TTL, want 0", f)
	}
	r.push(a, 1)
	if id, _ := r.pop(); id != a {
		t.Fatalf("after A talked again, pop went to %q; want A by pass order", id)
	}
}

func TestFlightBookkeeping(t *testing.T) {
	var f flight
	data := make([]byte, 100)
	msg := func(ids ...int) bsmsg.BitSwapMessage {
		m := bsmsg.New(false)
		for _, i := range ids {
			b, _ := blocks.NewBlockWithCid(data, testCID(i))
			m.AddBlock(b)
		}
		return m
	}
	cancel := func(ids ...int) bsmsg.BitSwapMessage {
		m := bsmsg.New(false)
		for _, i := range ids {
			m.Cancel(testCID(i))
		}
		return m
	}
	now := time.Unix(1000, 0).UnixNano()
	f.add(msg(1, 2, 3), now)
	f.add(msg(3), now) // re-sent: counted once
	if got := f.bytes.Load(); got != 300 {
		t.Fatalf("bytes %d, want 300", got)
	}
	if f.full(300) {
		t.Fatal("full before any acknowledgement")
	}
	if !f.ack(cancel(1, 9), now) {
		t.Fatal("cancel of a block in flight not taken as an acknowledgement")
	}
	if f.ack(cancel(9), now) {
		t.Fatal("cancel of a block never sent taken as an acknowledgement")
	}
	if got := f.bytes.Load(); got != 200 {
		t.Fatalf("bytes %d after one ack, want 200", got)
	}
	if !f.full(200) || f.full(201) {
		t.Fatal("full should hold at 200 bytes in flight and not above")
	}
	later := now + int64(inflightTTL)
	if !f.full(200) {
		t.Fatal("the clock alone lowered the estimate")
	}
	f.add(msg(4), later)
	if got := f.bytes.Load(); got != 100 {
		t.Fatalf("bytes %d after the TTL, want only the new block (100)", got)
	}
	for i := 0; i < inflightMax+10; i++ {
		f.add(msg(100+i), later)
	}
	if n := len(f.sent); n > inflightMax {
		t.Fatalf("%d blocks tracked, want at most %d", n, inflightMax)
	}
}
