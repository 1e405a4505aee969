package autoscale

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("autoscale: pool closed")

// Pool runs fn on submitted tasks with a live-resizable number of workers.
// Its methods are safe for concurrent use.
type Pool[T any] struct {
	fn    func(T)
	tasks chan T

	mu      sync.Mutex
	target  int
	running int
	wake    chan struct{} // closed and replaced to make idle workers re-check target
	closed  bool

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	processed atomic.Uint64
	dropped   atomic.Uint64
}

// PoolStats is a pool's state. Fields are read separately and may be
// slightly inconsistent with each other.
type PoolStats struct {
	// Size is the target number of workers; Running those alive now (it
	// lags Size while surplus workers finish their task).
	Size, Running int
	// Queued is the number of tasks waiting.
	Queued int
	// Processed counts finished tasks, Dropped the tasks TrySubmit refused
	// because the queue was full.
	Processed, Dropped uint64
}

// NewPool starts size workers (at least 1) over a queue of queue tasks.
func NewPool[T any](size, queue int, fn func(T)) *Pool[T] {
	p := &Pool[T]{
		fn:    fn,
		tasks: make(chan T, max(queue, 0)),
		wake:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if err := p.Resize(size); err != nil {
		p.Resize(1) //nolint:errcheck // 1 is always valid
	}
	return p
}

// Resize sets the number of workers. Growth is immediate; surplus workers
// stop once they are idle.
func (p *Pool[T]) Resize(n int) error {
	if n < 1 {
		return fmt.Errorf("autoscale: pool size %d is below 1", n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.target = n
	for p.running < n {
		p.running++
		p.wg.Add(1)
		go p.worker()
	}
	if p.running > n {
		close(p.wake)
		p.wake = make(chan struct{})
	}
	return nil
}

// Size returns the target number of workers.
func (p *Pool[T]) Size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// exitOrWake reports whether this worker should stop (the pool shrank or
// closed); if not, it returns the channel that signals the next resize.
func (p *Pool[T]) exitOrWake() (bool, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.running > p.target {
		p.running--
		return true, nil
	}
	return false, p.wake
}

func (p *Pool[T]) worker() {
	defer p.wg.Done()
	for {
		stop, wake := p.exitOrWake()
		if stop {
			return
		}
		select {
		case t := <-p.tasks:
			p.fn(t)
			p.processed.Add(1)
		case <-wake:
		case <-p.done:
			p.mu.Lock()
			p.running--
			p.mu.Unlock()
			return
		}
	}
}

// Submit queues t, waiting for room until ctx ends.
func (p *Pool[T]) Submit(ctx context.Context, t T) error {
	select {
	case <-p.done:
		return ErrClosed
	default:
	}
	select {
	case p.tasks <- t:
		return nil
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TrySubmit queues t if there is room, without waiting; a refused task is
// counted in Dropped.
func (p *Pool[T]) TrySubmit(t T) bool {
	select {
	case <-p.done:
		return false
	default:
	}
	select {
	case p.tasks <- t:
		return true
	default:
		p.dropped.Add(1)
		return false
	}
}

// Stats returns the pool's state.
func (p *Pool[T]) Stats() PoolStats {
	p.mu.Lock()
	s := PoolStats{Size: p.target, Running: p.running}
	p.mu.Unlock()
	s.Queued = len(p.tasks)
	s.Processed, s.Dropped = p.processed.Load(), p.dropped.Load()
	return s
}

// Close stops the workers after their current task and waits for them.
// Tasks still queued are not run. It is safe to call twice.
func (p *Pool[T]) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.done)
		p.wg.Wait()
	})
	return nil
}

// NextSize is the backlog rule AutoSize applies each step: with more tasks
// queued than workers, double (up to hi); with none queued, shrink by one
// (down to lo); otherwise hold.
func NextSize(size, queued, lo, hi int) int {
	switch {
	case queued > size:
		return min(max(size*2, lo), hi)
	case queued == 0:
		return max(size-1, lo)
	default:
		return min(max(size, lo), hi)
	}
}

// AutoSize resizes the pool by its backlog (NextSize) every interval until
// ctx ends or the pool closes. lo and hi bound the size (lo at least 1).
func (p *Pool[T]) AutoSize(ctx context.Context, lo, hi int, every time.Duration) {
	lo = max(lo, 1)
	hi = max(hi, lo)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.done:
			return
		case <-tick.C:
		}
		s := p.Stats()
		if n := NextSize(s.Size, s.Queued, lo, hi); n != s.Size {
			if p.Resize(n) != nil {
				return
			}
		}
	}
}
