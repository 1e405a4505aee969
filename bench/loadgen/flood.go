package loadgen

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	cid "github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds every mode enforces, so that a typo cannot turn the generator into
// an unbounded one.
const (
	// MaxPeers bounds the number of peers (and connections) of any mode.
	MaxPeers = 20000
	// MaxWants bounds the size of a flood wantlist.
	MaxWants = 100000
	// MaxRate bounds a flood's messages per second per peer.
	MaxRate = 1000.0
	// MaxDuration bounds how long any mode runs or holds.
	MaxDuration = 30 * time.Minute
)

// FloodConfig describes a wantlist flood.
type FloodConfig struct {
	// Target is the node to flood (loopback only).
	Target peer.AddrInfo
	// Peers is the number of abusive peers (N).
	Peers int
	// Wants is the size of each peer's wantlist (K).
	Wants int
	// Rate is how many full wantlists each peer sends per second (R).
	Rate float64
	// Duration bounds the flood; cancelling the context ends it sooner.
	Duration time.Duration
	// Fresh draws new random CIDs for every message instead of re-sending
	// the peer's same wantlist.
	Fresh bool
	// Parallel is how many peers connect at once (default 32).
	Parallel int
	// OnStart, if set, is called once the peers are connected, just before
	// the flood begins, with how many connected and how many did not.
	OnStart func(connected, failed int)
}

// FloodResult is what a flood did.
type FloodResult struct {
	// Peers is how many peers connected.
	Peers int `json:"peers"`
	// FailedPeers is how many did not.
	FailedPeers int `json:"failed_peers"`
	// ConnectSeconds is the time to connect all peers.
	ConnectSeconds float64 `json:"connect_s"`
	// Seconds is how long the flood ran after the peers connected.
	Seconds float64 `json:"flood_s"`
	// Sent counts wantlist messages written.
	Sent int64 `json:"sent"`
	// SendErrors counts failed writes.
	SendErrors int64 `json:"send_errors"`
	// Behind counts ticks skipped because the previous write of the same
	// peer was still blocked: the target was not reading fast enough.
	Behind int64 `json:"behind"`
	// MsgPerSec is Sent/Seconds over all peers.
	MsgPerSec float64 `json:"msg_per_s"`
	// WantsPerSec is MsgPerSec times the wantlist size.
	WantsPerSec float64 `json:"wants_per_s"`
	// RecvMessages counts the messages the target sent back, over all peers.
	RecvMessages int64 `json:"recv_messages"`
	// RecvDontHaves counts the DONT_HAVE entries in them.
	RecvDontHaves int64 `json:"recv_dont_haves"`
	// RecvHaves counts the HAVE entries in them.
	RecvHaves int64 `json:"recv_haves"`
	// RecvBlocks counts the blocks in them.
	RecvBlocks int64 `json:"recv_blocks"`
	// Disconnected is how many peers had lost their connection at the end.
	Disconnected int `json:"disconnected"`
	// FirstError is the first connect or send error, if any.
	FirstError string `json:"first_error,omitempty"`
}

func (c *FloodConfig) check() error {
	if err := CheckLoopback(c.Target); err != nil {
		return err
	}
	if c.Peers < 1 || c.Peers > MaxPeers {
		return fmt.Errorf("loadgen: peers must be 1..%d", MaxPeers)
	}
	if c.Wants < 1 || c.Wants > MaxWants {
		return fmt.Errorf("loadgen: wants must be 1..%d", MaxWants)
	}
	if c.Rate <= 0 || c.Rate > MaxRate {
		return fmt.Errorf("loadgen: rate must be in (0, %g]", MaxRate)
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		return fmt.Errorf("loadgen: duration must be in (0, %s]", MaxDuration)
	}
	return nil
}

// Flood connects cfg.Peers peers to the target and has each re-send a full
// wantlist of cfg.Wants random, missing CIDs cfg.Rate times a second until
// cfg.Duration has passed or ctx is cancelled. A write that blocks delays
// only its own peer; the ticks it misses are counted in Behind. Flood
// closes every peer before it returns. Cancelling ctx is the normal way to
// stop early and still get the result.
func Flood(ctx context.Context, cfg FloodConfig) (FloodResult, error) {
	var res FloodResult
	if err := cfg.check(); err != nil {
		return res, err
	}
	start := time.Now()
	// Connecting is bounded by the flood's own duration.
	cctx, ccancel := context.WithTimeout(ctx, cfg.Duration)
	peers, failed, firstErr := OpenPeers(cctx, cfg.Target, cfg.Peers, PeerOptions{Bitswap: true, Parallel: cfg.Parallel})
	ccancel()
	defer ClosePeers(peers)
	res.Peers, res.FailedPeers = len(peers), failed
	res.ConnectSeconds = time.Since(start).Seconds()
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	if len(peers) == 0 {
		return res, fmt.Errorf("loadgen: no peer connected: %v", firstErr)
	}

	if cfg.OnStart != nil {
		cfg.OnStart(len(peers), failed)
	}
	fctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	var sent, sendErrs, behind atomic.Int64
	var errOnce sync.Once
	var wg sync.WaitGroup
	floodStart := time.Now()
	for _, p := range peers {
		wg.Add(1)
		go func(p *Peer) {
			defer wg.Done()
			cids := make([]cid.Cid, cfg.Wants)
			for i := range cids {
				cids[i] = RandomCID()
			}
			msg := FloodWantlist(cids)
			// Stagger the peers across one interval so they do not send in
			// lock step.
			select {
			case <-time.After(time.Duration(mrand.Int64N(int64(interval) + 1))):
			case <-fctx.Done():
				return
			}
			next := time.Now()
			for fctx.Err() == nil {
				if err := p.Send(fctx, msg); err != nil {
					if fctx.Err() != nil {
						return
					}
					sendErrs.Add(1)
					errOnce.Do(func() {
						if res.FirstError == "" {
							res.FirstError = err.Error()
						}
					})
					// Do not spin on a dead stream.
					select {
					case <-time.After(interval):
					case <-fctx.Done():
						return
					}
				} else {
					sent.Add(1)
				}
				if cfg.Fresh {
					for i := range cids {
						cids[i] = RandomCID()
					}
					msg = FloodWantlist(cids)
				}
				next = next.Add(interval)
				if now := time.Now(); now.After(next) {
					// The write took longer than the interval: skip the
					// ticks that passed instead of bursting to catch up.
					missed := int64(now.Sub(next) / interval)
					behind.Add(missed)
					next = next.Add(time.Duration(missed+1) * interval)
				}
				select {
				case <-time.After(time.Until(next)):
				case <-fctx.Done():
				}
			}
		}(p)
	}
	wg.Wait()
	res.Seconds = time.Since(floodStart).Seconds()
	res.Sent, res.SendErrors, res.Behind = sent.Load(), sendErrs.Load(), behind.Load()
	if res.Seconds > 0 {
		res.MsgPerSec = float64(res.Sent) / res.Seconds
		res.WantsPerSec = res.MsgPerSec * float64(cfg.Wants)
	}
	for _, p := range peers {
		res.RecvMessages += p.Recv.Messages.Load()
		res.RecvDontHaves += p.Recv.DontHaves.Load()
		res.RecvHaves += p.Recv.Haves.Load()
		res.RecvBlocks += p.Recv.Blocks.Load()
		if !p.Connected() {
			res.Disconnected++
		}
	}
	return res, nil
}
