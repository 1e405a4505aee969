package autoscale

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond in short steps for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestPoolResize(t *testing.T) {
	var active, peak atomic.Int32
	release := make(chan struct{})
	p := NewPool(2, 100, func(int) {
		n := active.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		<-release
		active.Add(-1)
	})
	defer p.Close()
	for i := 0; i < 20; i++ {
		if err := p.Submit(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "2 busy workers", func() bool { return active.Load() == 2 })
	if err := p.Resize(6); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "6 busy workers after growing", func() bool { return active.Load() == 6 })
	if err := p.Resize(1); err != nil {
		t.Fatal(err)
	}
	if p.Size() != 1 {
		t.Fatalf("size %d after Resize(1)", p.Size())
	}
	// Busy workers finish their task before stopping.
	for i := 0; i < 6; i++ {
		release <- struct{}{}
	}
	waitFor(t, "running down to 1", func() bool { return p.Stats().Running == 1 })
	close(release)
	waitFor(t, "all tasks done", func() bool { return p.Stats().Processed == 20 })
	if peak.Load() != 6 {
		t.Fatalf("peak concurrency %d, want 6", peak.Load())
	}
	if err := p.Resize(0); err == nil {
		t.Fatal("Resize(0) accepted")
	}
}

func TestPoolShrinkIdleAndClose(t *testing.T) {
	p := NewPool(8, 4, func(int) {})
	waitFor(t, "8 running", func() bool { return p.Stats().Running == 8 })
	if err := p.Resize(3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "idle workers stop", func() bool { return p.Stats().Running == 3 })
	p.Close()
	p.Close()
	if s := p.Stats(); s.Running != 0 {
		t.Fatalf("%d workers alive after Close", s.Running)
	}
	if err := p.Submit(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	if err := p.Resize(2); !errors.Is(err, ErrClosed) {
		t.Fatalf("Resize after Close: %v", err)
	}
}

func TestPoolTrySubmitCountsDrops(t *testing.T) {
	block := make(chan struct{})
	p := NewPool(1, 1, func(int) { <-block })
	defer p.Close()
	defer close(block)
	if !p.TrySubmit(1) {
		t.Fatal("first task refused")
	}
	waitFor(t, "worker busy", func() bool { return p.Stats().Queued == 0 })
	if !p.TrySubmit(2) {
		t.Fatal("second task refused with room in the queue")
	}
	if p.TrySubmit(3) {
		t.Fatal("third task accepted with a full queue")
	}
	if p.Stats().Dropped != 1 {
		t.Fatalf("dropped %d", p.Stats().Dropped)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := p.Submit(ctx, 4); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit on a full queue: %v", err)
	}
}

func TestNextSize(t *testing.T) {
	for _, c := range []struct{ size, queued, lo, hi, want int }{
		{1, 5, 1, 8, 2}, {4, 9, 1, 8, 8}, {8, 100, 1, 8, 8}, // backlog: double, capped
		{3, 0, 1, 8, 2}, {1, 0, 1, 8, 1}, // idle: shrink by one, floored
		{4, 2, 1, 8, 4}, {10, 2, 1, 8, 8}, // some backlog: hold, within bounds
	} {
		if got := NextSize(c.size, c.queued, c.lo, c.hi); got != c.want {
			t.Errorf("NextSize(%d, %d, %d, %d) = %d, want %d", c.size, c.queued, c.lo, c.hi, got, c.want)
		}
	}
}

func TestAutoSizeFollowsBacklog(t *testing.T) {
	release := make(chan struct{})
	p := NewPool(1, 64, func(int) { <-release })
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.AutoSize(ctx, 1, 4, time.Millisecond)
	for i := 0; i < 20; i++ {
		p.TrySubmit(i)
	}
	waitUntil(t, func() bool { return p.Size() == 4 }, "the pool did not grow to 4 under a backlog")
	close(release)
	waitUntil(t, func() bool { s := p.Stats(); return s.Size == 1 && s.Processed == 20 }, "the pool did not shrink back to 1 when idle")
}

func waitUntil(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(time.Millisecond)
	}
}
