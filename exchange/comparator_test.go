package exchange

import (
	"fmt"
	"math/rand"
	"testing"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/ipfs/boxo/bitswap/server"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	"github.com/ipfs/go-peertaskqueue"
	"github.com/ipfs/go-peertaskqueue/peertask"
	"github.com/ipfs/go-peertaskqueue/peertracker"
	"github.com/libp2p/go-libp2p/core/peer"
)

// queueFor builds the same peer task queue boxo's engine builds when a
// TaskComparator is set (engine.go: TaskPriorityPeerComparator over the
// wrapped comparator, for both peers and tasks).
func queueFor(p *Policy) *peertaskqueue.PeerTaskQueue {
	cmp := func(a, b *peertask.QueueTask) bool {
		return p.Compare(&server.TaskInfo{Peer: a.Target, Cid: a.Topic.(cid.Cid)}, &server.TaskInfo{Peer: b.Target, Cid: b.Topic.(cid.Cid)})
	}
	return peertaskqueue.New(
		peertaskqueue.IgnoreFreezing(true),
		peertaskqueue.PeerComparator(peertracker.TaskPriorityPeerComparator(cmp)),
		peertaskqueue.TaskComparator(cmp),
	)
}

type simPeer struct {
	id    peer.ID
	class Class
	next  int
}

// simulate keeps every peer in backlogged with at least 32 queued tasks and
// serves `pops` messages of up to 8 entries, as the engine's workers do;
// it returns the entries served per class.
func simulate(t *testing.T, p *Policy, clk *clock, peers []*simPeer, backlogged map[Class]bool, pops int) [NumClasses]int {
	t.Helper()
	q := queueFor(p)
	queued := map[peer.ID]int{}
	var served [NumClasses]int
	refill := func() {
		for _, sp := range peers {
			if !backlogged[sp.class] {
				continue
			}
			for queued[sp.id] < 32 {
				sp.next++
				c := testCID(sp.next + 1<<20*int(sp.id[len(sp.id)-1]))
				p.Filter(sp.id, c)
				q.PushTasks(sp.id, peertask.Task{Topic: c, Priority: 1, Work: 1})
				queued[sp.id]++
			}
		}
	}
	classOf := map[peer.ID]Class{}
	for _, sp := range peers {
		classOf[sp.id] = sp.class
	}
	for i := 0; i < pops; i++ {
		refill()
		id, tasks, _ := q.PopTasks(8)
		if len(tasks) == 0 {
			t.Fatalf("pop %d: no tasks with backlogged peers", i)
		}
		m := bsmsg.New(false)
		for _, task := range tasks {
			m.AddDontHave(task.Topic.(cid.Cid))
		}
		p.MessageSent(id, m)
		q.TasksDone(id, tasks...)
		queued[id] -= len(tasks)
		served[classOf[id]] += len(tasks)
		if i%50 == 0 {
			clk.add(p.cfg.Tick)
			p.sample(clk.now())
		}
	}
	return served
}

func makePeers(t *testing.T, p *Policy, n [NumClasses]int) []*simPeer {
	var peers []*simPeer
	var prio []peer.ID
	blk := blocks.NewBlock([]byte("b"))
	for c := Class(0); c < NumClasses; c++ {
		for i := 0; i < n[c]; i++ {
			sp := &simPeer{id: peer.ID(fmt.Sprintf("%s-%c", c, 'a'+i)), class: c}
			peers = append(peers, sp)
			switch c {
			case ClassPriority:
				prio = append(prio, sp.id)
			case ClassGood:
				m := bsmsg.New(false)
				m.AddBlock(blk)
				for k := 0; k < p.cfg.GoodMinBlocks; k++ {
					p.MessageReceived(sp.id, m)
				}
			}
		}
	}
	p.SetPriorityPeers(prio)
	for _, sp := range peers {
		if got := p.ClassOf(sp.id); got != sp.class {
			t.Fatalf("%s is %v", sp.id, got)
		}
	}
	return peers
}

func simConfig() Config {
	cfg := DefaultConfig()
	cfg.PeerRate = [NumClasses]int{}
	cfg.PeerPending = [NumClasses]int{}
	cfg.GlobalPending = 1 << 30
	return cfg
}

func TestPriorityFirstButNoClassStarves(t *testing.T) {
	p, clk := newTestPolicy(t, simConfig())
	peers := makePeers(t, p, [NumClasses]int{1, 2, 16})
	served := simulate(t, p, clk, peers, map[Class]bool{ClassPriority: true, ClassGood: true, ClassUnknown: true}, 4000)
	total := served[0] + served[1] + served[2]
	share := func(c Class) float64 { return float64(served[c]) / float64(total) }
	t.Logf("shares: priority %.3f good %.3f unknown %.3f", share(0), share(1), share(2))
	if share(ClassPriority) < 0.6 {
		t.Errorf("priority class got %.3f of service; it should get what the others' minimum shares leave", share(ClassPriority))
	}
	for _, c := range []Class{ClassGood, ClassUnknown} {
		if share(c) < 0.08 {
			t.Errorf("%v class got %.3f, below its 10%% minimum share", c, share(c))
		}
	}
}

// TestNoClassStarvesProperty: for random class populations, minimum shares
// and sets of backlogged classes, every backlogged class gets at least
// (nearly) its minimum share, and the highest backlogged class gets at
// least its own.
func TestNoClassStarvesProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for trial := 0; trial < 25; trial++ {
		cfg := simConfig()
		left := 100
		for _, c := range []Class{ClassUnknown, ClassGood, ClassPriority} {
			cfg.MinShare[c] = 1 + rng.Intn(min(left-3, 45))
			left -= cfg.MinShare[c]
		}
		var n [NumClasses]int
		backlogged := map[Class]bool{}
		for c := Class(0); c < NumClasses; c++ {
			n[c] = 1 + rng.Intn(6)
			backlogged[c] = rng.Intn(3) > 0
		}
		backlogged[Class(rng.Intn(int(NumClasses)))] = true
		p, clk := newTestPolicy(t, cfg)
		peers := makePeers(t, p, n)
		served := simulate(t, p, clk, peers, backlogged, 3000)
		total := 0
		for _, s := range served {
			total += s
		}
		for c := Class(0); c < NumClasses; c++ {
			got := float64(served[c]) / float64(total)
			if !backlogged[c] {
				if served[c] != 0 {
					t.Fatalf("trial %d: idle %v class served %d", trial, c, served[c])
				}
				continue
			}
			if want := float64(cfg.MinShare[c])/100 - 0.03; got < want {
				t.Fatalf("trial %d: %v class (%d peers, min share %d%%) got %.3f; config %+v backlogged %v served %v",
					trial, c, n[c], cfg.MinShare[c], got, cfg.MinShare, backlogged, served)
			}
		}
	}
}
