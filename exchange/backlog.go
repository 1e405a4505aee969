package exchange

// backlogFlood counts one want of st refused for its backlog in the current
// rate window and reports whether that makes the peer a flooder: more wants
// refused for backlog within one second than its whole pending limit, while
// we answer it mostly with DONT_HAVE (the caller checks that). Such a peer
// keeps asking, for blocks we do not have, faster than the server answers
// it, with a full backlog of its earlier wants still unanswered.
//
// The rate rule (floodOver) alone misses it when the server is the
// bottleneck: a flooder's wants reach the filter only as fast as the server
// drains its backlog (the hold waits for that, and its stream is not read
// meanwhile), so on a busy machine 32 peers each offering 10,000 wants/s
// were handled at about 4,200/s each, under the 5,000/s limit, never
// tripped, and cost the server a full core of DONT_HAVEs (W5, fifth pass
// in docs/bitswap.md); on an idle machine the same flood was handled
// faster than 5,000/s and tripped within half a second. Whether the
// flooders tripped decided whether the priority fetch took 1.1x or 3-10x
// its idle time. A client that sends one large wantlist has at most one
// backlog's worth refused and is not tripped; a peer we mostly send blocks
// to (a busy client) never is.
func (p *Policy) backlogFlood(st *peerState, limit int64) bool {
	return limit > 0 && st.winBacklog.Add(1) == limit+1
}
