// Command loadgen runs the benchmark suite's load generator (package
// bench/loadgen) as its own process, so that its CPU and memory stay out of
// the measuring process. It targets one node on loopback and prints one JSON
// object per line on stdout; the last line is the result.
//
//	loadgen flood   -target /ip4/127.0.0.1/tcp/4001/p2p/12D3... -peers 32 -wants 1000 -rate 10 -duration 60s
//	loadgen conns   -target ... -n 10000 -max-hold 5m
//	loadgen rate    -target ... -cids cids.txt -steps 1,4,16,64 -inflight 32
//	loadgen garbage -target ... -rounds 3
//
// SIGINT or SIGTERM ends a run early; flood and rate then still print what
// they measured. flood prints {"event":"started",...} when its peers are
// connected and the flood begins. conns prints {"event":"established",...} once every
// connection attempt has finished, holds the connections until a signal (or
// -max-hold), then prints {"event":"result",...} with how many were still
// up, and closes them.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	cid "github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kubo-highload/highload/bench/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// Event is one line of output.
type Event struct {
	// Mode is flood, conns, rate or garbage.
	Mode string `json:"mode"`
	// Event is "started" (flood), "established" (conns) or "result".
	Event string `json:"event"`
	// At is seconds since the run started.
	At float64 `json:"at_s"`
	// SelfRSSMB is the generator's own resident set, in MB.
	SelfRSSMB float64 `json:"self_rss_mb"`
	// Result is the mode's result (or, for established, a loadgen.ConnsEvent).
	Result any `json:"result"`
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 1 {
		return errors.New("usage: loadgen flood|conns|rate|garbage -target MULTIADDR [flags]; -h for flags")
	}
	mode := args[0]
	fs := flag.NewFlagSet("loadgen "+mode, flag.ContinueOnError)
	target := fs.String("target", "", "target multiaddr with /p2p/ID (loopback only)")
	parallel := fs.Int("parallel", 0, "peers connecting at once (0: the mode's default)")
	start := time.Now()
	emit := func(event string, v any) error {
		rss, _ := selfRSS()
		buf, err := json.Marshal(Event{Mode: mode, Event: event, At: time.Since(start).Seconds(), SelfRSSMB: rss, Result: v})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", buf)
		return err
	}
	switch mode {
	case "flood":
		peers := fs.Int("peers", 32, "abusive peers (N)")
		wants := fs.Int("wants", 1000, "CIDs in each peer's wantlist (K)")
		rate := fs.Float64("rate", 10, "full wantlists per second per peer (R)")
		dur := fs.Duration("duration", 30*time.Second, "how long to flood")
		fresh := fs.Bool("fresh", false, "draw new random CIDs for every message")
		ai, err := parse(fs, args[1:], target)
		if err != nil {
			return err
		}
		raiseNoFile(uint64(*peers)*4 + 1024)
		var emitErr error
		res, err := loadgen.Flood(ctx, loadgen.FloodConfig{Target: ai, Peers: *peers, Wants: *wants, Rate: *rate,
			Duration: *dur, Fresh: *fresh, Parallel: *parallel,
			OnStart: func(connected, failed int) {
				emitErr = emit("started", map[string]int{"peers": connected, "failed_peers": failed})
			}})
		if emitErr != nil {
			return emitErr
		}
		if err != nil {
			return err
		}
		return emit("result", res)
	case "conns":
		n := fs.Int("n", 10000, "connections, each from its own peer identity")
		maxHold := fs.Duration("max-hold", 10*time.Minute, "release the connections after this long even without a signal")
		ai, err := parse(fs, args[1:], target)
		if err != nil {
			return err
		}
		if *maxHold <= 0 || *maxHold > loadgen.MaxDuration {
			return fmt.Errorf("-max-hold must be in (0, %s]", loadgen.MaxDuration)
		}
		raiseNoFile(uint64(*n) + 4096)
		set, err := loadgen.OpenConns(ctx, loadgen.ConnsConfig{Target: ai, N: *n, Parallel: *parallel})
		if err != nil {
			return err
		}
		defer set.Close()
		ev := loadgen.ConnsEvent{Requested: *n, Established: set.Established(), Failed: set.Failed, OpenSeconds: set.OpenTime.Seconds()}
		if set.FirstError != nil {
			ev.FirstError = set.FirstError.Error()
		}
		ev.Held = set.Held()
		ev.Trimmed = ev.Established - ev.Held
		if err := emit("established", ev); err != nil {
			return err
		}
		held := time.Now()
		select {
		case <-ctx.Done():
		case <-time.After(*maxHold):
		}
		ev.Held = set.Held()
		ev.Trimmed = ev.Established - ev.Held
		ev.HeldSeconds = time.Since(held).Seconds()
		return emit("result", ev)
	case "rate":
		cidFile := fs.String("cids", "", "file with one CID per line, blocks the target holds")
		steps := fs.String("steps", "1,4,16,64", "comma-separated peer counts of the sweep")
		inflight := fs.Int("inflight", 32, "requests in flight per peer (W)")
		warmup := fs.Duration("warmup", time.Second, "unmeasured start of each step")
		step := fs.Duration("step", 5*time.Second, "measured part of each step")
		cooldown := fs.Duration("cooldown", 0, "least time before a peer asks for a CID again after its answer (0: the library's 25ms)")
		ai, err := parse(fs, args[1:], target)
		if err != nil {
			return err
		}
		cids, err := readCIDs(*cidFile)
		if err != nil {
			return err
		}
		var counts []int
		most := 0
		for _, s := range strings.Split(*steps, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("-steps: %w", err)
			}
			counts = append(counts, v)
			most = max(most, v)
		}
		raiseNoFile(uint64(most)*4 + 1024)
		res, err := loadgen.Rate(ctx, loadgen.RateConfig{Target: ai, CIDs: cids, Steps: counts, InFlight: *inflight,
			Warmup: *warmup, StepDuration: *step, Cooldown: *cooldown, Parallel: *parallel})
		if err != nil {
			return err
		}
		return emit("result", res)
	case "garbage":
		rounds := fs.Int("rounds", 1, "times to run the whole set of cases")
		hugeWants := fs.Int("huge-wants", 0, "entries of the huge-wantlist case (0: fill 4 MiB)")
		ai, err := parse(fs, args[1:], target)
		if err != nil {
			return err
		}
		res, err := loadgen.Garbage(ctx, loadgen.GarbageConfig{Target: ai, Rounds: *rounds, HugeWants: *hugeWants})
		if err != nil {
			return err
		}
		return emit("result", res)
	default:
		return fmt.Errorf("unknown mode %q: want flood, conns, rate or garbage", mode)
	}
}

// parse parses the mode's flags and the target.
func parse(fs *flag.FlagSet, args []string, target *string) (ai peer.AddrInfo, err error) {
	if err := fs.Parse(args); err != nil {
		return ai, err
	}
	if fs.NArg() > 0 {
		return ai, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *target == "" {
		return ai, errors.New("-target is required")
	}
	return loadgen.ParseTarget(*target)
}

// readCIDs reads one CID per line, skipping blank lines.
func readCIDs(path string) ([]cid.Cid, error) {
	if path == "" {
		return nil, errors.New("-cids is required")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cid.Cid
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		c, err := cid.Decode(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// raiseNoFile raises RLIMIT_NOFILE, warning on stderr when it cannot.
func raiseNoFile(n uint64) {
	if got, err := loadgen.RaiseNoFile(n); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: RLIMIT_NOFILE is %d, wanted %d: %v\n", got, n, err)
	}
}

// selfRSS is this process's resident set in MB.
func selfRSS() (float64, error) {
	buf, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(buf), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}
