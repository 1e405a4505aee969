package datastore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/kubo-highload/highload/bench/internal/workload"
)

// Config sizes one W6 round.
type Config struct {
	// Trace is the Zipf trace every store runs (RunConfig sets its Seed,
	// the same in every round).
	Trace TraceSpec
	// Workers run the trace concurrently against a store, taking operations
	// in trace order (Kubo's Bitswap server also reads with several workers).
	Workers int
	// CacheFraction sizes the memory cache tier as a fraction of the trace's
	// data bytes (0.10).
	CacheFraction float64
	// Puts is the concurrent-put row (8 writers, trace-sized values).
	Puts PutSpec
	// Ingest is the small-block ingest row (16 KiB values, 8 writers).
	Ingest PutSpec
	// Settle is an idle pause (after a sync) before the first row.
	Settle time.Duration
}

// KiB is 1024 bytes.
const KiB = 1 << 10

// IngestBlockSize is the value size of the small-block ingest row: W2's
// block size, where every block costs flatfs a file.
const IngestBlockSize = 16 * KiB

// FullConfig is the full-size round: 1M keys, a 150k-op mix (30k Puts of
// fresh keys, about 1.3 GiB stored) and 120k Zipf reads, values log-uniform
// in 1-256 KiB. Sized so that a stock round (flatfs, pebble and the put
// rows) stays within about five minutes on a busy 2-core machine.
func FullConfig() Config {
	return Config{
		Trace: TraceSpec{
			Keys: 1_000_000, S: 1.1,
			MixOps: 150_000, GetPct: 60, HasPct: 20, PutPct: 20,
			ReadOps: 120_000,
			MinSize: 1 * KiB, MaxSize: 256 * KiB,
		},
		Workers:       4,
		CacheFraction: 0.10,
		Puts:          PutSpec{Writers: 8, Duration: 6 * time.Second, MaxOps: 200_000},
		Ingest:        PutSpec{Writers: 8, Duration: 8 * time.Second, MaxOps: (2 << 30) / IngestBlockSize},
		Settle:        3 * time.Second,
	}
}

// QuickConfig is the tiny round the test suite runs: 20k keys, seconds.
func QuickConfig() Config {
	c := FullConfig()
	c.Trace.Keys = 20_000
	c.Trace.MixOps = 6_000
	c.Trace.ReadOps = 6_000
	c.Puts.Duration, c.Puts.MaxOps = 500*time.Millisecond, 2_000
	c.Ingest.Duration, c.Ingest.MaxOps = 500*time.Millisecond, (32<<20)/IngestBlockSize
	c.Settle = 0
	return c
}

func init() {
	workload.Register(workload.Workload{
		ID:   "W6",
		Name: "datastore",
		Shape: "Zipf(1.1) Get/Has/Put 60/20/20 (150k ops, Puts of fresh keys) over 1M Kubo block keys, values 1-256 KiB " +
			"log-uniform, then 120k Zipf reads; hit ratio of a cache at 10% of data (Belady, otter, LRU); 8-writer puts; " +
			"16 KiB ingest; flatfs and pebble stores, no daemons",
		Run: Run,
	})
}

// Run is W6's round: the trace, the hit-ratio yardsticks and the put rows,
// on the variant's blocks store and, for stock, on pebble and flatfs
// sync=true as extra, store-prefixed figures.
func Run(env *workload.Env, v workload.Variant) ([]workload.Figure, error) {
	cfg := FullConfig()
	if env.Quick {
		cfg = QuickConfig()
	}
	return RunConfig(env, v, cfg)
}

// RunConfig is Run with an explicit size, for tests and drivers.
func RunConfig(env *workload.Env, v workload.Variant, cfg Config) ([]workload.Figure, error) {
	ctx := env.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	logf := env.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	main, ok := VariantBlocksStore(v)
	if !ok {
		return nil, fmt.Errorf("W6: no blocks store known for variant %q", v.Name)
	}
	// Every store in every round runs the same trace: a fresh store per
	// round is all the freshness W6 needs, and a fixed trace keeps the hot
	// keys' sizes (which weigh on every figure) the same from round to round.
	seed := uint64(0x5736)
	cfg.Trace.Seed = seed
	cfg.Puts.Seed, cfg.Ingest.Seed = seed+1000, seed+2000
	if cfg.Puts.Size == nil {
		lo, hi := cfg.Trace.MinSize, cfg.Trace.MaxSize
		cfg.Puts.Size = func(i uint64) int { _, s := KeyAndSize(seed+3000, uint32(i), lo, hi); return s }
	}
	if cfg.Ingest.Size == nil {
		cfg.Ingest.Size = func(uint64) int { return IngestBlockSize }
	}

	t0 := time.Now()
	tr, sims, err := traceAndSims(cfg)
	if err != nil {
		return nil, err
	}
	logf("W6 trace: %d ops over %d keys, %d distinct keys put = %.0f MiB, cache %.0f MiB; yardsticks in %s",
		len(tr.Ops), tr.Spec.Keys, tr.DistinctPut, float64(tr.DataBytes)/(1<<20),
		float64(sims.capacity)/(1<<20), time.Since(t0).Round(time.Millisecond))

	var figs []workload.Figure
	traceNote := fmt.Sprintf("cache = 10%% of %.0f MiB; same trace in both variants", float64(tr.DataBytes)/(1<<20))
	figs = append(figs,
		workload.Figure{Name: "hit ratio Belady", Unit: "ratio", Value: sims.belady.HitRatio(), HigherIsBetter: true, Note: traceNote + "; size-aware farthest-next-use"},
		workload.Figure{Name: "hit ratio otter", Unit: "ratio", Value: sims.otter.HitRatio(), HigherIsBetter: true, Note: "otter v2 W-TinyLFU, weighted by bytes"},
		workload.Figure{Name: "hit ratio LRU", Unit: "ratio", Value: sims.lru.HitRatio(), HigherIsBetter: true},
		workload.Figure{Name: "otter/Belady", Unit: "ratio", Value: sims.otter.HitRatio() / sims.belady.HitRatio(), HigherIsBetter: true},
	)

	vals := NewValues(seed, cfg.Trace.MaxSize)
	// The rows, in the order they run. The variant's blocks store goes
	// first, in the same order in both variants, so that its figures are
	// measured after the same history: on this VM a row that follows
	// gigabytes of other writes can run several times slower. Stock's
	// store-specific extras come after.
	type row struct {
		kind, store, prefix string
	}
	rows := []row{{"ingest", main, ""}, {"puts", main, ""}, {"zipf", main, ""}}
	if v.Name == "stock" {
		p, fs := StorePebble+" ", StoreFlatfsSync+" "
		rows = append(rows, row{"ingest", StorePebble, p}, row{"puts", StoreFlatfsSync, fs},
			row{"puts", StorePebble, p}, row{"zipf", StorePebble, p})
	}
	if main == StoreTieredLogProfile {
		// The highload profile's store too (memory tier over flatfs), so
		// that a run with -profile highload-log still shows it.
		rows = append(rows, row{"zipf", StoreTiered, StoreTiered + " "})
	}
	if v.Name == "highload" {
		// The tiered store against stock's extras, under the same names:
		// group commit over flatfs sync=true against flatfs sync=true
		// alone; the tiered store over a write-tuned pebble against
		// default pebble for small-block ingest; tuned pebble alone (no
		// stock pair) to show what the tuning itself gives.
		rows = append(rows, row{"puts", StoreTieredSync, StoreFlatfsSync + " "},
			row{"ingest", StoreTieredPebble, StorePebble + " "},
			row{"ingest", StorePebbleTuned, StorePebbleTuned + " "},
			row{"puts", StoreTieredPebbleSync, StoreTieredPebbleSync + " "})
		// The append-only log (datastore/blocklog) as the fast tier: alone
		// and under the tiered store, for 16 KiB ingest (against stock's
		// flatfs "small-block ingest") and for sync=true puts (against
		// stock's "flatfs sync=true concurrent puts").
		rows = append(rows, row{"ingest", StoreBlocklog, StoreBlocklog + " "},
			row{"ingest", StoreTieredBlocklog, StoreTieredBlocklog + " "},
			row{"puts", StoreBlocklogSync, StoreBlocklogSync + " "},
			row{"puts", StoreTieredBlocklogSync, StoreTieredBlocklogSync + " "})
	}
	if cfg.Settle > 0 {
		// Let the previous round's write-back and deletes settle.
		syscall.Sync()
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
			return figs, ctx.Err()
		}
	}
	memBytes := sims.capacity
	byRow := make([][]workload.Figure, len(rows))
	var rowErr error
	for i, r := range rows {
		var f []workload.Figure
		var err error
		switch r.kind {
		case "zipf":
			f, err = zipfRow(ctx, env, logf, r.store, r.prefix, tr, cfg, vals, memBytes, sims)
		case "puts":
			f, err = putRow(ctx, env, logf, r.store, r.prefix, "puts", cfg.Puts, vals, memBytes)
		case "ingest":
			f, err = putRow(ctx, env, logf, r.store, r.prefix, "ingest", cfg.Ingest, vals, memBytes)
		}
		byRow[i] = f
		if err != nil {
			rowErr = err
			break
		}
	}
	// The report lists the trace first, then puts, then ingest; each with
	// the blocks store before the extras.
	for _, kind := range []string{"zipf", "puts", "ingest"} {
		for i, r := range rows {
			if r.kind == kind {
				figs = append(figs, byRow[i]...)
			}
		}
	}
	return figs, rowErr
}

type sims struct {
	capacity           int64
	belady, otter, lru CacheResult
}

// The last trace and its simulations, reused by every later round and
// variant with the same spec (the runner runs them all in one process).
var memo struct {
	sync.Mutex
	spec  TraceSpec
	trace *Trace
	sims  sims
}

func traceAndSims(cfg Config) (*Trace, sims, error) {
	memo.Lock()
	defer memo.Unlock()
	if memo.trace != nil && memo.spec == cfg.Trace {
		return memo.trace, memo.sims, nil
	}
	tr, err := Generate(cfg.Trace)
	if err != nil {
		return nil, sims{}, err
	}
	reqs := tr.CacheRequests()
	s := sims{capacity: int64(cfg.CacheFraction * float64(tr.DataBytes))}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.belady = Belady(reqs, s.capacity) }()
	go func() { defer wg.Done(); s.otter = SimulateOtter(reqs, s.capacity) }()
	go func() { defer wg.Done(); s.lru = SimulateLRU(reqs, s.capacity) }()
	wg.Wait()
	memo.spec, memo.trace, memo.sims = cfg.Trace, tr, s
	return tr, s, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func openStore(env *workload.Env, name, row string, memBytes int64) (ds.Datastore, string, StoreFactory, error) {
	f, ok := Store(name)
	if !ok {
		return nil, "", f, fmt.Errorf("W6: unknown store %q", name)
	}
	dir := filepath.Join(env.Dir, "w6-"+strings.NewReplacer(" ", "-", "=", "-").Replace(name)+"-"+row)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", f, err
	}
	s, err := f.Open(dir, StoreOptions{MemoryBytes: memBytes})
	if err != nil {
		return nil, "", f, fmt.Errorf("W6: open %s: %w", name, err)
	}
	return s, dir, f, nil
}

// closeStore closes s, deletes its files and flushes the machine's dirty
// pages (sync(2), untimed), so that the next store does not pay for this
// one's write-back.
func closeStore(s ds.Datastore, dir string, err error) error {
	cerr := s.Close()
	_ = os.RemoveAll(dir)
	syscall.Sync()
	if err == nil && cerr != nil {
		err = cerr
	}
	return err
}

func zipfRow(ctx context.Context, env *workload.Env, logf func(string, ...any), name, prefix string,
	tr *Trace, cfg Config, vals *Values, memBytes int64, sm sims) (figs []workload.Figure, err error) {
	s, dir, f, err := openStore(env, name, "zipf", memBytes)
	if err != nil {
		return nil, err
	}
	defer func() { err = closeStore(s, dir, err) }()
	note := f.Desc
	mix, err := RunOps(ctx, s, tr, tr.Ops[:tr.MixLen], cfg.Workers, vals)
	if err != nil {
		return nil, fmt.Errorf("W6 %s mix: %w", name, err)
	}
	logf("W6 %s: mix %d ops in %s = %.0f ops/s (Get found %d/%d, Has true %d/%d, %d puts of %.0f MiB, %.0f MiB read)",
		name, mix.Ops(), mix.Elapsed.Round(time.Millisecond), mix.OpsPerSec(),
		mix.Found[OpGet], mix.Count[OpGet], mix.Found[OpHas], mix.Count[OpHas], mix.Count[OpPut],
		float64(mix.WrittenBytes)/(1<<20), float64(mix.ReadBytes)/(1<<20))
	reads, err := RunOps(ctx, s, tr, tr.Ops[tr.MixLen:], cfg.Workers, vals)
	if err != nil {
		return nil, fmt.Errorf("W6 %s reads: %w", name, err)
	}
	logf("W6 %s: reads %d in %s = %.0f ops/s (found %d, %.0f MiB read, %d bad)",
		name, reads.Ops(), reads.Elapsed.Round(time.Millisecond), reads.OpsPerSec(),
		reads.Found[OpGet], float64(reads.ReadBytes)/(1<<20), mix.BadValues+reads.BadValues)
	if bad := mix.BadValues + reads.BadValues; bad > 0 {
		return nil, fmt.Errorf("W6 %s: %d Gets returned a value of the wrong size", name, bad)
	}
	wk := fmt.Sprintf("%d workers", cfg.Workers)
	figs = append(figs,
		workload.Figure{Name: prefix + "Zipf mix ops/s", Unit: "ops/s", Value: mix.OpsPerSec(), HigherIsBetter: true, Note: note + "; " + wk},
		workload.Figure{Name: prefix + "Zipf mix Get p99", Unit: "ms", Value: ms(mix.Quantile(OpGet, 0.99))},
		workload.Figure{Name: prefix + "Zipf mix Has p99", Unit: "ms", Value: ms(mix.Quantile(OpHas, 0.99))},
		workload.Figure{Name: prefix + "Zipf mix Put p50", Unit: "ms", Value: ms(mix.Quantile(OpPut, 0.50))},
		workload.Figure{Name: prefix + "Zipf mix Put p99", Unit: "ms", Value: ms(mix.Quantile(OpPut, 0.99))},
		workload.Figure{Name: prefix + "Zipf reads ops/s", Unit: "ops/s", Value: reads.OpsPerSec(), HigherIsBetter: true, Note: "warm store, Get only"},
		workload.Figure{Name: prefix + "Zipf reads Get p50", Unit: "ms", Value: ms(reads.Quantile(OpGet, 0.50))},
		workload.Figure{Name: prefix + "Zipf reads Get p99", Unit: "ms", Value: ms(reads.Quantile(OpGet, 0.99))},
	)
	if mt, ok := s.(MemoryTier); ok {
		h, m := mt.MemoryTierHits()
		if h+m > 0 {
			r := float64(h) / float64(h+m)
			figs = append(figs,
				workload.Figure{Name: prefix + "memory tier hit ratio", Unit: "ratio", Value: r, HigherIsBetter: true},
				workload.Figure{Name: prefix + "memory tier/Belady", Unit: "ratio", Value: r / sm.belady.HitRatio(), HigherIsBetter: true},
			)
		}
	}
	return figs, nil
}

func putRow(ctx context.Context, env *workload.Env, logf func(string, ...any), name, prefix, row string,
	spec PutSpec, vals *Values, memBytes int64) (figs []workload.Figure, err error) {
	s, dir, f, err := openStore(env, name, row, memBytes)
	if err != nil {
		return nil, err
	}
	defer func() { err = closeStore(s, dir, err) }()
	res, err := RunPuts(ctx, s, spec, vals)
	if err != nil {
		return nil, fmt.Errorf("W6 %s %s: %w", name, row, err)
	}
	logf("W6 %s %s: %d puts, %.0f MiB in %s = %.0f ops/s, %.1f MiB/s, p99 %.1f ms",
		name, row, res.Ops(), float64(res.WrittenBytes)/(1<<20), res.Elapsed.Round(time.Millisecond),
		res.OpsPerSec(), res.MiBPerSec(), ms(res.Quantile(OpPut, 0.99)))
	note := fmt.Sprintf("%s; %d writers", f.Desc, spec.Writers)
	if row == "ingest" {
		return []workload.Figure{
			{Name: prefix + "small-block ingest", Unit: "MiB/s", Value: res.MiBPerSec(), HigherIsBetter: true,
				Note: note + ", 16 KiB values; fast-tier target >= 300"},
			{Name: prefix + "small-block ingest Put p99", Unit: "ms", Value: ms(res.Quantile(OpPut, 0.99))},
		}, nil
	}
	return []workload.Figure{
		{Name: prefix + "concurrent puts", Unit: "ops/s", Value: res.OpsPerSec(), HigherIsBetter: true,
			Note: note + ", values 1-256 KiB log-uniform"},
		{Name: prefix + "concurrent puts p99", Unit: "ms", Value: ms(res.Quantile(OpPut, 0.99))},
	}, nil
}
