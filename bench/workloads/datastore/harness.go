package datastore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
)

// Values hands out value bytes without allocating per operation: a value of
// size n for a key is a window of a seeded random buffer, at an offset
// derived from the key. Values are incompressible, like most file data.
type Values struct {
	buf []byte
	max int
}

// NewValues returns a source of values of at most maxSize bytes.
func NewValues(seed uint64, maxSize int) *Values {
	r := rand.New(rand.NewPCG(seed, ^seed))
	buf := make([]byte, 2*maxSize)
	for i := 0; i+8 <= len(buf); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
	return &Values{buf: buf, max: maxSize}
}

// Value returns size bytes for the key numbered id. The slice aliases a
// shared buffer: callers (datastores) must not modify it.
func (v *Values) Value(id uint64, size int) []byte {
	off := int((id * 0x9e3779b97f4a7c15) >> 40 % uint64(v.max))
	return v.buf[off : off+size : off+size]
}

// PhaseResult is what running a sequence of operations against a store
// observed.
type PhaseResult struct {
	// Elapsed is the wall time from the first operation to the last.
	Elapsed time.Duration
	// Count is the number of operations per OpKind.
	Count [3]int
	// Found counts Gets that returned a value and Has that returned true.
	Found [3]int
	// BadValues counts Gets that returned a value of the wrong length.
	BadValues int
	// ReadBytes is the sum of the value bytes Gets returned.
	ReadBytes int64
	// WrittenBytes is the sum of the value bytes Puts wrote.
	WrittenBytes int64
	// Lat holds every operation's latency per OpKind, sorted ascending.
	Lat [3][]time.Duration
}

// Ops is the total number of operations.
func (p PhaseResult) Ops() int { return p.Count[OpGet] + p.Count[OpHas] + p.Count[OpPut] }

// OpsPerSec is Ops over Elapsed.
func (p PhaseResult) OpsPerSec() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Ops()) / p.Elapsed.Seconds()
}

// MiBPerSec is the bytes read and written over Elapsed, in MiB/s.
func (p PhaseResult) MiBPerSec() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.ReadBytes+p.WrittenBytes) / (1 << 20) / p.Elapsed.Seconds()
}

// Quantile returns the q-quantile (0..1) of kind's latencies, 0 if none ran.
func (p PhaseResult) Quantile(kind OpKind, q float64) time.Duration {
	return quantile(p.Lat[kind], q)
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

type workerLog struct {
	count, found [3]int
	bad          int
	read, wrote  int64
	lat          [3][]time.Duration
}

func (p *PhaseResult) merge(logs []*workerLog) {
	for _, l := range logs {
		for k := range 3 {
			p.Count[k] += l.count[k]
			p.Found[k] += l.found[k]
			p.Lat[k] = append(p.Lat[k], l.lat[k]...)
		}
		p.BadValues += l.bad
		p.ReadBytes += l.read
		p.WrittenBytes += l.wrote
	}
	for k := range 3 {
		slices.Sort(p.Lat[k])
	}
}

// RunOps executes ops against store with the given number of workers. The
// workers take operations in trace order from a shared cursor, so with one
// worker the run is exactly the trace; with more, a Get may overtake the Put
// just before it and see not-found, as concurrent requests would. Any error
// other than ds.ErrNotFound stops the run.
func RunOps(ctx context.Context, store ds.Datastore, t *Trace, ops []Op, workers int, vals *Values) (PhaseResult, error) {
	if workers < 1 {
		workers = 1
	}
	var (
		cursor   atomic.Int64
		firstErr error
		errOnce  sync.Once
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		stop.Store(true)
	}
	logs := make([]*workerLog, workers)
	start := time.Now()
	for w := range workers {
		l := &workerLog{}
		for k := range 3 {
			l.lat[k] = make([]time.Duration, 0, len(ops)/workers+16)
		}
		logs[w] = l
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				i := int(cursor.Add(1) - 1)
				if i >= len(ops) {
					return
				}
				if n&1023 == 0 && ctx.Err() != nil {
					fail(ctx.Err())
					return
				}
				op := ops[i]
				key, size := t.Key(op.Rank), t.Size(op.Rank)
				t0 := time.Now()
				switch op.Kind {
				case OpGet:
					v, err := store.Get(ctx, key)
					l.lat[OpGet] = append(l.lat[OpGet], time.Since(t0))
					switch {
					case err == nil:
						l.found[OpGet]++
						l.read += int64(len(v))
						if len(v) != size {
							l.bad++
						}
					case !errors.Is(err, ds.ErrNotFound):
						fail(fmt.Errorf("Get %s: %w", key, err))
						return
					}
				case OpHas:
					ok, err := store.Has(ctx, key)
					l.lat[OpHas] = append(l.lat[OpHas], time.Since(t0))
					if err != nil {
						fail(fmt.Errorf("store.Has %s: %w", key, err))
						return
					}
					if ok {
						l.found[OpHas]++
					}
				case OpPut:
					err := store.Put(ctx, key, vals.Value(uint64(op.Rank), size))
					l.lat[OpPut] = append(l.lat[OpPut], time.Since(t0))
					if err != nil {
						fail(fmt.Errorf("store.Put %s: %w", key, err))
						return
					}
					l.found[OpPut]++
					l.wrote += int64(size)
				}
				l.count[op.Kind]++
			}
		}()
	}
	wg.Wait()
	var res PhaseResult
	res.Elapsed = time.Since(start)
	res.merge(logs)
	return res, firstErr
}

// PutSpec describes a concurrent-put row: writers each Put fresh keys,
// until MaxOps puts in all or Duration, whichever comes first.
type PutSpec struct {
	// Writers is the number of concurrent writers (8).
	Writers int
	// Duration bounds the row's wall time.
	Duration time.Duration
	// MaxOps bounds the number of puts over all writers (0: no bound).
	MaxOps int
	// Size returns the value size of put number i (fixed 16 KiB for the
	// ingest row, the trace's distribution for the puts row).
	Size func(i uint64) int
	// Seed makes the keys fresh for this row and round.
	Seed uint64
}

// RunPuts runs spec against store. Keys are new (never stored before) and
// look like Kubo block keys. The result's Put latencies and WrittenBytes are set.
func RunPuts(ctx context.Context, store ds.Datastore, spec PutSpec, vals *Values) (PhaseResult, error) {
	writers := max(spec.Writers, 1)
	var (
		next     atomic.Uint64
		firstErr error
		errOnce  sync.Once
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	logs := make([]*workerLog, writers)
	deadline := time.Now().Add(spec.Duration)
	start := time.Now()
	for w := range writers {
		l := &workerLog{}
		logs[w] = l
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				i := next.Add(1) - 1
				if spec.MaxOps > 0 && i >= uint64(spec.MaxOps) {
					return
				}
				if time.Now().After(deadline) || ctx.Err() != nil {
					stop.Store(true)
					return
				}
				size := spec.Size(i)
				// The rank argument only feeds the key's hash here.
				key, _ := KeyAndSize(spec.Seed, uint32(i), 1, 1)
				t0 := time.Now()
				err := store.Put(ctx, key, vals.Value(i, size))
				l.lat[OpPut] = append(l.lat[OpPut], time.Since(t0))
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("store.Put %s: %w", key, err) })
					stop.Store(true)
					return
				}
				l.count[OpPut]++
				l.found[OpPut]++
				l.wrote += int64(size)
			}
		}()
	}
	wg.Wait()
	var res PhaseResult
	res.Elapsed = time.Since(start)
	res.merge(logs)
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return res, firstErr
}
