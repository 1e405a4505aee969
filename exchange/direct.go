package exchange

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	iface "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/bitswap/tracer"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// DirectTimeout is how long a direct want waits for its block or a
// DONT_HAVE before it ends without a block (and its session's caller asks
// Bitswap's session for it, as for any prefetch want that failed).
const DirectTimeout = 3 * time.Second

// directFromMax bounds the dag-pb CIDs whose sender DirectWants remembers.
const directFromMax = 1 << 14

// DirectWants sends the prefetcher's wants as want-blocks straight to the
// peer that sent the parent node, on a long-lived Bitswap stream of its
// own, as soon as they are queued, instead of through boxo's session: a
// boxo client sends a peer at most one message per 20 ms, and with the
// prefetch width's wants all out the walk waited for the next round,
// half-idle (docs/bitswap.md, "Sixteenth pass").
//
// The blocks and DONT_HAVEs come back through Kubo's Bitswap like any
// other (its receiver decodes and hashes each block). boxo's client counts
// each block and drops it, as no session of its own wants it; then the
// server's tracer hands the message here ([DirectWants.MessageReceived]),
// and d tells the server of the blocks for its ledger ([DirectWants.OnReceived]).
// The client's tracer ([DirectWants.Senders]) notes, before the client
// hands blocks to its sessions, which peer sent each dag-pb node: its
// links' wants go to that peer, within the peer's window: what it can
// answer in [directQueueTime] at its measured rate (see want). A want that gets a DONT_HAVE, or nothing within [DirectTimeout], or
// whose message could not be sent, ends without a block, and the
// session's caller then fetches the block through boxo itself; a want
// still out when its session ends is cancelled at the peer.
type DirectWants struct {
	net iface.BitSwapNetwork
	ctx context.Context

	mu      sync.Mutex
	waiting map[cid.Cid][]*directWant
	peers   map[peer.ID]*directPeer
	from    map[cid.Cid]peer.ID // the sender of recent dag-pb blocks
	fromQ   []cid.Cid           // from's keys, oldest first
	prio    int32
	// rates holds the peers' measured delivery rates (see arrivedLocked).
	rates map[peer.ID]*peerRate
	// spills maps the CIDs of spilled wants to the peer they were meant
	// for; alts maps such a peer to those that sent spilled blocks of
	// its instead, through boxo's session (see noteSpilled). spilling is
	// spills' size, read without the lock.
	spills   map[cid.Cid]spill
	alts     map[peer.ID][]peer.ID
	spilling atomic.Int32
	// haves holds the CIDs whose first HAVE starts a direct want-block
	// (see watchHave); true once one did. watching is its size, read
	// without the lock.
	haves    map[cid.Cid]bool
	watching atomic.Int32

	// received is told of the blocks the direct wants got, as boxo's
	// client tells its server of the blocks its sessions wanted (the
	// server's ledger counts the bytes each peer sent us, which `ipfs
	// bitswap ledger` shows); nil: nobody.
	received atomic.Pointer[func(peer.ID, []blocks.Block)]

	sent, blocks, dontHaves, timeouts, failed, messages, spilled atomic.Uint64
	attached                                                     atomic.Bool
	redirected                                                   uint64 // under mu
}

// DirectStats counts what the direct wants did.
type DirectStats struct {
	// Sent counts want-blocks sent directly: prefetch wants, a reader's
	// own runs (GetBlocks) and the want-blocks for first HAVEs
	// (watchHave).
	Sent uint64 `json:"sent"`
	// Messages counts the messages that carried them (and cancels).
	Messages uint64 `json:"messages"`
	// Blocks counts the blocks that answered them.
	Blocks uint64 `json:"blocks"`
	// DontHaves counts the DONT_HAVEs that answered them.
	DontHaves uint64 `json:"dontHaves"`
	// Timeouts counts wants that got no answer within DirectTimeout.
	Timeouts uint64 `json:"timeouts"`
	// Failed counts wants whose message could not be sent.
	Failed uint64 `json:"failed"`
	// Redirected counts wants sent to another peer than their parent's
	// sender, one that had sent blocks spilled from the sender, because
	// the sender's window was full (its measured rate times
	// directQueueTime) or it was directPreferOwn times slower.
	Redirected uint64 `json:"redirected"`
	// Spilled counts wants not sent direct because their peer's window
	// was full and no other peer known to hold its blocks had room;
	// boxo's session asked for them instead.
	Spilled uint64 `json:"spilled"`
	// Waiting is the direct wants out now. boxo's wantlist (`ipfs bitswap
	// wantlist`) does not list them.
	Waiting int `json:"waiting"`
}

type directWant struct {
	c       cid.Cid
	p       peer.ID
	owner   *prefetchSession
	at      time.Time
	deliver func(b blocks.Block) // nil b: ended without a block
	// size is the block's expected size, which counts against the peer's
	// window; 0: the want is sent whatever the window.
	size int64
	// meant is the peer the want was meant for when it went to p
	// instead, because meant's window was full.
	meant peer.ID
	// boxo marks a want boxo's client has too (see watchHave): the
	// client tells the server of its block itself.
	boxo bool
}

type directPeer struct {
	id      peer.ID
	wants   []*directWant
	cancels []cid.Cid
	sending bool
	sender  iface.MessageSender
	out     int       // wants waiting on the peer
	outSize int64     // their sizes
	used    time.Time // when a want was last sent or answered
	// mark is when the peer's time with wants out was last counted into
	// its rate: when its first want went out, or its last block came.
	mark time.Time
}

// NewDirectWants returns direct wants that send nothing until Start; as a
// tracer it notes the senders of dag-pb blocks from the first message.
func NewDirectWants() *DirectWants {
	return &DirectWants{waiting: map[cid.Cid][]*directWant{},
		peers: map[peer.ID]*directPeer{}, from: map[cid.Cid]peer.ID{}, haves: map[cid.Cid]bool{},
		rates: map[peer.ID]*peerRate{}, spills: map[cid.Cid]spill{}, alts: map[peer.ID][]peer.ID{},
		prio: math.MaxInt32}
}

// OnReceived sets f to be told of the blocks each peer answered direct
// wants with: Bitswap's Server.ReceivedBlocks, which boxo's client calls
// only for blocks its own sessions wanted.
func (d *DirectWants) OnReceived(f func(peer.ID, []blocks.Block)) { d.received.Store(&f) }

// Start sends the wants from h until ctx ends, on a Bitswap network of
// d's own on h that only sends: the replies come through the node's own
// Bitswap, whose tracers d must be (see [SplitTracer]). Call it once,
// before the first want.
func (d *DirectWants) Start(ctx context.Context, h host.Host) {
	// The network is never started, so it needs a connect-event manager
	// of its own: bsnet marks a peer it failed to open a stream to as
	// unresponsive there, and without one that is a nil dereference (a
	// crash of the node on the first unreachable peer). This one has no
	// listeners; Kubo's Bitswap keeps its own.
	d.net = bsnet.NewFromIpfsHost(h, bsnet.WithConnectEventManager(iface.NewConnectEventManager()))
	d.ctx = ctx
	go d.expire()
}

// SplitTracer returns a tracer that passes received messages to recv and
// sent ones to sent (either may be nil). boxo's Bitswap calls the tracer
// given to its server at the end of the server's handling of each message,
// after its client counted the blocks (and checked the blockstore for
// duplicates), which is where [DirectWants] must see them: a leaf it
// hands on is written ahead at once, and the client would count it as a
// duplicate. The policy's tracer, which must see a message before the
// server's engine, goes to the client (called first); see
// plugin/bitswap.go.
func SplitTracer(recv, sent tracer.Tracer) tracer.Tracer {
	return splitTracer{recv, sent}
}

type splitTracer struct{ recv, sent tracer.Tracer }

func (t splitTracer) MessageReceived(p peer.ID, m bsmsg.BitSwapMessage) {
	if t.recv != nil {
		t.recv.MessageReceived(p, m)
	}
}

func (t splitTracer) MessageSent(p peer.ID, m bsmsg.BitSwapMessage) {
	if t.sent != nil {
		t.sent.MessageSent(p, m)
	}
}

// Attach records that d is installed as the tracer of the node's
// Bitswap server; until then Attached is false and the prefetcher must not
// send through d.
func (d *DirectWants) Attach() { d.attached.Store(true) }

// Attached reports whether Attach was called.
func (d *DirectWants) Attached() bool { return d != nil && d.attached.Load() }

// Stats returns the counters (zero for nil).
func (d *DirectWants) Stats() DirectStats {
	if d == nil {
		return DirectStats{}
	}
	d.mu.Lock()
	waiting := 0
	for _, ws := range d.waiting {
		waiting += len(ws)
	}
	redirected := d.redirected
	d.mu.Unlock()
	return DirectStats{Sent: d.sent.Load(), Messages: d.messages.Load(), Blocks: d.blocks.Load(),
		DontHaves: d.dontHaves.Load(), Timeouts: d.timeouts.Load(), Failed: d.failed.Load(),
		Redirected: redirected, Spilled: d.spilled.Load(), Waiting: waiting}
}

// sender returns the peer that sent the dag-pb block c, if it was received
// lately.
func (d *DirectWants) sender(c cid.Cid) (peer.ID, bool) {
	if d == nil {
		return "", false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.from[c]
	return p, ok
}

// cancelAtPeerLocked queues a cancel of w, which has ended, for its peer;
// it returns the peer when a sender must be started for it.
func (d *DirectWants) cancelAtPeerLocked(w *directWant) *directPeer {
	dp := d.peers[w.p]
	if dp == nil {
		return nil
	}
	dp.cancels = append(dp.cancels, w.c)
	if dp.sending {
		return nil
	}
	dp.sending = true
	return dp
}

// want sends a want-block for each of ws to its peer; each ends through
// its deliver. A want with a size goes to its own peer if it has the
// room for it in its window (see windowLocked) beside the wants out at it
// already, unless another peer that sent blocks spilled from it before
// (see noteSpilled) has room and would answer it more than
// directPreferOwn times sooner at its measured rate; with no room at its
// own peer, it goes to the other peer with room that answers soonest. Its
// peer becomes that one. A want no peer has the room for is not sent: it
// is returned in spilled, and never delivered. Until a peer's window has
// been full once, its wants go to it alone or to boxo's session.
//
// Against a slow provider that sent a file's root, the reader's runs thus
// go to the slow peer only as much as it answers within directQueueTime,
// the rest first to boxo's session, which finds the other providers
// (want-have to all), and then straight to those that answered.
func (d *DirectWants) want(ws []*directWant) (spilled []*directWant) {
	now := time.Now()
	d.mu.Lock()
	var start []*directPeer
	for _, w := range ws {
		dp := d.peerLocked(w.p)
		if w.size > 0 {
			// Its own peer while that fits the want and is not much
			// slower (directPreferOwn) than the soonest other peer with
			// room among those that sent blocks spilled from it.
			var best *directPeer
			var soonest time.Duration
			for _, q := range d.alts[w.p] {
				qp := d.peerLocked(q)
				if !d.fitsLocked(qp, w.size) {
					continue
				}
				if t := d.finishLocked(qp, w.size); best == nil || t < soonest {
					best, soonest = qp, t
				}
			}
			if d.fitsLocked(dp, w.size) && (best == nil || soonest == math.MaxInt64 ||
				d.finishLocked(dp, w.size) <= directPreferOwn*soonest) {
				best = dp
			}
			if best == nil {
				spilled = append(spilled, w)
				if len(d.spills) < directSpillsMax {
					if _, ok := d.spills[w.c]; !ok {
						d.spilling.Add(1)
					}
					d.spills[w.c] = spill{w.p, now}
				}
				continue
			}
			if best != dp {
				d.redirected++
				w.meant, w.p, dp = w.p, best.id, best
			}
		}
		w.at = now
		d.waiting[w.c] = append(d.waiting[w.c], w)
		dp.wants = append(dp.wants, w)
		if dp.out == 0 {
			dp.mark = now
		}
		dp.out++
		dp.outSize += w.size
		dp.used = now
		if !dp.sending {
			dp.sending = true
			start = append(start, dp)
		}
	}
	d.mu.Unlock()
	d.spilled.Add(uint64(len(spilled)))
	for _, dp := range start {
		go d.send(dp)
	}
	return spilled
}

// send writes dp's queued wants and cancels, all that queued up while the
// previous message was written in one message, until none are left.
func (d *DirectWants) send(dp *directPeer) {
	for {
		d.mu.Lock()
		ws, cs := dp.wants, dp.cancels
		dp.wants, dp.cancels = nil, nil
		if len(ws) == 0 && len(cs) == 0 {
			dp.sending = false
			if dp.out == 0 && dp.sender == nil {
				delete(d.peers, dp.id)
			}
			d.mu.Unlock()
			return
		}
		msg := bsmsg.New(false)
		n := 0
		for _, w := range ws {
			// Only wants still waiting (not ended or cancelled meanwhile).
			if !d.isWaitingLocked(w) {
				continue
			}
			d.prio--
			if d.prio <= 0 {
				d.prio = math.MaxInt32
			}
			msg.AddEntry(w.c, d.prio, pb.Message_Wantlist_Block, true)
			n++
		}
		for _, c := range cs {
			msg.Cancel(c)
		}
		s := dp.sender
		d.mu.Unlock()
		if msg.Empty() {
			continue
		}
		err := d.sendMsg(dp, s, msg)
		if err != nil {
			d.fail(ws)
			continue
		}
		d.sent.Add(uint64(n))
		d.messages.Add(1)
	}
}

// sendMsg writes msg on dp's stream, opening it first if needed; a failed
// write resets the stream so the next message opens a new one.
func (d *DirectWants) sendMsg(dp *directPeer, s iface.MessageSender, msg bsmsg.BitSwapMessage) error {
	if s == nil {
		var err error
		s, err = d.net.NewMessageSender(d.ctx, dp.id, &iface.MessageSenderOpts{
			MaxRetries: 1, SendTimeout: DirectTimeout, SendErrorBackoff: 50 * time.Millisecond})
		if err != nil {
			return err
		}
		d.mu.Lock()
		dp.sender = s
		d.mu.Unlock()
	}
	if err := s.SendMsg(d.ctx, msg); err != nil {
		_ = s.Reset()
		d.mu.Lock()
		if dp.sender == s {
			dp.sender = nil
		}
		d.mu.Unlock()
		return err
	}
	return nil
}

// fail ends ws that are still waiting without a block (their message was
// not sent).
func (d *DirectWants) fail(ws []*directWant) {
	d.mu.Lock()
	var ended []*directWant
	for _, w := range ws {
		if d.removeLocked(w) {
			ended = append(ended, w)
		}
	}
	d.mu.Unlock()
	d.failed.Add(uint64(len(ended)))
	for _, w := range ended {
		w.deliver(nil)
	}
}

func (d *DirectWants) isWaitingLocked(w *directWant) bool {
	for _, x := range d.waiting[w.c] {
		if x == w {
			return true
		}
	}
	return false
}

// removeLocked takes w off the waiting list; false when it was not on it.
func (d *DirectWants) removeLocked(w *directWant) bool {
	ws := d.waiting[w.c]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			if len(ws) == 0 {
				delete(d.waiting, w.c)
			} else {
				d.waiting[w.c] = ws
			}
			if dp := d.peers[w.p]; dp != nil {
				dp.out--
				dp.outSize -= w.size
			}
			return true
		}
	}
	return false
}

// dropOwner cancels at their peers the wants of owner (its session ended)
// still waiting; they end without being delivered.
func (d *DirectWants) dropOwner(owner *prefetchSession) {
	if d == nil {
		return
	}
	d.mu.Lock()
	var mine []*directWant
	for _, ws := range d.waiting {
		for _, w := range ws {
			if w.owner == owner {
				mine = append(mine, w)
			}
		}
	}
	var start []*directPeer
	for _, w := range mine {
		d.removeLocked(w)
		if dp := d.cancelAtPeerLocked(w); dp != nil {
			start = append(start, dp)
		}
	}
	d.mu.Unlock()
	for _, dp := range start {
		go d.send(dp)
	}
}

// MessageReceived implements boxo's tracer.Tracer: the blocks and
// DONT_HAVEs of m answer the direct wants waiting on p.
func (d *DirectWants) MessageReceived(p peer.ID, m bsmsg.BitSwapMessage) {
	if m == nil {
		return
	}
	blks := m.Blocks()
	dont := m.DontHaves()
	if len(blks) == 0 && len(dont) == 0 {
		return
	}
	type delivery struct {
		w *directWant
		b blocks.Block
	}
	var out []delivery
	var start []*directPeer
	// A want answered by another peer than the one asked (the block came
	// through boxo's session, say), or answered with a DONT_HAVE, is
	// cancelled at the peer asked: its ledger keeps a want-block until
	// then, and would send the block later.
	cancel := func(w *directWant) {
		if dp := d.cancelAtPeerLocked(w); dp != nil {
			start = append(start, dp)
		}
	}
	d.mu.Lock()
	for _, b := range blks {
		c := b.Cid()
		ws := d.waiting[c]
		if len(ws) == 0 {
			continue
		}
		counted := false
		for _, w := range ws {
			if dp := d.peers[w.p]; dp != nil {
				now := time.Now()
				dp.used = now
				if w.p == p && !counted {
					counted = true
					d.arrivedLocked(dp, len(b.RawData()), now)
				}
			}
			d.removeLocked(w)
			if w.p != p {
				cancel(w)
			}
			out = append(out, delivery{w, b})
		}
	}
	nBlocks := len(out)
	for _, c := range dont {
		for _, w := range d.waiting[c] {
			if w.p == p {
				if w.meant != "" {
					// p does not hold what meant does after all.
					d.alts[w.meant] = slices.DeleteFunc(d.alts[w.meant], func(q peer.ID) bool { return q == p })
				}
				d.removeLocked(w)
				cancel(w)
				out = append(out, delivery{w, nil})
			}
		}
	}
	d.mu.Unlock()
	for _, dp := range start {
		go d.send(dp)
	}
	if f := d.received.Load(); nBlocks > 0 && f != nil {
		got := make([]blocks.Block, 0, nBlocks)
		seen := map[cid.Cid]bool{}
		for _, x := range out[:nBlocks] {
			if c := x.b.Cid(); !seen[c] && !x.w.boxo {
				seen[c] = true
				got = append(got, x.b)
			}
		}
		if len(got) > 0 {
			(*f)(p, got)
		}
	}
	d.blocks.Add(uint64(nBlocks))
	d.dontHaves.Add(uint64(len(out) - nBlocks))
	for _, x := range out {
		x.w.deliver(x.b)
	}
}

// MessageSent implements boxo's tracer.Tracer; it does nothing.
func (d *DirectWants) MessageSent(peer.ID, bsmsg.BitSwapMessage) {}

// Senders returns the tracer that notes which peer sent each dag-pb block,
// for its children's wants (see the prefetcher's links). It must see each
// message before boxo's client hands the blocks to its sessions, so it
// goes to the client's tracer, while d itself goes to the server's (see
// [SplitTracer]).
func (d *DirectWants) Senders() tracer.Tracer { return senders{d} }

type senders struct{ d *DirectWants }

func (t senders) MessageReceived(p peer.ID, m bsmsg.BitSwapMessage) {
	if m == nil {
		return
	}
	d := t.d
	if d.watching.Load() > 0 {
		d.haveSeen(p, m.Haves())
	}
	if d.spilling.Load() > 0 {
		d.noteSpilled(p, m.Blocks())
	}
	var locked bool
	for _, b := range m.Blocks() {
		c := b.Cid()
		if c.Type() != cid.DagProtobuf {
			continue
		}
		if !locked {
			d.mu.Lock()
			locked = true
		}
		if _, ok := d.from[c]; !ok {
			d.fromQ = append(d.fromQ, c)
			if len(d.fromQ) > directFromMax {
				delete(d.from, d.fromQ[0])
				d.fromQ = d.fromQ[1:]
			}
		}
		d.from[c] = p
	}
	if locked {
		d.mu.Unlock()
	}
}

func (senders) MessageSent(peer.ID, bsmsg.BitSwapMessage) {}

// watchHave makes the first HAVE for c, from any peer, send that peer a
// direct want-block for c at once, until the returned func is called.
// It is for a want boxo's client is about to broadcast as a want-have
// (a fetch outside any session, such as the root Kubo resolves before a
// walk): boxo's session sends its want-block only on
// the peer's next 20 ms message round, which was 20 of the 25 ms a
// `pin add` took to fetch its root on loopback (docs/bitswap.md,
// "Seventeenth pass"). The block comes back through boxo's client,
// which hands it to its session as to any want of its own, so the
// session's want-block, if not sent yet, never is. If the direct block
// takes longer than boxo's round, the block comes twice; watching every
// want a session sent before its first block did that often enough for
// the integration test to see 2 duplicates in 1,030 blocks, so only the
// fetch outside a session is watched.
func (d *DirectWants) watchHave(c cid.Cid) (unwatch func()) {
	if d == nil || !d.attached.Load() || d.net == nil {
		return func() {}
	}
	d.mu.Lock()
	if _, ok := d.haves[c]; ok {
		d.mu.Unlock()
		return func() {} // watched already: the first watcher unwatches
	}
	d.haves[c] = false
	d.watching.Add(1)
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		if _, ok := d.haves[c]; ok {
			delete(d.haves, c)
			d.watching.Add(-1)
		}
		d.mu.Unlock()
	}
}

// haveSeen sends p a direct want-block for each of haves watched and not
// asked for yet (see watchHave).
func (d *DirectWants) haveSeen(p peer.ID, haves []cid.Cid) {
	var ws []*directWant
	d.mu.Lock()
	for _, c := range haves {
		if asked, ok := d.haves[c]; ok && !asked {
			d.haves[c] = true
			ws = append(ws, &directWant{c: c, p: p, boxo: true, deliver: func(blocks.Block) {}})
		}
	}
	d.mu.Unlock()
	if len(ws) > 0 {
		d.want(ws)
	}
}

// Tracers returns a tracer that passes every message to each of ts in
// turn, skipping nils.
func Tracers(ts ...tracer.Tracer) tracer.Tracer {
	var out multiTracer
	for _, t := range ts {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

type multiTracer []tracer.Tracer

func (t multiTracer) MessageReceived(p peer.ID, m bsmsg.BitSwapMessage) {
	for _, x := range t {
		x.MessageReceived(p, m)
	}
}

func (t multiTracer) MessageSent(p peer.ID, m bsmsg.BitSwapMessage) {
	for _, x := range t {
		x.MessageSent(p, m)
	}
}

// expire ends the wants that waited past DirectTimeout and cancels them
// at their peers, until d's context ends.
func (d *DirectWants) expire() {
	t := time.NewTicker(DirectTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case now := <-t.C:
			d.expireAt(now)
		}
	}
}

// expireAt ends the wants sent before now - DirectTimeout.
func (d *DirectWants) expireAt(now time.Time) {
	d.mu.Lock()
	var ended []*directWant
	var start []*directPeer
	for _, ws := range d.waiting {
		for _, w := range ws {
			if now.Sub(w.at) < DirectTimeout {
				continue
			}
			ended = append(ended, w)
		}
	}
	for _, w := range ended {
		d.removeLocked(w)
		if dp := d.cancelAtPeerLocked(w); dp != nil {
			start = append(start, dp)
		}
	}
	for c, sp := range d.spills {
		if now.Sub(sp.at) >= directRateTTL {
			delete(d.spills, c)
			d.spilling.Add(-1)
		}
	}
	for id, r := range d.rates {
		if now.Sub(r.used) >= directRateTTL {
			delete(d.rates, id)
			delete(d.alts, id)
		}
	}
	// A peer with nothing waiting for a while gives its stream back.
	var idle []iface.MessageSender
	for id, dp := range d.peers {
		if dp.out == 0 && !dp.sending && now.Sub(dp.used) >= DirectTimeout {
			if dp.sender != nil {
				idle = append(idle, dp.sender)
			}
			delete(d.peers, id)
		}
	}
	d.mu.Unlock()
	for _, s := range idle {
		_ = s.Reset()
	}
	d.timeouts.Add(uint64(len(ended)))
	for _, dp := range start {
		go d.send(dp)
	}
	for _, w := range ended {
		w.deliver(nil)
	}
}
