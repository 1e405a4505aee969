package datastore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubo-highload/highload/bench/internal/workload"
)

func openForTest(t *testing.T, name string) (f StoreFactory, dir string) {
	t.Helper()
	f, ok := Store(name)
	if !ok {
		t.Fatalf("store %q not registered (have %v)", name, StoreNames())
	}
	dir = filepath.Join(t.TempDir(), "store")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return f, dir
}

func TestHarnessCountsOpsOnEveryStore(t *testing.T) {
	tr, err := Generate(tinySpec(11))
	if err != nil {
		t.Fatal(err)
	}
	want := tr.Expected()
	vals := NewValues(11, tr.Spec.MaxSize)
	for _, name := range []string{StoreFlatfs, StorePebble, StoreTieredLogProfile} {
		t.Run(name, func(t *testing.T) {
			f, dir := openForTest(t, name)
			s, err := f.Open(dir, StoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			// One worker runs the trace exactly in order.
			mix, err := RunOps(ctx, s, tr, tr.Ops[:tr.MixLen], 1, vals)
			if err != nil {
				t.Fatal(err)
			}
			reads, err := RunOps(ctx, s, tr, tr.Ops[tr.MixLen:], 1, vals)
			if err != nil {
				t.Fatal(err)
			}
			gets := mix.Count[OpGet] + reads.Count[OpGet]
			found := mix.Found[OpGet] + reads.Found[OpGet]
			if gets != want.Gets || found != want.GetHits || mix.Count[OpHas] != want.Has ||
				mix.Found[OpHas] != want.HasHits || mix.Count[OpPut] != want.Puts ||
				reads.Count[OpGet] != want.ReadGets || reads.Found[OpGet] != want.ReadGetHits ||
				reads.Count[OpHas]+reads.Count[OpPut] != 0 {
				t.Fatalf("observed mix %+v reads %+v; trace expects %+v", mix.Count, reads.Count, want)
			}
			if mix.BadValues+reads.BadValues != 0 {
				t.Fatalf("%d values of the wrong size", mix.BadValues+reads.BadValues)
			}
			for k := range 3 {
				if len(mix.Lat[k]) != mix.Count[k] {
					t.Fatalf("%v: %d latencies for %d ops", OpKind(k), len(mix.Lat[k]), mix.Count[k])
				}
			}
			if mix.Quantile(OpPut, 0.5) <= 0 || mix.Quantile(OpPut, 0.99) < mix.Quantile(OpPut, 0.5) || mix.OpsPerSec() <= 0 {
				t.Fatalf("latencies p50 %v p99 %v, %.0f ops/s", mix.Quantile(OpPut, 0.5), mix.Quantile(OpPut, 0.99), mix.OpsPerSec())
			}
			// Several workers run the same ops: the counts per kind hold;
			// what was found may differ only by a Get overtaking its Put,
			// and not at all here, since every key is already stored.
			again, err := RunOps(ctx, s, tr, tr.Ops, 4, vals)
			if err != nil {
				t.Fatal(err)
			}
			if again.Count != [3]int{want.Gets, want.Has, want.Puts} || again.Found[OpGet] != gets-countNeverPut(tr) {
				t.Fatalf("4 workers: counts %+v found %+v", again.Count, again.Found)
			}
		})
	}
}

// countNeverPut counts the Gets of keys the whole trace never Puts.
func countNeverPut(tr *Trace) int {
	put := map[uint32]bool{}
	for _, op := range tr.Ops {
		if op.Kind == OpPut {
			put[op.Rank] = true
		}
	}
	n := 0
	for _, op := range tr.Ops {
		if op.Kind == OpGet && !put[op.Rank] {
			n++
		}
	}
	return n
}

func TestRunPutsWritesFreshKeys(t *testing.T) {
	for _, name := range []string{StoreFlatfs, StoreFlatfsSync, StorePebble} {
		t.Run(name, func(t *testing.T) {
			f, dir := openForTest(t, name)
			s, err := f.Open(dir, StoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			spec := PutSpec{Writers: 4, Duration: time.Minute, MaxOps: 100, Seed: 5,
				Size: func(uint64) int { return 4096 }}
			res, err := RunPuts(context.Background(), s, spec, NewValues(5, 8192))
			if err != nil {
				t.Fatal(err)
			}
			if res.Count[OpPut] != 100 || res.WrittenBytes != 100*4096 || len(res.Lat[OpPut]) != 100 {
				t.Fatalf("puts %d bytes %d", res.Count[OpPut], res.WrittenBytes)
			}
			for i := range uint32(100) {
				k, _ := KeyAndSize(5, i, 1, 1)
				v, err := s.Get(context.Background(), k)
				if err != nil || len(v) != 4096 {
					t.Fatalf("key %d: %d bytes, %v", i, len(v), err)
				}
			}
		})
	}
}

func TestRunConfigFigures(t *testing.T) {
	cfg := QuickConfig()
	cfg.Trace.Keys, cfg.Trace.MixOps, cfg.Trace.ReadOps = 2000, 1500, 1000
	cfg.Trace.MaxSize = 32 << 10
	cfg.Puts.Duration, cfg.Puts.MaxOps = time.Second, 200
	cfg.Ingest.Duration, cfg.Ingest.MaxOps = time.Second, 200
	names := map[string]map[string]bool{}
	for _, v := range []string{"stock", "highload"} {
		env := &workload.Env{Ctx: context.Background(), Dir: t.TempDir(), Logf: t.Logf}
		figs, err := RunConfig(env, workload.Variant{Name: v}, cfg)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		names[v] = map[string]bool{}
		for _, f := range figs {
			if names[v][f.Name] {
				t.Fatalf("%s: figure %q twice", v, f.Name)
			}
			names[v][f.Name] = true
			if f.Value < 0 || f.Unit == "" {
				t.Fatalf("%s: %+v", v, f)
			}
		}
		// The round leaves no store behind.
		if left, _ := os.ReadDir(env.Dir); len(left) != 0 {
			t.Fatalf("%s: %d entries left in the round's dir", v, len(left))
		}
	}
	for _, n := range []string{"Zipf mix ops/s", "Zipf reads ops/s", "Zipf reads Get p99", "hit ratio Belady",
		"hit ratio otter", "hit ratio LRU", "concurrent puts", "small-block ingest"} {
		if !names["stock"][n] || !names["highload"][n] {
			t.Fatalf("figure %q missing from a variant", n)
		}
	}
	// Store-specific extras only in stock, each prefixed with its store.
	for n := range names["stock"] {
		if !names["highload"][n] && !strings.HasPrefix(n, StorePebble+" ") && !strings.HasPrefix(n, StoreFlatfsSync+" ") {
			t.Fatalf("stock-only figure %q has no store prefix", n)
		}
	}
	for _, n := range []string{"pebble Zipf reads ops/s", "flatfs sync=true concurrent puts", "pebble small-block ingest"} {
		if !names["stock"][n] {
			t.Fatalf("stock lacks %q", n)
		}
	}
}

// A highload variant initialised with the highload-log profile runs its
// rows on the store that profile mounts (memory, blocklog, flatfs), and
// still reports the highload profile's store (memory over flatfs) as an
// extra Zipf row; without that profile it runs the highload profile's.
func TestVariantBlocksStoreFollowsTheLogProfile(t *testing.T) {
	for _, c := range []struct {
		v    workload.Variant
		want string
	}{
		{workload.Variant{Name: "stock"}, StoreFlatfs},
		{workload.Variant{Name: "highload", Profiles: []string{"highload"}}, StoreTiered},
		{workload.Variant{Name: "highload", Profiles: []string{"test", LogProfile}}, StoreTieredLogProfile},
	} {
		if got, ok := VariantBlocksStore(c.v); !ok || got != c.want {
			t.Fatalf("%+v: store %q (%v), want %q", c.v, got, ok, c.want)
		}
	}
	if _, ok := VariantBlocksStore(workload.Variant{Name: "other"}); ok {
		t.Fatal("an unknown variant got a store")
	}

	cfg := QuickConfig()
	cfg.Trace.Keys, cfg.Trace.MixOps, cfg.Trace.ReadOps = 2000, 1500, 1000
	cfg.Trace.MaxSize = 32 << 10
	cfg.Puts.Duration, cfg.Puts.MaxOps = time.Second, 100
	cfg.Ingest.Duration, cfg.Ingest.MaxOps = time.Second, 100
	env := &workload.Env{Ctx: context.Background(), Dir: t.TempDir(), Logf: t.Logf}
	var logged []string
	env.Logf = func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)); t.Logf(f, a...) }
	figs, err := RunConfig(env, workload.Variant{Name: "highload", Profiles: []string{LogProfile}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range figs {
		have[f.Name] = true
	}
	for _, n := range []string{"Zipf reads ops/s", "memory tier hit ratio", StoreTiered + " Zipf reads ops/s", StoreTiered + " memory tier hit ratio"} {
		if !have[n] {
			t.Fatalf("figure %q missing; have %v", n, have)
		}
	}
	ranMain := false
	for _, l := range logged {
		if strings.HasPrefix(l, "W6 "+StoreTieredLogProfile+": reads") {
			ranMain = true
		}
	}
	if !ranMain {
		t.Fatalf("the Zipf reads did not run on %q: %q", StoreTieredLogProfile, logged)
	}
}

func TestW6Registered(t *testing.T) {
	w, ok := workload.Get("W6")
	if !ok || w.Run == nil || w.Name != "datastore" {
		t.Fatalf("W6 not registered: %+v", w)
	}
}
