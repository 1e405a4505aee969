package exchange

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/bitswap/tracer"
	cid "github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// Compile-time checks that the policy fits boxo's hooks.
var (
	_ tracer.Tracer                 = (*Policy)(nil)
	_ server.PeerBlockRequestFilter = (*Policy)(nil).Filter
	_ server.TaskComparator         = (*Policy)(nil).Compare
)

// Reason says why a want was shed.
type Reason int

// Shed reasons.
const (
	// ReasonBreaker: the peer's own breaker is open or half-open.
	ReasonBreaker Reason = iota
	// ReasonOverload: the global breaker of the peer's class is shedding.
	ReasonOverload
	// ReasonBacklog: the peer has too many entries queued.
	ReasonBacklog
	numReasons
)

// String names the reason as the stats and metrics show it.
func (r Reason) String() string {
	return [...]string{"breaker", "overload", "backlog"}[r]
}

// Fault is why a peer's breaker tripped.
type Fault int

// Faults.
const (
	// FaultFlood: the peer sent wants faster than its live rate limit.
	FaultFlood Fault = iota
	// FaultGarbage: malformed or oversized wantlists, repeatedly.
	FaultGarbage
	// FaultTimeout: the caller reported repeated timeouts.
	FaultTimeout
	numFaults
)

// String names the fault as the stats and metrics show it.
func (f Fault) String() string {
	return [...]string{"flood", "garbage", "timeout"}[f]
}

// maxCidBytes is the longest CID the policy takes for well-formed
// (boxo's engine drops longer ones before the filter; the tracer sees them).
const maxCidBytes = 168

// peerState is what the policy knows of one remote peer. Counters are
// atomics; the rate window and strikes have their own small locks, taken
// only by that peer's message handling and the sampler.
type peerState struct {
	good      atomic.Bool
	slow      atomic.Bool  // the connection is rated slow (see WithSlowPeers)
	class     atomic.Int32 // last class seen by the filter (for the sampler)
	br        *Breaker
	pending   atomic.Int64 // entries queued for the peer (estimate)
	requested atomic.Uint64
	denied    atomic.Uint64
	blocksOut atomic.Uint64
	// Answers sent to the peer in the current and the previous rate
	// window: a peer whose recent wants we mostly answer with DONT_HAVE is
	// a flooder, one we mostly serve blocks to is a client. Windows, not
	// lifetime totals, so blocks fetched earlier buy no flood allowance.
	winDontHaves, winBlocks   atomic.Int64
	winBacklog                atomic.Int64 // wants refused for backlog in the window (backlog.go)
	lastDontHaves, lastBlocks int64        // under mu
	blocksIn                  atomic.Uint64
	pass                      atomic.Uint64 // virtual time (see comparator.go)
	active                    atomic.Int64  // unix nanos of the last want
	tickReqs                  atomic.Int64  // wants since the sampler's last tick
	fl                        flight        // blocks sent, not yet acknowledged (inflight.go)
	order                     arrival       // admitted wants in arrival order (order.go)

	mu       sync.Mutex // guards the fields below
	winStart time.Time
	winCount int
	lastRate int
	strikes  []time.Time
}

// limits are the live, load-scaled limits; replaced whole on each tick.
type limits struct {
	rate    [NumClasses]int64
	pending [NumClasses]int64
	load    float64
	level   int
}

// Policy is the adaptive Bitswap server policy. Create it with [New]; its
// Filter, Compare and tracer methods are handed to boxo. All methods are safe
// for concurrent use.
type Policy struct {
	cfg      Config
	now      func() time.Time
	pressure func() int
	queueCap atomic.Int64
	outCap   atomic.Int64 // the server's MaxOutstandingBytesPerPeer, 0 if unknown
	// capOrdered counts comparisons decided by the in-flight estimate.
	capOrdered atomic.Uint64

	minShare    [NumClasses]atomic.Int64
	peerRate    [NumClasses]atomic.Int64
	peerPending [NumClasses]atomic.Int64
	globalPend  atomic.Int64

	lim      atomic.Pointer[limits]
	priority atomic.Pointer[map[peer.ID]struct{}]
	// peers is read on every want and written when a peer first appears:
	// read-heavy, write-rare, which is what sync.Map is for.
	peers  sync.Map // peer.ID -> *peerState
	global [NumClasses]*Breaker

	classPending [NumClasses]atomic.Int64
	active       [NumClasses]atomic.Int64 // peers with entries pending
	vt           atomic.Uint64            // virtual time: pass of the last peer served

	accepted    [NumClasses]atomic.Uint64
	served      [NumClasses]atomic.Uint64
	shed        [NumClasses][numReasons]atomic.Uint64
	trips       [numFaults]atomic.Uint64
	peerTrans   [numStates][numStates]atomic.Uint64
	globalTrans [numStates][numStates]atomic.Uint64
	malformed   atomic.Uint64

	onTrip atomic.Pointer[func(peer.ID, Fault)]

	held    atomic.Uint64 // wantlists held back (see hold)
	dropped atomic.Uint64 // held wantlists dropped, the breaker still open (drop.go)
	// slowPeer says whether a peer's connection is slow (the connection
	// manager's quality); the sampler asks it for good peers each tick.
	slowPeer  func(peer.ID) bool
	slowPeers atomic.Int64                               // good peers demoted at the last tick
	sleep     func(ctx context.Context, d time.Duration) // waits d or until ctx ends

	ctx       context.Context // ends with Close; bounds holds
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// Option changes how [New] builds a policy.
type Option func(*Policy)

// WithClock replaces time.Now (for tests).
func WithClock(now func() time.Time) Option { return func(p *Policy) { p.now = now } }

// WithPressure sets the source of the node's pressure level: 0 normal,
// 1 elevated, 2 critical (for example the health component's level).
func WithPressure(level func() int) Option { return func(p *Policy) { p.pressure = level } }

// WithQueueCap tells the policy the server's queued-entries cap per peer
// (boxo's MaxQueuedWantlistEntriesPerPeer), so the pending estimate never
// exceeds what the server can hold.
func WithQueueCap(n int) Option { return func(p *Policy) { p.queueCap.Store(int64(n)) } }

// WithSlowPeers sets the source of connection quality: slow(id) is true
// when the connection to id is slow (for example the connection manager's
// Quality.Slow, latency above its SlowLatency). A slow peer is not served
// as ClassGood, whatever its exchange record: it stays in ClassUnknown
// until its connection recovers, so a slow link never takes the good
// class's share. The sampler asks once per tick, per good peer; slow must
// be safe for concurrent use.
func WithSlowPeers(slow func(peer.ID) bool) Option {
	return func(p *Policy) { p.slowPeer = slow }
}

// withSleep replaces the hold's wait (for tests).
func withSleep(f func(context.Context, time.Duration)) Option {
	return func(p *Policy) { p.sleep = f }
}

// withoutLoop keeps New from starting the sampler (tests drive it).
func withoutLoop() Option { return func(p *Policy) { p.done = nil } }

// New validates cfg and returns a running policy; call Close to stop its
// sampler.
func New(cfg Config, opts ...Option) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Policy{cfg: cfg, now: time.Now, pressure: func() int { return 0 }, done: make(chan struct{}), sleep: sleepCtx}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.queueCap.Store(1024)
	for c := Class(0); c < NumClasses; c++ {
		p.minShare[c].Store(int64(cfg.MinShare[c]))
		p.peerRate[c].Store(int64(cfg.PeerRate[c]))
		p.peerPending[c].Store(int64(cfg.PeerPending[c]))
		p.global[c] = NewBreaker(cfg.Breaker, func(from, to State) { p.globalTrans[from][to].Add(1) })
	}
	p.globalPend.Store(int64(cfg.GlobalPending))
	empty := map[peer.ID]struct{}{}
	p.priority.Store(&empty)
	for _, o := range opts {
		o(p)
	}
	p.sample(p.now())
	if p.done != nil {
		go p.loop(p.ctx)
	}
	return p, nil
}

// Close stops the sampler and waits for it. It is safe to call twice.
func (p *Policy) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		if p.done != nil {
			<-p.done
		}
	})
	return nil
}

func (p *Policy) loop(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.sample(p.now())
		}
	}
}

// SetPriorityPeers replaces the priority class (peered / clustered peers).
func (p *Policy) SetPriorityPeers(ids []peer.ID) {
	m := make(map[peer.ID]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	p.priority.Store(&m)
}

// ClassOf returns the class a peer is in now.
func (p *Policy) ClassOf(id peer.ID) Class {
	if _, ok := (*p.priority.Load())[id]; ok {
		return ClassPriority
	}
	if v, ok := p.peers.Load(id); ok {
		if st := v.(*peerState); st.good.Load() && !st.slow.Load() {
			return ClassGood
		}
	}
	return ClassUnknown
}

func (p *Policy) peer(id peer.ID) *peerState {
	if v, ok := p.peers.Load(id); ok {
		return v.(*peerState)
	}
	st := &peerState{}
	st.active.Store(p.now().UnixNano())
	st.br = NewBreaker(p.cfg.Breaker, func(from, to State) { p.peerTrans[from][to].Add(1) })
	v, _ := p.peers.LoadOrStore(id, st)
	return v.(*peerState)
}

func (p *Policy) addPending(st *peerState, c Class, d int64) {
	if d > 0 {
		if capN := p.queueCap.Load(); capN > 0 && st.pending.Load() >= capN {
			return
		}
	}
	n := st.pending.Add(d)
	if n < 0 {
		d -= n // only count what was really there
		st.pending.Add(-n)
	}
	p.classPending[c].Add(d)
}

// Filter is a server.PeerBlockRequestFilter: it returns false (answer
// DONT_HAVE) when the peer, its class or the node is over its live limit.
func (p *Policy) Filter(id peer.ID, want cid.Cid) bool {
	now := p.now()
	st := p.peer(id)
	c := p.ClassOf(id)
	st.class.Store(int32(c))
	lim := p.lim.Load()
	st.requested.Add(1)
	st.tickReqs.Add(1)
	st.active.Store(now.UnixNano())
	p.catchUp(st)

	st.mu.Lock()
	if now.Sub(st.winStart) >= time.Second {
		st.lastRate = st.winCount
		st.winStart, st.winCount = now, 0
		st.lastDontHaves, st.lastBlocks = st.winDontHaves.Swap(0), st.winBlocks.Swap(0)
		st.winBacklog.Store(0)
	}
	st.winCount++
	// Over the rate, a peer trips for flood unless it is a busy client: one
	// we have sent more blocks than DONT_HAVEs (a gateway fetching what we
	// hold, W8) is left to the backlog and overload limits instead.
	// While half-open, the rate is scaled by the admitted fraction
	// (floodOver, halfopen.go).
	dominated := st.winDontHaves.Load()+st.lastDontHaves >= st.winBlocks.Load()+st.lastBlocks
	flood := dominated && p.floodOver(st, int64(st.winCount), lim.rate[c], now)
	st.mu.Unlock()
	if flood {
		p.trip(id, st, FaultFlood, now)
	}

	// Every want yields one answer (block, HAVE or DONT_HAVE), so it is
	// pending whether admitted or not.
	defer p.addPending(st, c, 1)
	reason := Reason(-1)
	switch {
	case !st.br.Allow(now):
		reason = ReasonBreaker
	case c != ClassPriority && !p.global[c].Allow(now):
		reason = ReasonOverload
	case lim.pending[c] > 0 && st.pending.Load() >= lim.pending[c]:
		reason = ReasonBacklog
		if dominated && p.backlogFlood(st, lim.pending[c]) { // backlog.go
			p.trip(id, st, FaultFlood, now)
		}
	}
	if reason >= 0 {
		st.denied.Add(1)
		p.shed[c][reason].Add(1)
		return false
	}
	p.accepted[c].Add(1)
	st.order.add(want)
	return true
}

func (p *Policy) trip(id peer.ID, st *peerState, f Fault, now time.Time) {
	if st.br.Snapshot(now).State == Open {
		return
	}
	st.br.Trip(now)
	st.good.Store(false)
	p.trips[f].Add(1)
	if fn := p.onTrip.Load(); fn != nil {
		go (*fn)(id, f)
	}
}

func (p *Policy) strike(id peer.ID, f Fault) {
	now := p.now()
	st := p.peer(id)
	st.mu.Lock()
	keep := st.strikes[:0]
	for _, t := range st.strikes {
		if now.Sub(t) < p.cfg.Breaker.MaxCooldown {
			keep = append(keep, t)
		}
	}
	st.strikes = append(keep, now)
	over := len(st.strikes) >= p.cfg.GarbageStrikes
	if over {
		st.strikes = st.strikes[:0]
	}
	st.mu.Unlock()
	if over {
		p.trip(id, st, f, now)
	}
}

// SetOnTrip sets a function called (in its own goroutine) each time a
// peer's breaker opens, for example to close the peer's connection so a
// flood costs nothing more until it reconnects. Nil removes it.
func (p *Policy) SetOnTrip(f func(peer.ID, Fault)) {
	if f == nil {
		p.onTrip.Store(nil)
		return
	}
	p.onTrip.Store(&f)
}

// ReportTimeout records that a request to or from id timed out; repeated
// timeouts trip the peer's breaker like garbage does.
func (p *Policy) ReportTimeout(id peer.ID) { p.strike(id, FaultTimeout) }

// MessageReceived implements tracer.Tracer: it counts blocks a peer gave
// us and strikes malformed or oversized wantlists.
func (p *Policy) MessageReceived(id peer.ID, m bsmsg.BitSwapMessage) {
	if m == nil {
		return
	}
	if n := len(m.Blocks()); n > 0 {
		st := p.peer(id)
		st.blocksIn.Add(uint64(n))
		p.maybeGood(st)
	}
	if v, ok := p.peers.Load(id); ok {
		st := v.(*peerState)
		if p.outCap.Load() > 0 {
			st.fl.ack(m, p.now().UnixNano())
		}
		if m.Full() {
			st.order.reset() // the new list replaces the old; the filter re-adds it
		} else if st.order.len() > 0 {
			st.order.cancelled(m)
		}
	}
	wl := m.Wantlist()
	// Bitswap's receiver calls this before the engine, whose filter then
	// numbers the wants in the order expect gives them: the children of
	// the dag-pb nodes last sent to the peer in link order, then the rest
	// by the client's priority (order.go).
	if len(wl) > 1 && len(wl) <= p.cfg.MaxEntries {
		p.peer(id).order.expect(wl)
	} else if v, ok := p.peers.Load(id); ok {
		v.(*peerState).order.expect(nil) // drop the last message's ranks
	}
	bad := len(wl) > p.cfg.MaxEntries
	for i := 0; !bad && i < len(wl); i++ {
		c := wl[i].Cid
		bad = !c.Defined() || c.ByteLen() > maxCidBytes || c.Prefix().MhType == mh.IDENTITY
	}
	if bad {
		p.malformed.Add(1)
		p.strike(id, FaultGarbage)
	}
	if len(wl) > 0 && len(m.Blocks()) == 0 && len(m.BlockPresences()) == 0 && p.hold(id) {
		p.dropWants(id, m, len(wl)) // drop.go
	}
}

// holdPoll is how often a wantlist held for its peer's backlog checks
// whether the backlog has drained.
const holdPoll = 20 * time.Millisecond

// hold makes a non-priority peer wait, at most cfg.Hold, before boxo
// handles its wantlist, when the policy would shed that wantlist anyway:
//
//   - its breaker is open: until it leaves the open state;
//   - it already has its live pending limit of entries queued (the
//     backlog rule would answer every new want DONT_HAVE): until the
//     server has answered enough of them to bring it under the limit.
//
// boxo calls the tracer from the goroutine that reads the peer's stream,
// before the server sees the message, so the wait is back-pressure on that
// one stream: the peer's next wantlists wait in its flow-control window
// (then hit its own send timeout) instead of being parsed, filtered and
// answered with a DONT_HAVE per want at the rate they are sent. That work,
// not the blocks, is what a flood of missing CIDs costs a server, and it
// ran on the same cores and through the same engine lock and blockstore
// workers as the priority peers' wants. A peer is served as fast as the
// class shares let the server answer it, and asks no faster. Other peers'
// streams are not touched, and a message carrying blocks or presences (the
// peer serving us) is never held.
//
// hold returns true when the peer's breaker is still open after the wait:
// the caller then drops the wantlist (drop.go) instead of handing boxo
// 1,000 wants to answer DONT_HAVE one by one.
func (p *Policy) hold(id peer.ID) (drop bool) {
	if p.cfg.Hold <= 0 {
		return false
	}
	c := p.ClassOf(id)
	if c == ClassPriority {
		return false
	}
	v, ok := p.peers.Load(id)
	if !ok {
		return false
	}
	st := v.(*peerState)
	now := p.now()
	if d := min(st.br.OpenFor(now), p.cfg.Hold); d > 0 {
		p.held.Add(1)
		p.sleep(p.ctx, d)
		return st.br.OpenFor(p.now()) > 0
	}
	over := func() bool {
		lim := p.lim.Load().pending[c]
		return lim > 0 && st.pending.Load() >= lim
	}
	if !over() {
		return false
	}
	p.held.Add(1)
	for end := now.Add(p.cfg.Hold); over() && p.now().Before(end) && p.ctx.Err() == nil; {
		p.sleep(p.ctx, holdPoll)
	}
	return false
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// MessageSent implements tracer.Tracer: it counts service per class and
// per peer, and lowers the peer's pending estimate.
func (p *Policy) MessageSent(id peer.ID, m bsmsg.BitSwapMessage) {
	if m == nil {
		return
	}
	blocks := len(m.Blocks())
	n := int64(blocks + len(m.BlockPresences()))
	if n == 0 {
		return
	}
	st := p.peer(id)
	c := p.ClassOf(id)
	st.order.sent(m)
	p.addPending(st, Class(st.class.Load()), -n)
	if p.outCap.Load() > 0 {
		st.fl.add(m, p.now().UnixNano())
	}
	p.account(st, c, n)
	if dh := len(m.DontHaves()); dh > 0 {
		st.winDontHaves.Add(int64(dh))
	}
	if blocks > 0 {
		st.winBlocks.Add(int64(blocks))
		st.blocksOut.Add(uint64(blocks))
		p.maybeGood(st)
	}
	p.served[c].Add(uint64(n))
}

func (p *Policy) maybeGood(st *peerState) {
	if st.good.Load() || st.blocksOut.Load()+st.blocksIn.Load() < uint64(p.cfg.GoodMinBlocks) {
		return
	}
	if st.br.Snapshot(p.now()).State == Closed {
		st.good.Store(true)
	}
}
