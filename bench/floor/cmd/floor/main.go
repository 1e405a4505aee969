// Command floor prints the least CPU a fetch of the W1 and W2 shapes can
// cost on this machine (package floor): the whole pipeline and its parts,
// the median of a few rounds each.
//
//	go run ./bench/floor/cmd/floor                    # W1 and W2 shapes, 5 rounds
//	go run ./bench/floor/cmd/floor -shape 64MiB/16KiB -rounds 3 -json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/kubo-highload/highload/bench/floor"
)

type shapeResult struct {
	Shape  string                `json:"shape"`
	Rounds int                   `json:"rounds"`
	Parts  map[string]floor.Cost `json:"parts"`
}

func main() {
	shapes := flag.String("shape", "256MiB/256KiB,64MiB/16KiB", "comma-separated SIZE/BLOCK shapes (W1: 256MiB/256KiB, W2: 64MiB/16KiB)")
	rounds := flag.Int("rounds", 5, "rounds per shape; each part's median is printed")
	syncEvery := flag.String("sync-every", "0", "bytes written between fdatasyncs (0: one at the end)")
	dir := flag.String("dir", "", "directory for the files (default: a new one under the temp dir, removed after)")
	asJSON := flag.Bool("json", false, "print JSON instead of a table")
	flag.Parse()
	if err := run(*shapes, *rounds, *syncEvery, *dir, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(shapes string, rounds int, syncEvery, dir string, asJSON bool) error {
	if rounds < 1 {
		return fmt.Errorf("-rounds %d: want at least 1", rounds)
	}
	se, err := humanize.ParseBytes(syncEvery)
	if err != nil {
		return fmt.Errorf("-sync-every %q: %w", syncEvery, err)
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "floor-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	var out []shapeResult
	for _, sh := range strings.Split(shapes, ",") {
		size, block, ok := strings.Cut(strings.TrimSpace(sh), "/")
		if !ok {
			return fmt.Errorf("-shape %q: want SIZE/BLOCK, e.g. 256MiB/256KiB", sh)
		}
		sz, err := humanize.ParseBytes(size)
		if err != nil {
			return fmt.Errorf("-shape %q: size: %w", sh, err)
		}
		bl, err := humanize.ParseBytes(block)
		if err != nil {
			return fmt.Errorf("-shape %q: block: %w", sh, err)
		}
		o := floor.Options{Dir: dir, Size: int64(sz), Block: int(bl), SyncEvery: int64(se)}
		all := map[string][]floor.Cost{}
		for r := 0; r < rounds; r++ {
			c, err := floor.Pipeline(context.Background(), o)
			if err != nil {
				return err
			}
			all["pipeline"] = append(all["pipeline"], c)
			st, err := floor.Stages(context.Background(), o)
			if err != nil {
				return err
			}
			for k, v := range st {
				all[k] = append(all[k], v)
			}
		}
		res := shapeResult{Shape: sh, Rounds: rounds, Parts: map[string]floor.Cost{}}
		for k, cs := range all {
			slices.SortFunc(cs, func(a, b floor.Cost) int { return int(a.CPU - b.CPU) })
			res.Parts[k] = cs[len(cs)/2]
		}
		out = append(out, res)
	}
	if asJSON {
		e := json.NewEncoder(os.Stdout)
		e.SetIndent("", "  ")
		return e.Encode(out)
	}
	for _, r := range out {
		fmt.Printf("%s, median of %d rounds by CPU\n", r.Shape, r.Rounds)
		fmt.Printf("%-10s %10s %12s %12s %10s\n", "part", "CPU", "CPU/GiB", "CPU/block", "wall")
		for _, k := range []string{"pipeline", "read", "tls", "sha256", "write"} {
			c := r.Parts[k]
			fmt.Printf("%-10s %10s %12s %12s %10s\n", k, c.CPU.Round(time.Millisecond), c.CPUPerGiB().Round(time.Millisecond),
				c.CPUPerBlock().Round(100*time.Nanosecond), c.Wall.Round(time.Millisecond))
		}
		fmt.Println()
	}
	return nil
}
