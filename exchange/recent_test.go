package exchange

import (
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

func testCid(t *testing.T, s string) cid.Cid {
	t.Helper()
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func testLinks(t *testing.T, tag string, n int, from peer.ID) []link {
	var ls []link
	for i := 0; i < n; i++ {
		ls = append(ls, link{c: testCid(t, fmt.Sprint(tag, i)), size: 1024, from: from})
	}
	return ls
}

func TestRecentNodesFindTheNodeOfEachLink(t *testing.T) {
	var r recentNodes
	now := time.Now()
	node := testCid(t, "node")
	small, large := testLinks(t, "small", 3, "peerA"), testLinks(t, "large", 2, "peerA")
	r.noteAt(node, 0, small, large, now)
	for _, l := range append(append([]link{}, small...), large...) {
		n, ok := r.lookupAt(l.c, 7, now)
		if !ok || n.c != node || n.from != "peerA" || len(n.small) != 3 || len(n.large) != 2 {
			t.Fatalf("lookup of %s: %+v, %v; want the node with its 3 small and 2 large links, from peerA", l.c, n, ok)
		}
	}
	if _, ok := r.lookupAt(testCid(t, "other"), 7, now); ok {
		t.Fatal("lookup of a CID no node links to found one")
	}
}

func TestRecentNodesLeaveOutTheirOwnSessionAndOldNodes(t *testing.T) {
	var r recentNodes
	now := time.Now()
	ls := testLinks(t, "l", 2, "peerA")
	r.noteAt(testCid(t, "node"), 3, ls, nil, now)
	if _, ok := r.lookupAt(ls[0].c, 3, now); ok {
		t.Fatal("the session that fetched the node was offered it")
	}
	if _, ok := r.lookupAt(ls[0].c, 4, now.Add(recentNodesTTL)); !ok {
		t.Fatal("another session was not offered the node within recentNodesTTL")
	}
	if _, ok := r.lookupAt(ls[0].c, 4, now.Add(recentNodesTTL+time.Millisecond)); ok {
		t.Fatal("a node older than recentNodesTTL was offered")
	}
}

func TestRecentNodesHoldOnlyNodesWithAKnownSender(t *testing.T) {
	var r recentNodes
	ls := testLinks(t, "l", 2, "")
	r.noteAt(testCid(t, "node"), 0, ls, nil, time.Now())
	if _, ok := r.lookupAt(ls[0].c, 1, time.Now()); ok {
		t.Fatal("a node whose sender is unknown was held")
	}
	if len(r.child) != 0 || len(r.nodes) != 0 {
		t.Fatalf("holds %d nodes, %d links; want none", len(r.nodes), len(r.child))
	}
}

func TestRecentNodesDropTheOldestPastTheirBound(t *testing.T) {
	var r recentNodes
	now := time.Now()
	shared := testLinks(t, "shared", 1, "peerA")[0]
	var first []link
	for i := 0; i < recentNodesMax+1; i++ {
		ls := testLinks(t, fmt.Sprint("n", i, "/"), 2, "peerA")
		if i == 0 {
			first = ls
		}
		if i == 0 || i == 5 {
			ls = append(ls, shared) // a link two nodes share
		}
		r.noteAt(testCid(t, fmt.Sprint("node", i)), 0, ls, nil, now)
	}
	if len(r.nodes) != recentNodesMax {
		t.Fatalf("holds %d nodes, want %d", len(r.nodes), recentNodesMax)
	}
	if _, ok := r.lookupAt(first[0].c, 1, now); ok {
		t.Fatal("a link of the node dropped is still found")
	}
	if n, ok := r.lookupAt(shared.c, 1, now); !ok || n.c != testCid(t, "node5") {
		t.Fatalf("a link the dropped node shared with a later one: %+v, %v; want the later node", n, ok)
	}
	if want := recentNodesMax*2 + 1; len(r.child) != want {
		t.Fatalf("indexes %d links, want %d", len(r.child), want)
	}
}
