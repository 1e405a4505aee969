package exchange

import (
	"sort"
	"sync"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	cid "github.com/ipfs/go-cid"
)

// maxOrdered bounds the wants one peer's arrival order remembers; a want
// admitted past it sorts after every remembered one (as the newest).
const maxOrdered = 1 << 13

// arrival keeps the order in which one peer's admitted wants arrived, so
// the comparator can serve that peer's tasks oldest first.
//
// Why: boxo hands a custom TaskComparator every task comparison, also
// between two tasks of one peer, and its TaskInfo carries no want priority
// and no arrival time. A comparator that calls such tasks equal leaves the
// peer's heap in push order until the first pop, and from then on pops the
// newest task first: last in, first out. boxo's client gives a peer's wants
// descending priorities as its session hands them over, round by round
// (one message per 20 ms), and stock serves one peer's wants by priority;
// Kubo's DAG reader (`cat`, the gateway) asks for the next ten children of
// a node and reads them in order, so last-in-first-out made it wait for a
// whole batch before its first block.
//
// Within one message the engine meets the wants in map order (boxo's
// message keeps them in a map), so the filter's calls alone would number
// them at random; expect numbers a message's wants by descending priority
// before the engine sees it, as stock's queue orders them. (boxo v0.43's
// session itself hands over one round's wants in map order, so for its
// clients this is parity with stock, not a measured gain.)
type arrival struct {
	mu   sync.Mutex
	next uint64
	seq  map[cid.Cid]uint64
	// ranks holds the numbers expect gave the wants of the peer's latest
	// message, for add to take; the next message replaces it, so a want
	// the filter refused is not kept past it.
	ranks map[cid.Cid]uint64
}

// expect numbers the wants (not cancels) of a message about to reach the
// engine by descending priority, the client's order, so that add,
// called by the filter in whatever order the engine meets them, gives each
// its place. A message with fewer than two wants needs no ranks.
func (a *arrival) expect(wl []bsmsg.Entry) {
	wants := make([]bsmsg.Entry, 0, len(wl))
	for _, e := range wl {
		if !e.Cancel {
			wants = append(wants, e)
		}
	}
	if len(wants) < 2 {
		a.mu.Lock()
		a.ranks = nil
		a.mu.Unlock()
		return
	}
	sort.SliceStable(wants, func(i, j int) bool { return wants[i].Priority > wants[j].Priority })
	ranks := make(map[cid.Cid]uint64, len(wants))
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range wants {
		if _, ok := ranks[e.Cid]; !ok {
			a.next++
			ranks[e.Cid] = a.next
		}
	}
	a.ranks = ranks
}

// add records c's arrival unless it is remembered already (a repeated want
// keeps its first place, as boxo keeps the queued task).
func (a *arrival) add(c cid.Cid) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seq == nil {
		a.seq = map[cid.Cid]uint64{}
	}
	if _, ok := a.seq[c]; ok || len(a.seq) >= maxOrdered {
		return
	}
	if r, ok := a.ranks[c]; ok {
		a.seq[c] = r
		delete(a.ranks, c)
		return
	}
	a.next++
	a.seq[c] = a.next
}

// forget drops c (served or cancelled).
func (a *arrival) forget(cs ...cid.Cid) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range cs {
		delete(a.seq, c)
	}
	if len(a.seq) == 0 {
		a.seq = nil // let a burst's map go
	}
}

// reset forgets every want.
func (a *arrival) reset() {
	a.mu.Lock()
	a.seq = nil
	a.mu.Unlock()
}

// before reports whether x arrived before y; a want not remembered counts
// as the newest, and two such keep the queue's order.
func (a *arrival) before(x, y cid.Cid) bool {
	a.mu.Lock()
	sx, okx := a.seq[x]
	sy, oky := a.seq[y]
	a.mu.Unlock()
	switch {
	case okx && oky:
		return sx < sy
	default:
		return okx && !oky
	}
}

// len is the number of wants remembered.
func (a *arrival) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seq)
}

// sent forgets the CIDs a message answered.
func (a *arrival) sent(m bsmsg.BitSwapMessage) {
	bs, ps := m.Blocks(), m.BlockPresences()
	cs := make([]cid.Cid, 0, len(bs)+len(ps))
	for _, b := range bs {
		cs = append(cs, b.Cid())
	}
	for _, p := range ps {
		cs = append(cs, p.Cid)
	}
	a.forget(cs...)
}

// cancelled forgets the CIDs a message cancels.
func (a *arrival) cancelled(m bsmsg.BitSwapMessage) {
	var cs []cid.Cid
	for _, e := range m.Wantlist() {
		if e.Cancel {
			cs = append(cs, e.Cid)
		}
	}
	if len(cs) > 0 {
		a.forget(cs...)
	}
}
