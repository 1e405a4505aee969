package blocklog

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
)

// cpuTime is this process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchShape is a sync=true put workload: writers concurrent writers, total
// bytes of values whose sizes size returns.
type benchShape struct {
	name    string
	writers int
	total   int
	size    func(r *rand.Rand) int
}

var benchShapes = []benchShape{
	// A bulk fetch (W1): 256 KiB blocks, a few concurrent writers.
	{"bulk256k", 3, 256 << 20, func(*rand.Rand) int { return 256 << 10 }},
	// W6's sync=true puts row: 8 writers, values log-uniform in 1-256 KiB.
	{"logu1-256k", 8, 64 << 20, func(r *rand.Rand) int { return int(1024 * math.Exp(r.Float64()*math.Log(256))) }},
}

// BenchmarkSyncPuts runs each shape with the zero-filled tail off, on (the
// default), and adaptive (paused while groups average 192 KiB or more). Run it with -benchtime=1x -count N; it reports
// the process's CPU time per MiB written (cpu-ms/MiB: the committer's
// pwritev, the flushes, the preallocator's zeros), MiB/s, puts/s, the
// p99 put latency and the zeros written per data byte.
func BenchmarkSyncPuts(b *testing.B) {
	for _, shape := range benchShapes {
		for _, variant := range []struct {
			name string
			o    Options
		}{
			{"off", Options{Sync: true, NoPreallocate: true, CompactInterval: -1}},
			{"on", Options{Sync: true, CompactInterval: -1}},
			{"adaptive", Options{Sync: true, CompactInterval: -1, PreallocMaxGroup: 192 << 10}},
		} {
			b.Run(shape.name+"/"+variant.name, func(b *testing.B) {
				for it := range b.N {
					runSyncPuts(b, shape, variant.name, variant.o, it)
				}
			})
		}
	}
}

func runSyncPuts(b *testing.B, shape benchShape, variant string, o Options, it int) {
	d, err := Open(b.TempDir(), o)
	if err != nil {
		b.Fatal(err)
	}
	// Let the preallocator fill its first lead, as a daemon's log has by
	// the time a fetch starts: poll until the zero-filled count is nonzero
	// and has stopped growing (bounded at 2 s).
	for prev, deadline := int64(-1), time.Now().Add(2*time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		z := int64(d.Stats().ZeroFilledBytes)
		if z > 0 && z == prev {
			break
		}
		prev = z
	}
	z0 := d.Stats().ZeroFilledBytes
	r := rand.New(rand.NewPCG(uint64(it), 7))
	var sizes []int
	for sum := 0; sum < shape.total; {
		n := shape.size(r)
		sizes = append(sizes, n)
		sum += n
	}
	val := make([]byte, 256<<10)
	for i := range val {
		val[i] = byte(i*7 + i>>9)
	}
	n := len(sizes)
	lat := make([]time.Duration, n)
	c0, t0 := cpuTime(), time.Now()
	var wg sync.WaitGroup
	for w := range shape.writers {
		wg.Go(func() {
			for i := w; i < n; i += shape.writers {
				k := ds.NewKey(fmt.Sprintf("/b/%d/%06d", it, i))
				s := time.Now()
				if err := d.Put(ctx, k, val[:sizes[i]]); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(s)
			}
		})
	}
	wg.Wait()
	wall, cpu := time.Since(t0), cpuTime()-c0
	st := d.Stats()
	if err := d.Close(); err != nil {
		b.Fatal(err)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	mib := float64(shape.total) / (1 << 20)
	meanFlush := time.Duration(0)
	if st.Syncs > 0 {
		meanFlush = st.SyncTime / time.Duration(st.Syncs)
	}
	zeros := float64(st.ZeroFilledBytes-z0) / float64(shape.total)
	p99 := lat[n*99/100]
	b.ReportMetric(float64(cpu.Microseconds())/1000/mib, "cpu-ms/MiB")
	b.ReportMetric(mib/wall.Seconds(), "MiB/s")
	b.ReportMetric(float64(n)/wall.Seconds(), "puts/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(zeros, "zeros/byte")
	fmt.Fprintf(os.Stderr, "RESULT %s/%s: cpu %s for %.0f MiB (%d puts) in %s, %.2f puts/group of %.0f KiB, mean flush %s, p99 %s, zeros %.2f per byte, in-place groups %d/%d\n",
		shape.name, variant, cpu.Round(time.Millisecond), mib, n, wall.Round(time.Millisecond),
		float64(st.GroupedOps)/float64(max(st.Groups, 1)), float64(st.GroupBytes)/float64(max(st.Groups, 1))/1024,
		meanFlush.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), zeros, st.InPlaceGroups, st.Groups)
}
