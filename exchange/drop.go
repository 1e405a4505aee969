package exchange

import (
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/libp2p/go-libp2p/core/peer"
)

// dropWants empties m, a wantlist of n entries from a non-priority peer
// whose breaker stayed open through its hold (see hold), before boxo sees
// it, and counts its wants as shed by the breaker.
//
// Handed to boxo, such a wantlist costs the server the engine's
// MessageReceived (the filter denies every want), n DONT_HAVE tasks in the
// peer task queue, and envelopes built and sent by the same workers that
// serve the priority peers: about 5 ms of CPU per 1,000 wants, all for a
// peer the policy has already decided to shed entirely. An empty message
// is dropped by boxo's engine at its first check (Engine.MessageReceived:
// m.Empty()) and does nothing in the client. The peer gets no DONT_HAVE
// for these wants; Bitswap clients already live with servers that drop
// wants silently (boxo's own server drops those past
// MaxQueuedWantlistEntriesPerPeer), and a peer whose breaker is open was
// disconnected when it tripped (DisconnectAbusive).
//
// The message must carry no blocks or presences (the caller checks), so
// only the peer's wants are lost. Reset(false) also clears the full flag:
// an empty full wantlist would make boxo forget what the peer asked before.
func (p *Policy) dropWants(id peer.ID, m bsmsg.BitSwapMessage, n int) {
	st := p.peer(id)
	c := p.ClassOf(id)
	st.requested.Add(uint64(n))
	st.denied.Add(uint64(n))
	p.shed[c][ReasonBreaker].Add(uint64(n))
	p.dropped.Add(1)
	m.Reset(false)
}
