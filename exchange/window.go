package exchange

import (
	"math"
	"slices"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/libp2p/go-libp2p/core/peer"
)

// This file holds the direct wants' per-peer windows. Each peer the
// direct wants go to has a delivery rate, measured from the blocks it
// answers them with over the time it has wants out, and a window of
// bytes of wants it may have out: the rate times directQueueTime. A want
// past its peer's window goes to another peer known to hold that peer's
// blocks (one that answered a spilled want through boxo's session) with
// room in its window and the soonest answer at its rate, or, with none,
// to boxo's session (spilled). See DirectWants.want.

// directQueueTime is how long the direct wants out at one peer may take
// it to answer at the rate it has been answering them: a peer's window is
// its measured delivery rate times this. A want past its peer's window
// goes to another peer that holds the blocks (see DirectWants.want), or
// the caller asks boxo's session for it, which asks every peer of the
// session (want-have first) and spreads its want-blocks over those that
// have the block. Without the window a slow provider that sent a file's
// root carried the whole read: a `cat` of 32 MiB from two providers, one
// behind a 20 Mbit/s link, read at 2.3 MiB/s with 97% from the slow one,
// against stock's 4.5-6.3 MiB/s (docs/bitswap.md, "Nineteenth pass"). On loopback a peer answers
// 100-200 MiB/s, far more than the prefetch budget asks in a second, so
// the window never binds there.
const directQueueTime = time.Second

// directMinWindow is the least a peer's window holds, and a peer with
// nothing out always takes the next want: a slow peer keeps getting some.
const directMinWindow = 1 << 20

// directInitWindow is a peer's window until its first rate sample closes
// (after directSampleBytes on loopback, a few milliseconds). Without it
// the first wants of a `cat` (three runs of ten 256 KiB leaves, 7.5 MiB)
// all queued at a slow provider that sent the root, and the file read at
// 11.6 MiB/s with 18% from it (docs/bitswap.md, "Nineteenth pass").
const directInitWindow = 2 << 20

// directSampleTime and directSampleBytes close a sample of a peer's
// delivery rate: the bytes of the direct wants' blocks it sent over the
// time it had wants out, once either is reached.
const (
	directSampleTime  = 100 * time.Millisecond
	directSampleBytes = 1 << 20
)

// directRatesMax bounds the peers whose rate DirectWants keeps; a rate
// not updated for directRateTTL is forgotten.
const (
	directRatesMax = 1 << 12
	directRateTTL  = time.Minute
)

// directPreferOwn is how many times sooner than a want's own peer
// another must answer it, at their measured rates, to be sent it while
// its own peer has room. Choosing the soonest peer outright concentrated
// W3's fetch (three providers on loopback, all as fast) on whichever was
// measured fastest: its top provider's share went from 63-71% to 75-84%
// (docs/bitswap.md, "Nineteenth pass"). A slow link's provider is tens
// of times slower than a fast one's.
const directPreferOwn = 4

// directSpillsMax bounds the spilled CIDs watched for their sender, and
// directAltsMax the other peers a peer's spilled wants go to.
const (
	directSpillsMax = 1 << 12
	directAltsMax   = 4
)

// spill is a want spilled from peer p at at (see DirectWants.spills).
type spill struct {
	p  peer.ID
	at time.Time
}

// peerRate is a peer's delivery rate for direct wants: bytes per second of
// the time it had wants out, a moving average of samples.
type peerRate struct {
	rate  float64       // bytes per second; 0: no sample yet
	bytes int64         // of the open sample
	busy  time.Duration // of the open sample: time with wants out
	used  time.Time     // the last block counted
}

// peerLocked returns p's directPeer, making it if needed.
func (d *DirectWants) peerLocked(p peer.ID) *directPeer {
	dp := d.peers[p]
	if dp == nil {
		dp = &directPeer{id: p}
		d.peers[p] = dp
	}
	return dp
}

// fitsLocked reports whether a want of size bytes fits dp's window beside
// the wants out at it; a peer with none out takes one of any size.
func (d *DirectWants) fitsLocked(dp *directPeer, size int64) bool {
	return dp.outSize == 0 || dp.outSize+size <= d.windowLocked(dp.id)
}

// finishLocked is how long dp takes to answer the wants out at it and one
// more of size bytes, at its rate. A peer with no rate measured yet comes
// last (math.MaxInt64): it takes a want only when no measured peer has
// the room, so that a slow peer that answered a spilled want through
// boxo's session is not preferred to a fast one before it is measured.
func (d *DirectWants) finishLocked(dp *directPeer, size int64) time.Duration {
	r := d.rates[dp.id]
	if r == nil || r.rate == 0 {
		return math.MaxInt64
	}
	return time.Duration(float64(dp.outSize+size) / r.rate * float64(time.Second))
}

// noteSpilled notes, for the blocks p sent of wants spilled from another
// peer, that p is where that peer's next wants past its window go.
func (d *DirectWants) noteSpilled(p peer.ID, blks []blocks.Block) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range blks {
		sp, ok := d.spills[b.Cid()]
		if !ok {
			continue
		}
		from := sp.p
		delete(d.spills, b.Cid())
		d.spilling.Add(-1)
		if from == p || slices.Contains(d.alts[from], p) {
			continue
		}
		if len(d.alts[from]) >= directAltsMax || len(d.alts) >= directRatesMax {
			continue
		}
		d.alts[from] = append(d.alts[from], p)
	}
}

// windowLocked returns how many bytes of wants p may have out: its
// delivery rate times directQueueTime, at least directMinWindow; with no
// rate measured yet, directInitWindow.
func (d *DirectWants) windowLocked(p peer.ID) int64 {
	r := d.rates[p]
	if r == nil || r.rate == 0 {
		return directInitWindow
	}
	return max(int64(r.rate*directQueueTime.Seconds()), directMinWindow)
}

// arrivedLocked counts a block of n bytes that dp sent for a direct want
// into dp's rate: the bytes, and the time since dp.mark, during which dp
// had wants out. A sample closes at directSampleTime or directSampleBytes
// and moves the rate a third of the way to it.
func (d *DirectWants) arrivedLocked(dp *directPeer, n int, now time.Time) {
	r := d.rates[dp.id]
	if r == nil {
		if len(d.rates) >= directRatesMax {
			return
		}
		r = &peerRate{}
		d.rates[dp.id] = r
	}
	if !dp.mark.IsZero() {
		r.busy += now.Sub(dp.mark)
	}
	dp.mark = now
	r.bytes += int64(n)
	r.used = now
	if r.busy < directSampleTime && r.bytes < directSampleBytes {
		return
	}
	if r.busy > 0 {
		sample := float64(r.bytes) / r.busy.Seconds()
		if r.rate == 0 {
			r.rate = sample
		} else {
			r.rate += (sample - r.rate) / 3
		}
	}
	r.bytes, r.busy = 0, 0
}
