// Command bench measures this build of Kubo against stock Kubo, side by
// side in one run: for every workload (W1-W10, see docs/benchmarks.md) and
// every round it runs the stock binary and then ours (A B A B ...), on
// 127.0.0.1, with the same config apart from our plugin.
//
// It prints a markdown table on stdout (median [min-max] per variant and the
// highload/stock ratio computed round by round), a progress line per round
// on stderr, and writes <out>/bench-<timestamp>.json, <out>/latest.json and
// <out>/ratios.png. It exits non-zero if any round failed. Benchmarks are not
// tests: nothing here asserts a speed.
//
//	go run ./bench                      # all workloads, 5 rounds
//	go run ./bench -w W1,W2 -rounds 3
//	go run ./bench -quick               # tiny sizes, 1 round: under 3 minutes
//	go run ./bench -w W2 -rounds 1 -profile highload-log \
//	    -config Plugins.Plugins.highload.Config.Bitswap.Prefetch=1024
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/kubo-highload/highload/bench/internal/runner"
	"github.com/kubo-highload/highload/bench/internal/workload"

	_ "github.com/kubo-highload/highload/bench/workloads/datastore"
	_ "github.com/kubo-highload/highload/bench/workloads/fetch"
	_ "github.com/kubo-highload/highload/bench/workloads/overload"
)

const modulePath = "github.com/kubo-highload/highload"

// tool is a helper binary built before the run and handed to workloads as
// Env.Tools[name], when its package exists in the tree and one of the
// workloads that use it is selected.
type tool struct {
	pkg   string
	users []string
}

var tools = map[string]tool{
	"loadgen": {pkg: "./bench/loadgen/cmd/loadgen", users: []string{"W5", "W7", "W8", "W9"}},
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		only     = flag.String("w", "", "comma-separated workload IDs to run, e.g. W1,W2 (default: all registered)")
		rounds   = flag.Int("rounds", 5, "rounds per variant and workload (-quick without -rounds: 1)")
		quick    = flag.Bool("quick", false, "every workload at a tiny size (the test suite's smoke run)")
		stockBin = flag.String("stock", "build/bin/ipfs-stock", "stock Kubo binary (relative paths are from the repo root)")
		ourBin   = flag.String("highload", "build/bin/ipfs", "our Kubo binary (relative paths are from the repo root)")
		out      = flag.String("out", "bench/results", "directory for the JSON and PNG results (relative paths are from the repo root)")
		tmp      = flag.String("tmp", "", "parent directory of the per-round directories (default: $TMPDIR or /tmp)")
		profiles = flag.String("profile", "highload", "init profiles of the highload variant, comma-separated (besides test), e.g. highload-log")
		settings configFlag
	)
	flag.Var(&settings, "config", "Dotted.Path=JSON written into the highload variant's repos after init (repeatable), e.g.\nPlugins.Plugins.highload.Config.Bitswap.Prefetch=1024")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./bench [flags]\n\nworkloads:\n")
		for _, w := range workload.All() {
			fmt.Fprintf(flag.CommandLine.Output(), "  %s %-15s %s\n", w.ID, w.Name, w.Shape)
		}
		fmt.Fprintln(flag.CommandLine.Output(), "\nflags:")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		return fail("unexpected arguments %q", flag.Args())
	}
	roundsSet := false
	flag.Visit(func(f *flag.Flag) { roundsSet = roundsSet || f.Name == "rounds" })
	if *quick && !roundsSet {
		*rounds = 1
	}
	if *rounds < 1 {
		return fail("-rounds must be at least 1")
	}

	root, err := repoRoot()
	if err != nil {
		return fail("%v", err)
	}
	ws, err := selectWorkloads(*only)
	if err != nil {
		return fail("%v", err)
	}
	stock, err := binary(root, *stockBin, "-stock", "make build-stock")
	if err != nil {
		return fail("%v", err)
	}
	ours, err := binary(root, *ourBin, "-highload", "make build")
	if err != nil {
		return fail("%v", err)
	}
	outDir := fromRoot(root, *out)
	var profileList []string
	for _, p := range strings.Split(*profiles, ",") {
		if p = strings.TrimSpace(p); p != "" {
			profileList = append(profileList, p)
		}
	}
	if len(profileList) == 0 {
		return fail("-profile: name at least one init profile (e.g. highload)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Both variants run copies written the same way, just now: a binary
	// the Go linker has just written keeps about 18 MB more of its file
	// pages mapped in a daemon (RssFile 75 vs 58 MB idle, the same binary
	// copied with cp), which a peak-RSS figure would count against
	// whichever variant was built last.
	binDir, err := os.MkdirTemp(*tmp, "bench-bin-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(binDir)
	stockRun, err := stageBinary(stock, filepath.Join(binDir, "ipfs-stock"))
	if err != nil {
		return fail("%v", err)
	}
	oursRun, err := stageBinary(ours, filepath.Join(binDir, "ipfs-highload"))
	if err != nil {
		return fail("%v", err)
	}

	built, toolDir, err := buildTools(ctx, root, *tmp, ws)
	if toolDir != "" {
		defer os.RemoveAll(toolDir)
	}
	if err != nil {
		return fail("%v", err)
	}

	res := runner.Run(ctx, runner.Options{
		Workloads: ws,
		Stock:     workload.Variant{Name: "stock", Bin: stockRun, StagedFrom: stock},
		Highload:  workload.Variant{Name: "highload", Bin: oursRun, StagedFrom: ours, Profiles: profileList, Config: settings},
		Rounds:    *rounds,
		Quick:     *quick,
		Tools:     built,
		TempDir:   *tmp,
		Progress:  os.Stderr,
	})
	fmt.Print(res.Markdown())

	paths, err := res.WriteFiles(outDir)
	for _, p := range paths {
		fmt.Fprintf(os.Stderr, "bench: wrote %s\n", p)
	}
	code := 0
	switch {
	case errors.Is(err, runner.ErrNoRatios):
		fmt.Fprintf(os.Stderr, "bench: %v; no chart written\n", err)
	case err != nil:
		fmt.Fprintf(os.Stderr, "bench: writing results: %v\n", err)
		code = 1
	}
	if res.FailedRounds > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d round(s) failed\n", res.FailedRounds)
		code = 1
	}
	if res.Interrupted {
		fmt.Fprintln(os.Stderr, "bench: interrupted")
		code = 1
	}
	return code
}

// configFlag collects -config settings.
type configFlag []workload.Setting

func (f *configFlag) String() string {
	var parts []string
	for _, s := range *f {
		parts = append(parts, fmt.Sprintf("%s=%v", s.Path, s.Value))
	}
	return strings.Join(parts, " ")
}

func (f *configFlag) Set(v string) error {
	s, err := workload.ParseSetting(v)
	if err != nil {
		return err
	}
	*f = append(*f, s)
	return nil
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	return 2
}

// repoRoot walks up from the working directory to the go.mod of this module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		buf, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(buf), "module "+modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory; run from the repo", modulePath)
		}
		dir = parent
	}
}

func fromRoot(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// binary resolves an ipfs binary and checks that it exists and is executable.
func binary(root, p, flagName, makeTarget string) (string, error) {
	abs := fromRoot(root, p)
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%s binary %s is missing: build it with `%s` (or run `make bench`), or pass %s PATH", strings.TrimPrefix(flagName, "-"), abs, makeTarget, flagName)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s binary %s is not an executable file", strings.TrimPrefix(flagName, "-"), abs)
	}
	return abs, nil
}

// stageBinary copies the executable src to dst with plain reads and
// writes, and returns dst.
func stageBinary(src, dst string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("staging %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return "", fmt.Errorf("staging %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", fmt.Errorf("staging %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return "", fmt.Errorf("staging %s to %s: %w", src, dst, err)
	}
	return dst, nil
}

// selectWorkloads returns the registered workloads named in the
// comma-separated list, in ID order, or all of them for "".
func selectWorkloads(list string) ([]workload.Workload, error) {
	all := workload.All()
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	var known []string
	for _, w := range all {
		known = append(known, w.ID)
	}
	want := map[string]bool{}
	for _, id := range strings.Split(list, ",") {
		id = strings.ToUpper(strings.TrimSpace(id))
		if id == "" {
			continue
		}
		if _, ok := workload.Get(id); !ok {
			return nil, fmt.Errorf("unknown workload %q (registered: %s)", id, strings.Join(known, ", "))
		}
		want[id] = true
	}
	var out []workload.Workload
	for _, w := range all {
		if want[w.ID] {
			out = append(out, w)
		}
	}
	return out, nil
}

// buildTools builds the helper binaries that a selected workload uses and
// whose package exists in the tree, into a temporary directory under tmp
// made only when there is something to build. The caller removes dir.
func buildTools(ctx context.Context, root, tmp string, ws []workload.Workload) (built map[string]string, dir string, err error) {
	built = map[string]string{}
	for name, t := range tools {
		needed := slices.ContainsFunc(ws, func(w workload.Workload) bool { return slices.Contains(t.users, w.ID) })
		if !needed {
			continue
		}
		if matches, _ := filepath.Glob(filepath.Join(root, t.pkg, "*.go")); len(matches) == 0 {
			continue
		}
		if dir == "" {
			if dir, err = os.MkdirTemp(tmp, "bench-tools-"); err != nil {
				return nil, "", err
			}
		}
		bin := filepath.Join(dir, name)
		fmt.Fprintf(os.Stderr, "bench: building %s (%s)\n", name, t.pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, t.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, dir, fmt.Errorf("building %s (%s): %w\n%s", name, t.pkg, err, out)
		}
		built[name] = bin
	}
	return built, dir, nil
}
