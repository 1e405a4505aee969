package loadgen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	cid "github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// RateConfig describes a want-have request-rate sweep.
type RateConfig struct {
	// Target is the node to ask (loopback only).
	Target peer.AddrInfo
	// CIDs are blocks the target holds; each peer cycles through them.
	CIDs []cid.Cid
	// Steps are the peer counts of the sweep, e.g. 1, 4, 16, 64. Peers are
	// connected once, for the largest step; a step uses the first P.
	Steps []int
	// InFlight is how many requests each peer keeps outstanding (W).
	InFlight int
	// Warmup is the start of each step that is not measured (default 1 s).
	Warmup time.Duration
	// StepDuration is the measured part of each step (default 5 s).
	StepDuration time.Duration
	// RequestTimeout frees the slot of a request nobody answered (default 10 s).
	RequestTimeout time.Duration
	// ResendAfter re-sends a want nobody answered after this long, as a
	// real client's periodic rebroadcast would (default 1 s). Its latency
	// still counts from the first send.
	ResendAfter time.Duration
	// Cooldown keeps a peer from asking for a CID again sooner than this
	// after its answer (default 25 ms). A real client does not re-ask at
	// once, and boxo's server drops a repeated want that arrives while the
	// task of its previous answer is still marked active (the answer
	// reached us before the server's own bookkeeping ran), so without a
	// cooldown a tiny CID set measures that race instead of the server.
	Cooldown time.Duration
	// Parallel is how many peers connect at once (default 32).
	Parallel int
}

// RateStep is the outcome of one step of the sweep.
type RateStep struct {
	// Peers is the number of requesting peers in this step.
	Peers int `json:"peers"`
	// Seconds is the measured window.
	Seconds float64 `json:"seconds"`
	// Sent counts requests sent in the measured window.
	Sent int64 `json:"sent"`
	// Answered counts the answers, of any kind, that arrived in it.
	Answered int64 `json:"answered"`
	// PerSec is Answered/Seconds.
	PerSec float64 `json:"answered_per_s"`
	// Haves counts the answers that were HAVEs.
	Haves int64 `json:"haves"`
	// DontHaves counts the answers that were DONT_HAVEs.
	DontHaves int64 `json:"dont_haves"`
	// Blocks counts the answers that were the block itself (Bitswap sends
	// a block of up to its WantHaveReplaceSize instead of a HAVE).
	Blocks int64 `json:"blocks"`
	// TimedOut counts requests given up after RequestTimeout.
	TimedOut int64 `json:"timed_out"`
	// Resent counts wants re-sent after ResendAfter without an answer.
	Resent int64 `json:"resent"`
	// SendErrors counts failed message writes.
	SendErrors int64 `json:"send_errors"`
	// FirstSendError is the first of them.
	FirstSendError string `json:"first_send_error,omitempty"`
	// Latency is from the send of a request to its answer, over the
	// answers that arrived in the window.
	Latency Percentiles `json:"latency"`
}

// RateResult is the whole sweep.
type RateResult struct {
	// Peers is how many peers connected.
	Peers int `json:"peers"`
	// FailedPeers is how many did not.
	FailedPeers int `json:"failed_peers"`
	// Steps in the order run.
	Steps []RateStep `json:"steps"`
	// SaturationPerSec is the highest PerSec of any step.
	SaturationPerSec float64 `json:"saturation_per_s"`
	// SaturationPeers is the peer count of that step.
	SaturationPeers int `json:"saturation_peers"`
	// FirstError is the first connect error, if any.
	FirstError string `json:"first_error,omitempty"`
}

func (c *RateConfig) fill() error {
	if err := CheckLoopback(c.Target); err != nil {
		return err
	}
	if len(c.CIDs) == 0 {
		return fmt.Errorf("loadgen: rate needs CIDs the target holds")
	}
	if len(c.Steps) == 0 {
		return fmt.Errorf("loadgen: rate needs at least one step")
	}
	for _, s := range c.Steps {
		if s < 1 || s > MaxPeers {
			return fmt.Errorf("loadgen: a step's peer count must be 1..%d", MaxPeers)
		}
	}
	if c.InFlight < 1 || c.InFlight > len(c.CIDs) || c.InFlight > 1024 {
		return fmt.Errorf("loadgen: in-flight must be 1..min(1024, number of CIDs)")
	}
	if c.Warmup <= 0 {
		c.Warmup = time.Second
	}
	if c.StepDuration <= 0 {
		c.StepDuration = 5 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.ResendAfter <= 0 {
		c.ResendAfter = time.Second
	}
	if c.Cooldown <= 0 {
		c.Cooldown = 25 * time.Millisecond
	}
	if time.Duration(len(c.Steps))*(c.Warmup+c.StepDuration) > MaxDuration {
		return fmt.Errorf("loadgen: the sweep would run longer than %s", MaxDuration)
	}
	return nil
}

// request is one outstanding want-have.
type request struct {
	sent   time.Time
	resent bool
}

// ratePeer is one requester's state; mu guards everything but p and wake.
type ratePeer struct {
	p    *Peer
	wake chan struct{}

	mu       sync.Mutex
	inflight map[cid.Cid]*request
	answered map[cid.Cid]time.Time // when each CID was last answered
	cursor   int
	cancels  []cid.Cid
	winStart time.Time
	winEnd   time.Time
	st       RateStep
	lat      []time.Duration
}

func (r *ratePeer) inWindow(t time.Time) bool {
	return !t.Before(r.winStart) && t.Before(r.winEnd)
}

// answer records the answer for c; r.mu must be held.
func (r *ratePeer) answer(c cid.Cid, now time.Time, kind int) {
	q, ok := r.inflight[c]
	if !ok {
		return
	}
	delete(r.inflight, c)
	r.answered[c] = now
	if !r.inWindow(now) {
		return
	}
	r.st.Answered++
	r.lat = append(r.lat, now.Sub(q.sent))
	switch kind {
	case 0:
		r.st.Haves++
	case 1:
		r.st.DontHaves++
	default:
		r.st.Blocks++
	}
}

func (r *ratePeer) onMessage(m bsmsg.BitSwapMessage) {
	now := time.Now()
	r.mu.Lock()
	for _, bp := range m.BlockPresences() {
		if bp.Type == pb.Message_Have {
			r.answer(bp.Cid, now, 0)
		} else {
			if _, ok := r.inflight[bp.Cid]; ok {
				// The target keeps DONT_HAVE wants; withdraw them.
				r.cancels = append(r.cancels, bp.Cid)
			}
			r.answer(bp.Cid, now, 1)
		}
	}
	for _, b := range m.Blocks() {
		r.answer(b.Cid(), now, 2)
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// loop keeps cfg.InFlight requests outstanding until ctx ends.
func (r *ratePeer) loop(ctx context.Context, cfg *RateConfig) {
	// The loop runs on every answer, and otherwise when the next
	// cooldown ends or after idle (for resends and timeouts).
	const idle = 50 * time.Millisecond
	timer := time.NewTimer(idle)
	defer timer.Stop()
	var batch []cid.Cid
	for {
		now := time.Now()
		wait := idle
		r.mu.Lock()
		batch = batch[:0]
		for c, q := range r.inflight {
			switch age := now.Sub(q.sent); {
			case age > cfg.RequestTimeout:
				delete(r.inflight, c)
				if r.inWindow(now) {
					r.st.TimedOut++
				}
			case age > cfg.ResendAfter && !q.resent:
				q.resent = true
				batch = append(batch, c)
				if r.inWindow(now) {
					r.st.Resent++
				}
			}
		}
		resent := len(batch)
		for tries := 0; len(r.inflight)+len(batch)-resent < cfg.InFlight && tries < len(cfg.CIDs); tries++ {
			c := cfg.CIDs[r.cursor]
			r.cursor = (r.cursor + 1) % len(cfg.CIDs)
			if _, busy := r.inflight[c]; busy {
				continue
			}
			if t, ok := r.answered[c]; ok && now.Sub(t) < cfg.Cooldown {
				wait = min(wait, cfg.Cooldown-now.Sub(t))
				continue
			}
			batch = append(batch, c)
		}
		for _, c := range batch[resent:] {
			r.inflight[c] = &request{sent: now}
		}
		if r.inWindow(now) {
			r.st.Sent += int64(len(batch) - resent)
		}
		cancels := r.cancels
		r.cancels = nil
		r.mu.Unlock()

		if len(batch) > 0 || len(cancels) > 0 {
			m := bsmsg.New(false)
			for _, c := range cancels {
				m.Cancel(c)
			}
			for _, c := range batch {
				m.AddEntry(c, 1, pb.Message_Wantlist_Have, true)
			}
			// A write is never cut off by the end of the step: a message
			// half written would corrupt the stream for the next one.
			wctx, cancel := context.WithTimeout(context.Background(), cfg.RequestTimeout)
			err := r.p.Send(wctx, m)
			cancel()
			if err != nil {
				// bsnet resets the stream; forget the batch, it will not
				// be answered.
				r.mu.Lock()
				r.st.SendErrors++
				if r.st.FirstSendError == "" {
					r.st.FirstSendError = err.Error()
				}
				for _, c := range batch[resent:] {
					delete(r.inflight, c)
				}
				r.mu.Unlock()
			}
		}
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-r.wake:
		case <-timer.C:
		case <-ctx.Done():
			return
		}
	}
}

// Rate runs the sweep: for each step, the first P peers keep InFlight
// want-have requests (send-dont-have set) outstanding for Warmup +
// StepDuration, and the answers that arrive in the measured window are
// counted and timed. Peers are closed before Rate returns. Cancelling ctx
// ends the sweep after the current step, with the steps done so far.
func Rate(ctx context.Context, cfg RateConfig) (RateResult, error) {
	var res RateResult
	if err := cfg.fill(); err != nil {
		return res, err
	}
	maxPeers := slices.Max(cfg.Steps)
	rps := make([]*ratePeer, maxPeers)
	for i := range rps {
		rps[i] = &ratePeer{
			wake:     make(chan struct{}, 1),
			inflight: map[cid.Cid]*request{},
			answered: map[cid.Cid]time.Time{},
			cursor:   (i * len(cfg.CIDs) / maxPeers) % len(cfg.CIDs),
		}
	}
	var ready atomic.Bool
	onMsg := func(i int, m bsmsg.BitSwapMessage) {
		if ready.Load() {
			rps[i].onMessage(m)
		}
	}
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Minute)
	peers, failed, firstErr := OpenPeers(cctx, cfg.Target, maxPeers, PeerOptions{Bitswap: true, OnMessage: onMsg, Parallel: cfg.Parallel})
	ccancel()
	defer ClosePeers(peers)
	res.Peers, res.FailedPeers = len(peers), failed
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	if len(peers) == 0 {
		return res, fmt.Errorf("loadgen: no peer connected: %v", firstErr)
	}
	live := make([]*ratePeer, 0, len(peers))
	for _, p := range peers { // in index order
		rps[p.Index].p = p
		live = append(live, rps[p.Index])
	}
	ready.Store(true)

	for _, n := range cfg.Steps {
		if ctx.Err() != nil {
			break
		}
		n = min(n, len(live))
		active := live[:n]
		now := time.Now()
		for _, r := range active {
			r.mu.Lock()
			r.winStart = now.Add(cfg.Warmup)
			r.winEnd = r.winStart.Add(cfg.StepDuration)
			r.st, r.lat = RateStep{}, r.lat[:0]
			r.mu.Unlock()
		}
		sctx, cancel := context.WithDeadline(ctx, now.Add(cfg.Warmup+cfg.StepDuration))
		var wg sync.WaitGroup
		for _, r := range active {
			wg.Add(1)
			go func() { defer wg.Done(); r.loop(sctx, &cfg) }()
		}
		wg.Wait()
		cancel()
		// Let the answers to the last requests drain before the next step
		// reuses their CIDs.
		drainUntil := time.Now().Add(min(cfg.RequestTimeout, 2*time.Second))
		for _, r := range active {
			for time.Now().Before(drainUntil) {
				r.mu.Lock()
				n := len(r.inflight)
				r.mu.Unlock()
				if n == 0 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}

		step := RateStep{Peers: n, Seconds: cfg.StepDuration.Seconds()}
		var lat []time.Duration
		for _, r := range active {
			r.mu.Lock()
			step.Sent += r.st.Sent
			step.Answered += r.st.Answered
			step.Haves += r.st.Haves
			step.DontHaves += r.st.DontHaves
			step.Blocks += r.st.Blocks
			step.TimedOut += r.st.TimedOut
			step.Resent += r.st.Resent
			step.SendErrors += r.st.SendErrors
			if step.FirstSendError == "" {
				step.FirstSendError = r.st.FirstSendError
			}
			lat = append(lat, r.lat...)
			clear(r.inflight)
			r.cancels = nil
			r.mu.Unlock()
		}
		step.PerSec = float64(step.Answered) / step.Seconds
		step.Latency = Summarise(lat)
		res.Steps = append(res.Steps, step)
		if step.PerSec > res.SaturationPerSec {
			res.SaturationPerSec, res.SaturationPeers = step.PerSec, n
		}
	}
	return res, nil
}
