package overload

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/kubo-highload/highload/bench/internal/daemon"
	"github.com/kubo-highload/highload/bench/internal/workload"
	"github.com/kubo-highload/highload/bench/loadgen"
)

// w5Size is one round's sizes.
type w5Size struct {
	fileBytes    int64
	chunk        int
	peers, wants int
	rate         float64
	warmup       time.Duration // flood before the timed fetch starts
	fetchTimeout time.Duration // the flooded fetch's bound, reported when hit
}

func w5Sizes(quick bool) w5Size {
	if quick {
		return w5Size{fileBytes: 4 * mib, chunk: 256 * kib, peers: 8, wants: 200, rate: 10,
			warmup: time.Second, fetchTimeout: 10 * time.Second}
	}
	return w5Size{fileBytes: 64 * mib, chunk: 256 * kib, peers: 32, wants: 1000, rate: 10,
		warmup: 2 * time.Second, fetchTimeout: 120 * time.Second}
}

// idPoll and idTimeout: how often the provider's `id` is called during the
// flood, and how long one call may take before it counts as unanswered.
const (
	idPoll    = 200 * time.Millisecond
	idTimeout = 5 * time.Second
)

// runW5 is the overload workload: a peered fetcher pulls a fresh file from
// an idle provider (after an untimed warm-up fetch of another), then another
// fresh file while abusive peers flood the provider with wantlists of
// missing CIDs.
func runW5(env *workload.Env, v workload.Variant) (figs []workload.Figure, err error) {
	sz := w5Sizes(env.Quick)
	ctx := env.Ctx
	provider, fetcher, err := startPeered(env, v)
	if err != nil {
		return nil, err
	}
	defer stopAll(provider, fetcher)
	if err := fetcher.Connect(ctx, provider); err != nil {
		return nil, fmt.Errorf("overload: connecting the fetcher: %w", err)
	}

	// roots[0] is fetched once untimed (the warm-up), roots[1] idle and
	// roots[2] under the flood: both timed fetches are a warm fetcher's
	// second and third, the same kind of fetch.
	roots := make([]string, 3)
	blocks := make([]int, 3)
	for i := range roots {
		roots[i], err = provider.Add(ctx, randomFile("W5", v.Name, env.Round, i, sz.fileBytes), fmt.Sprintf("size-%d", sz.chunk))
		if err != nil {
			return nil, fmt.Errorf("overload: add on %s: %w", provider.Name, err)
		}
		if blocks[i], err = dagBlocks(ctx, provider, roots[i]); err != nil {
			return nil, err
		}
	}
	floodCIDs, err := refs(ctx, provider, roots[2])
	if err != nil {
		return nil, err
	}

	// 0. The warm-up: a fetcher's first fetch also pays for its own
	// start-up (heap growth, the first writes of its block store, the
	// first Bitswap session), 10-30% of the idle time on this machine.
	// Timed as the idle fetch, that cost would sit in the denominator
	// and not in the flooded fetch, so the ratio would flatter the flood.
	warm, timedOut, err := timedPin(ctx, fetcher, roots[0], sz.fetchTimeout)
	if err != nil {
		return nil, err
	}
	if timedOut {
		return nil, fmt.Errorf("overload: the warm-up fetch from an idle provider did not finish within %s", sz.fetchTimeout)
	}
	env.Logf("warm-up fetch of %d MiB (untimed): %.2fs", sz.fileBytes/mib, warm.Seconds())

	// 1. The idle fetch.
	idle, timedOut, err := timedPin(ctx, fetcher, roots[1], sz.fetchTimeout)
	if err != nil {
		return nil, err
	}
	if timedOut {
		return nil, fmt.Errorf("overload: the fetch from an idle provider did not finish within %s", sz.fetchTimeout)
	}
	if err := checkBlocks(ctx, fetcher, roots[1], blocks[1]); err != nil {
		return nil, err
	}
	env.Logf("idle fetch of %d MiB: %.2fs", sz.fileBytes/mib, idle.Seconds())

	// 2. The flood, and the same fetch of a fresh file under it.
	rssNote := ""
	if err := resetPeakRSS(provider); err != nil {
		rssNote = "includes the idle fetch (could not reset VmHWM: " + err.Error() + ")"
	}
	floodFor := sz.warmup + sz.fetchTimeout + 60*time.Second // stopped as soon as the fetch ends
	lg, err := startLoadgen(env, "flood", "-target", provider.SwarmAddrs()[0],
		"-peers", strconv.Itoa(sz.peers), "-wants", strconv.Itoa(sz.wants),
		"-rate", strconv.FormatFloat(sz.rate, 'f', -1, 64), "-duration", floodFor.String())
	if err != nil {
		return nil, err
	}
	defer lg.kill()
	var started struct {
		Peers       int `json:"peers"`
		FailedPeers int `json:"failed_peers"`
	}
	if _, err := lg.waitFor(ctx, "started", 2*time.Minute, &started); err != nil {
		return nil, err
	}
	poll := pollID(ctx, provider, idPoll, idTimeout)
	link := watchLink(ctx, fetcher, provider)
	select {
	case <-time.After(sz.warmup):
	case <-ctx.Done():
		poll.finish()
		link.finish()
		return nil, ctx.Err()
	}
	flooded, timedOut, err := timedPin(ctx, fetcher, roots[2], sz.fetchTimeout)
	worst, calls, late := poll.finish()
	drops, linkPolls := link.finish()
	if err != nil {
		return nil, err
	}
	// 3. Still under the flood: the protected peer's losses so far, then
	// its connection killed and the time until it is back.
	losses, trimmedProt, havePool := poolLosses(ctx, provider, fetcher.PeerID())
	reconnect, rcTimedOut, err := killAndTimeReconnect(ctx, provider, fetcher, reconnectBound)
	if err != nil {
		return nil, err
	}
	lg.interrupt()
	var fr loadgen.FloodResult
	if _, err := lg.waitFor(ctx, "result", time.Minute, &fr); err != nil {
		return nil, err
	}
	peak, err := provider.PeakRSS()
	if err != nil {
		return nil, err
	}
	fetchNote := ""
	progress := 100.0
	if timedOut {
		have, err := countLocal(ctx, fetcher, floodCIDs)
		if err != nil {
			return nil, err
		}
		progress = 100 * float64(have) / float64(len(floodCIDs))
		fetchNote = fmt.Sprintf("timed out: not done after %s (the bound is reported)", sz.fetchTimeout)
		env.Logf("flooded fetch %s; the fetcher had %d of %d blocks", fetchNote, have, len(floodCIDs))
	} else {
		if err := checkBlocks(ctx, fetcher, roots[2], blocks[2]); err != nil {
			return nil, err
		}
		env.Logf("flooded fetch: %.2fs", flooded.Seconds())
	}
	env.Logf("flood: %d/%d peers, %.0f msg/s (%.0f wants/s) delivered, %d ticks behind, %d DONT_HAVEs back; provider id: worst %s over %d calls, %d over 1s",
		fr.Peers, sz.peers, fr.MsgPerSec, fr.WantsPerSec, fr.Behind, fr.RecvDontHaves, worst.Round(time.Millisecond), calls, late)

	dropNote := fmt.Sprintf("times the fetcher lost the provider during the flood, polled every %s (%d polls)", linkPoll, linkPolls)
	if havePool {
		dropNote += fmt.Sprintf("; the provider's pool counted %d losses, %d trimmed connections of protected peers", losses, trimmedProt)
		drops = max(drops, int(losses+trimmedProt))
	}
	rcNote := "the provider's `swarm disconnect` of the fetcher, under the flood, until the provider lists it again"
	if rcTimedOut {
		rcNote = fmt.Sprintf("not reconnected within %s (the bound is reported)", reconnectBound)
	}
	after := ""
	if l, _, ok := poolLosses(ctx, provider, fetcher.PeerID()); ok {
		after = fmt.Sprintf(" (the provider's pool counted %d losses after it)", l)
	}
	env.Logf("protected peer: %d drops during the flood (%s); reconnected %.2fs after the kill%s", drops, dropNote, reconnect.Seconds(), after)

	answered := 1.0
	if late > 0 {
		answered = 0
	}
	floodNote := "wantlists/s the abusive peers got written: the load actually offered"
	if started.FailedPeers > 0 {
		floodNote += fmt.Sprintf("; %d of %d abusive peers could not connect", started.FailedPeers, sz.peers)
	}
	return []workload.Figure{
		{Name: "idle fetch", Unit: "s", Value: idle.Seconds()},
		{Name: "flood fetch", Unit: "s", Value: flooded.Seconds(), Note: fetchNote},
		{Name: "flood/idle", Unit: "ratio", Value: flooded.Seconds() / idle.Seconds(), Note: fetchNote},
		{Name: "flood fetch progress", Unit: "% blocks", Value: progress, HigherIsBetter: true,
			Note: "share of the file's blocks on the fetcher when the flooded fetch ended (100 unless it timed out)"},
		{Name: "provider peak RSS", Unit: "MB", Value: megabytes(peak), Note: rssNote},
		{Name: "max id latency", Unit: "ms", Value: float64(worst) / float64(time.Millisecond)},
		{Name: "id always < 1s", Unit: "1/0", Value: answered, HigherIsBetter: true},
		{Name: "flood delivered", Unit: "msg/s", Value: fr.MsgPerSec, Note: floodNote},
		{Name: "protected peer drops", Unit: "count", Value: float64(drops), Note: dropNote},
		{Name: "protected reconnect", Unit: "s", Value: reconnect.Seconds(), Note: rcNote},
	}, nil
}

// timedPin pins root on n (fetching it) and returns how long it took. When
// bound passes first it returns bound and timedOut; that is not an error.
func timedPin(ctx context.Context, n *daemon.Node, root string, bound time.Duration) (d time.Duration, timedOut bool, err error) {
	pctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	start := time.Now()
	_, err = n.RPC(pctx, "pin/add", url.Values{"arg": {root}, "recursive": {"true"}, "progress": {"false"}}, nil)
	d = time.Since(start)
	if err != nil {
		if ctx.Err() == nil && (errors.Is(pctx.Err(), context.DeadlineExceeded) || d >= bound) {
			return bound, true, nil
		}
		return d, false, fmt.Errorf("overload: pin add on %s after %s: %w", n.Name, d.Round(time.Millisecond), err)
	}
	return d, false, nil
}

// countLocal counts how many of cids n holds, without asking the network.
func countLocal(ctx context.Context, n *daemon.Node, cids []string) (int, error) {
	have := 0
	for _, c := range cids {
		_, err := n.RPC(ctx, "block/stat", url.Values{"arg": {c}, "offline": {"true"}}, nil)
		if err == nil {
			have++
		} else if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
	return have, nil
}

// checkBlocks verifies offline that n holds root's whole DAG.
func checkBlocks(ctx context.Context, n *daemon.Node, root string, want int) error {
	got, err := dagBlocks(ctx, n, root)
	if err != nil {
		return fmt.Errorf("overload: %s: DAG of %s incomplete after pin add: %w", n.Name, root, err)
	}
	if got != want {
		return fmt.Errorf("overload: %s: DAG of %s has %d blocks, the provider has %d", n.Name, root, got, want)
	}
	return nil
}
