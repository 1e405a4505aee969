package exchange

import (
	"hash/maphash"
	"sort"
	"sync"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"
)

// maxOrdered bounds the wants one peer's arrival order remembers; a want
// admitted past it sorts after every remembered one (as the newest).
const maxOrdered = 1 << 13

// keptLinks is how many links of the dag-pb nodes recently sent to one
// peer arrival keeps, the newest nodes' (see sawNodes), and maxNodeLinks
// how many of one node's: at 8 bytes a link, 16 KiB per peer at most. A
// UnixFS file's nodes have 174 links, so the root and intermediate nodes
// of a `cat` (one message of them) fit.
const (
	keptLinks    = 1 << 11
	maxNodeLinks = 1 << 10
)

// linkSeed keys the hashes arrival keeps of link targets instead of their
// CIDs (8 bytes instead of about 50); a collision only misorders two wants.
var linkSeed = maphash.MakeSeed()

// linkKey is the hash arrival keeps of a CID (see linkSeed).
func linkKey(c cid.Cid) uint64 { return maphash.String(linkSeed, c.KeyString()) }

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
// them at random; expect numbers a message's wants before the engine sees
// them. boxo v0.43's session hands over one round's wants in map order
// too, so their priorities say nothing of the order a reader needs them;
// but a reader asks for the children of a node it just got from us, so
// expect puts the children of the dag-pb nodes recently sent to the peer
// first, in link order, and the rest by descending priority, as stock's
// queue orders them.
type arrival struct {
	mu   sync.Mutex
	next uint64
	seq  map[cid.Cid]uint64
	// ranks holds the numbers expect gave the wants of the peer's latest
	// message, for add to take; the next message replaces it, so a want
	// the filter refused is not kept past it.
	ranks map[cid.Cid]uint64
	// nodes holds the links (linkKey of each target, in link order) of
	// the dag-pb nodes last sent to the peer, oldest first, keptLinks in
	// all; the slice is replaced, never written in place, so a copy read
	// under mu stays valid.
	nodes [][]uint64
}

// sawNodes keeps the links of the dag-pb nodes among bs, the blocks of a
// message sent to the peer: a reader that got a node asks next for its
// children, and expect serves those in the node's link order, the order
// the reader reads them.
func (a *arrival) sawNodes(bs []blocks.Block) {
	var add [][]uint64
	for _, b := range bs {
		if b.Cid().Type() != cid.DagProtobuf {
			continue
		}
		if ls := dagpbLinks(b.RawData(), maxNodeLinks); len(ls) > 1 {
			add = append(add, ls)
		}
	}
	if len(add) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	nodes := append(append(make([][]uint64, 0, len(a.nodes)+len(add)), a.nodes...), add...)
	total := 0
	for _, ls := range nodes {
		total += len(ls)
	}
	for total > keptLinks {
		total -= len(nodes[0])
		nodes = nodes[1:]
	}
	a.nodes = nodes
}

// dagpbLinks returns the linkKey of each of a dag-pb node's link targets
// in order, at most limit of them, reading the protobuf (PBNode field 2,
// PBLink field 1: the target's binary CID) without decoding the node; nil
// for data that is not such a node. A link without a target is skipped.
func dagpbLinks(data []byte, limit int) []uint64 {
	var out []uint64
	ok := eachBytesField(data, 2, func(link []byte) bool {
		var target []byte
		eachBytesField(link, 1, func(v []byte) bool { target = v; return false })
		if len(target) > 0 && len(out) < limit {
			out = append(out, maphash.Bytes(linkSeed, target))
		}
		return true
	})
	if !ok {
		return nil
	}
	return out
}

// eachBytesField calls fn with each length-delimited field numbered num of
// the protobuf message in data, in order, until fn returns false; it
// reports whether data parsed (up to where fn stopped).
func eachBytesField(data []byte, num protowire.Number, fn func([]byte) bool) bool {
	for len(data) > 0 {
		n, typ, k := protowire.ConsumeTag(data)
		if k < 0 {
			return false
		}
		data = data[k:]
		if n == num && typ == protowire.BytesType {
			v, k := protowire.ConsumeBytes(data)
			if k < 0 {
				return false
			}
			data = data[k:]
			if !fn(v) {
				return true
			}
			continue
		}
		if k = protowire.ConsumeFieldValue(n, typ, data); k < 0 {
			return false
		}
		data = data[k:]
	}
	return true
}

// expect numbers the wants (not cancels) of a message about to reach the
// engine, so that add, called by the filter in whatever order the engine
// meets them, gives each its place: first the children of the dag-pb nodes
// recently sent to the peer (see sawNodes), older node first, each node's
// in link order, the order a reader (`cat`, a gateway) reads them; then
// the rest by descending priority, the client's order. A message with
// fewer than two wants needs no ranks.
func (a *arrival) expect(wl []bsmsg.Entry) {
	type want struct {
		c          cid.Cid
		pri        int32
		node, link int // place among the nodes sent; node -1: none
	}
	wants := make([]want, 0, len(wl))
	for _, e := range wl {
		if !e.Cancel {
			wants = append(wants, want{c: e.Cid, pri: e.Priority, node: -1})
		}
	}
	a.mu.Lock()
	nodes := a.nodes
	if len(wants) < 2 {
		a.ranks = nil
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	if len(nodes) > 0 {
		at := make(map[uint64]int, len(wants))
		for i, w := range wants {
			at[linkKey(w.c)] = i
		}
		for ni, links := range nodes {
			for li, k := range links {
				if i, ok := at[k]; ok && wants[i].node < 0 {
					wants[i].node, wants[i].link = ni, li
				}
			}
		}
	}
	sort.SliceStable(wants, func(i, j int) bool {
		x, y := wants[i], wants[j]
		switch {
		case (x.node >= 0) != (y.node >= 0):
			return x.node >= 0
		case x.node >= 0 && x.node != y.node:
			return x.node < y.node
		case x.node >= 0:
			return x.link < y.link
		default:
			return x.pri > y.pri
		}
	})
	ranks := make(map[cid.Cid]uint64, len(wants))
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range wants {
		if _, ok := ranks[w.c]; !ok {
			a.next++
			ranks[w.c] = a.next
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

// sent forgets the CIDs a message answered and keeps the links of the
// dag-pb nodes it carried (sawNodes).
func (a *arrival) sent(m bsmsg.BitSwapMessage) {
	bs, ps := m.Blocks(), m.BlockPresences()
	a.sawNodes(bs)
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
