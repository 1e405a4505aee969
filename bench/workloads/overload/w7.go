package overload

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/kubo-highload/highload/bench/internal/daemon"
	"github.com/kubo-highload/highload/bench/internal/workload"
	"github.com/kubo-highload/highload/bench/loadgen"
)

// w7Size is one round's sizes.
type w7Size struct {
	n    int           // connections with the raised limits
	hold time.Duration // how long they are held before counting
	// defaultN connections are then opened to a daemon with Kubo's default
	// connection manager and limits and held defaultHold (0: skipped).
	defaultN    int
	defaultHold time.Duration
}

func w7Sizes(quick bool) w7Size {
	if quick {
		return w7Size{n: 200, hold: 5 * time.Second}
	}
	// Kubo's default ConnMgr trims connections older than its 20 s grace
	// period every 10 s: after 30 s every connection has been eligible.
	return w7Size{n: 10000, hold: 60 * time.Second, defaultN: 2000, defaultHold: 30 * time.Second}
}

// The raised limits both variants run with: watermarks around 10,000, and
// the resource manager's file-descriptor budget (by default half of the
// process limit) high enough to admit them. Kubo then derives
// System.ConnsInbound = 2 x HighWater = 22,000 by itself.
const (
	raisedLowWater  = 9000
	raisedHighWater = 11000
	raisedMaxFDs    = fdMax - 4096
)

func raisedLimits(cfg map[string]any) error {
	daemon.SetPath(cfg, raisedLowWater, "Swarm", "ConnMgr", "LowWater")
	daemon.SetPath(cfg, raisedHighWater, "Swarm", "ConnMgr", "HighWater")
	daemon.SetPath(cfg, raisedMaxFDs, "Swarm", "ResourceMgr", "MaxFileDescriptors")
	return nil
}

// holdOutcome is what one hold measured on the daemon.
type holdOutcome struct {
	ev            loadgen.ConnsEvent // the generator's final view
	daemonPeers   int                // peers the daemon listed at the end of the hold
	rss0, rssHeld uint64             // daemon RSS before the connections, at the end of the hold
	cpuOpen       time.Duration      // daemon CPU while they were being opened
	cpuHold       time.Duration      // daemon CPU during the hold
	holdFor       time.Duration
}

// holdConns starts a daemon for v with edit, opens n connections to it from
// the load generator, holds them for hold and measures.
func holdConns(env *workload.Env, v workload.Variant, name string, edit func(map[string]any) error, raiseFDs bool, n int, hold time.Duration) (out holdOutcome, err error) {
	ctx := env.Ctx
	node, err := initNode(env, v, name, edit)
	if err != nil {
		return out, err
	}
	if !raiseFDs {
		node.Env = nil
	}
	if err := node.Start(ctx); err != nil {
		return out, err
	}
	defer stopAll(node)
	if err := sleepCtx(ctx, 2*time.Second); err != nil { // let start-up work settle
		return out, err
	}
	if out.rss0, err = node.RSS(); err != nil {
		return out, err
	}
	cpu0, err := node.CPUTime()
	if err != nil {
		return out, err
	}
	// Opening 10,000 connections on two shared cores takes a minute or two;
	// the generator releases them by itself if we never signal it.
	openBound := 2*time.Minute + time.Duration(n)*30*time.Millisecond
	lg, err := startLoadgen(env, "conns", "-target", node.SwarmAddrs()[0], "-n", strconv.Itoa(n),
		"-max-hold", (openBound + hold + time.Minute).String())
	if err != nil {
		return out, err
	}
	defer lg.kill()
	var est loadgen.ConnsEvent
	estEv, err := lg.waitFor(ctx, "established", openBound, &est)
	if err != nil {
		return out, err
	}
	cpu1, err := node.CPUTime()
	if err != nil {
		return out, err
	}
	out.cpuOpen = cpu1 - cpu0
	env.Logf("%s: %d of %d connections established in %.1fs (%d failed%s); generator RSS %.0f MB", name, est.Established, n,
		est.OpenSeconds, est.Failed, firstErr(est.FirstError), estEv.SelfRSSMB)
	start := time.Now()
	if err := sleepCtx(ctx, hold); err != nil {
		return out, err
	}
	cpu2, err := node.CPUTime()
	if err != nil {
		return out, err
	}
	out.holdFor = time.Since(start)
	out.cpuHold = cpu2 - cpu1
	if out.rssHeld, err = node.RSS(); err != nil {
		return out, err
	}
	var peers struct{ Peers []struct{ Peer string } }
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = node.RPCJSON(pctx, "swarm/peers", nil, &peers)
	cancel()
	if err != nil {
		return out, err
	}
	out.daemonPeers = len(peers.Peers)
	lg.interrupt()
	if _, err := lg.waitFor(ctx, "result", 2*time.Minute, &out.ev); err != nil {
		return out, err
	}
	env.Logf("%s: after %.0fs %d held by the generator, %d peers listed by the daemon, %d trimmed; daemon RSS %.0f -> %.0f MB",
		name, out.holdFor.Seconds(), out.ev.Held, out.daemonPeers, out.ev.Trimmed, megabytes(out.rss0), megabytes(out.rssHeld))
	return out, nil
}

func firstErr(s string) string {
	if s == "" {
		return ""
	}
	return "; first error: " + s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runW7 is the connections workload.
func runW7(env *workload.Env, v workload.Variant) ([]workload.Figure, error) {
	sz := w7Sizes(env.Quick)
	o, err := holdConns(env, v, "target", raisedLimits, true, sz.n, sz.hold)
	if err != nil {
		return nil, err
	}
	held := o.ev.Held
	perConn := 0.0
	if held > 0 && o.rssHeld > o.rss0 {
		perConn = float64(o.rssHeld-o.rss0) / 1024 / float64(held)
	}
	handshake := 0.0
	if o.ev.Established > 0 {
		handshake = float64(o.cpuOpen) / float64(time.Millisecond) / float64(o.ev.Established)
	}
	figs := []workload.Figure{
		{Name: "conns held", Unit: "conns", Value: float64(held), HigherIsBetter: true,
			Note: fmt.Sprintf("of %d, after %.0fs; ConnMgr %d/%d", sz.n, o.holdFor.Seconds(), raisedLowWater, raisedHighWater)},
		{Name: "refused", Unit: "conns", Value: float64(sz.n - o.ev.Established)},
		{Name: "trimmed", Unit: "conns", Value: float64(o.ev.Trimmed)},
		{Name: "RSS per conn", Unit: "KiB", Value: perConn, Note: "(RSS at end of hold - RSS before) / held"},
		{Name: "hold CPU", Unit: "% core", Value: 100 * o.cpuHold.Seconds() / o.holdFor.Seconds()},
		{Name: "handshake CPU", Unit: "ms/conn", Value: handshake, Note: "daemon CPU while the connections opened / established"},
	}
	if sz.defaultN > 0 {
		d, err := holdConns(env, v, "default-config", nil, false, sz.defaultN, sz.defaultHold)
		if err != nil {
			return nil, err
		}
		figs = append(figs,
			workload.Figure{Name: "default-config held", Unit: "conns", Value: float64(d.ev.Held), HigherIsBetter: true,
				Note: fmt.Sprintf("of %d, after %.0fs, Kubo's default ConnMgr and limits", sz.defaultN, d.holdFor.Seconds())},
			workload.Figure{Name: "default-config trimmed", Unit: "conns", Value: float64(d.ev.Trimmed)},
		)
	}
	return figs, nil
}
