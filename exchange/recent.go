package exchange

import (
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// recentNodesMax is how many nodes recentNodes holds; the oldest goes
// first. A walk notes only the nodes its caller fetched with its own wants
// (the prefetcher asks for the rest), and what another session adopts is
// a node fetched just before that session started.
const recentNodesMax = 16

// recentNodesTTL is how long a noted node may be adopted.
const recentNodesTTL = 10 * time.Second

// recentNodes holds the links of the dag-pb nodes fetched lately outside
// the prefetcher (a path's root resolved before a walk, the caller's own
// wants), by link CID, so that a session whose caller asks for a link of
// a node it never saw (it read the node from the blockstore) can take
// the node over (prefetchSession.adopt). Only nodes whose sender is known
// are held: their links can be asked of it directly (DirectWants).
type recentNodes struct {
	mu    sync.Mutex
	nodes []*recentNode           // oldest first
	child map[cid.Cid]*recentNode // link CID to its node
}

// recentNode is one noted node; its fields are read-only once noted.
type recentNode struct {
	c            cid.Cid
	owner        uint64 // the id of the session that fetched it (0: none)
	small, large []link // as splitLinks split them
	from         peer.ID
	at           time.Time
}

// note holds the node c, split into its small and large links (each
// naming the node's sender), that the session whose id is owner fetched
// (0: no session). A node whose sender is unknown is not held.
func (r *recentNodes) note(c cid.Cid, owner uint64, small, large []link) {
	r.noteAt(c, owner, small, large, time.Now())
}

func (r *recentNodes) noteAt(c cid.Cid, owner uint64, small, large []link, now time.Time) {
	var from peer.ID
	switch {
	case len(small) > 0:
		from = small[0].from
	case len(large) > 0:
		from = large[0].from
	}
	if from == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.child == nil {
		r.child = map[cid.Cid]*recentNode{}
	}
	if len(r.nodes) >= recentNodesMax {
		r.forgetLocked(r.nodes[0])
		r.nodes[0] = nil
		r.nodes = r.nodes[1:]
	}
	n := &recentNode{c: c, owner: owner, small: small, large: large, from: from, at: now}
	r.nodes = append(r.nodes, n)
	for _, ls := range [][]link{small, large} {
		for _, l := range ls {
			r.child[l.c] = n
		}
	}
}

// forgetLocked drops n's links from the index, unless a later node holds
// them.
func (r *recentNodes) forgetLocked(n *recentNode) {
	for _, ls := range [][]link{n.small, n.large} {
		for _, l := range ls {
			if r.child[l.c] == n {
				delete(r.child, l.c)
			}
		}
	}
}

// lookup returns the node that links to c, when one was noted within
// recentNodesTTL by other than the session whose id is s.
func (r *recentNodes) lookup(c cid.Cid, s uint64) (*recentNode, bool) {
	return r.lookupAt(c, s, time.Now())
}

func (r *recentNodes) lookupAt(c cid.Cid, s uint64, now time.Time) (*recentNode, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.child[c]
	if !ok || n.owner == s || now.Sub(n.at) > recentNodesTTL {
		return nil, false
	}
	return n, true
}
