package exchange

import (
	"math/rand"
	"testing"
	"time"
)

func testBreaker(trans *[numStates][numStates]int) *Breaker {
	return NewBreaker(BreakerConfig{Cooldown: time.Second, MaxCooldown: 8 * time.Second, Ramp: time.Second, StartSlots: 8},
		func(from, to State) { trans[from][to]++ })
}

func admitted(b *Breaker, now time.Time, n int) int {
	k := 0
	for i := 0; i < n; i++ {
		if b.Allow(now) {
			k++
		}
	}
	return k
}

func TestBreakerLifecycle(t *testing.T) {
	var trans [numStates][numStates]int
	b := testBreaker(&trans)
	t0 := time.Unix(1000, 0)
	if got := admitted(b, t0, 64); got != 64 {
		t.Fatalf("closed breaker admitted %d of 64", got)
	}
	b.Trip(t0)
	if got := admitted(b, t0.Add(999*time.Millisecond), 64); got != 0 {
		t.Fatalf("open breaker admitted %d", got)
	}
	// Half-open: 8/64, then 16, 32, then closed.
	for i, want := range []int{8, 16, 32, 64} {
		now := t0.Add(time.Second + time.Duration(i)*time.Second)
		if got := admitted(b, now, 64); got != want {
			t.Fatalf("step %d: admitted %d of 64, want %d (state %v)", i, got, want, b.Snapshot(now).Name)
		}
	}
	if s := b.Snapshot(t0.Add(4 * time.Second)); s.State != Closed || s.Trips != 1 {
		t.Fatalf("after ramp: %+v", s)
	}
	if trans[Closed][Open] != 1 || trans[Open][HalfOpen] != 1 || trans[HalfOpen][Closed] != 1 {
		t.Fatalf("transitions %v", trans)
	}
}

func TestBreakerRetripDoublesCooldown(t *testing.T) {
	var trans [numStates][numStates]int
	b := testBreaker(&trans)
	now := time.Unix(1000, 0)
	b.Trip(now)
	want := time.Second
	for i := 0; i < 6; i++ {
		now = now.Add(want) // cooldown over: half-open
		if s := b.Snapshot(now); s.State != HalfOpen {
			t.Fatalf("round %d: state %v after cooldown %v", i, s.Name, want)
		}
		b.Trip(now) // misbehaves again while half-open
		want *= 2
		if want > 8*time.Second {
			want = 8 * time.Second
		}
		if s := b.Snapshot(now); s.State != Open || s.Cooldown != want {
			t.Fatalf("round %d: %+v, want open with cooldown %v", i, s, want)
		}
	}
	// A full recovery forgives: the next trip uses the base cooldown.
	now = now.Add(want + 4*time.Second)
	if s := b.Snapshot(now); s.State != Closed {
		t.Fatalf("did not close: %+v", s)
	}
	b.Trip(now)
	if s := b.Snapshot(now); s.Cooldown != time.Second {
		t.Fatalf("cooldown after recovery %v", s.Cooldown)
	}
	if trans[HalfOpen][Open] != 6 {
		t.Fatalf("half-open->open transitions %d", trans[HalfOpen][Open])
	}
}

// TestBreakerStateMachine drives random events and checks each transition
// is one of the allowed ones and that open never admits.
func TestBreakerStateMachine(t *testing.T) {
	allowed := map[[2]State]bool{
		{Closed, Open}: true, {Open, HalfOpen}: true, {HalfOpen, Open}: true,
		{HalfOpen, Closed}: true, {Open, Closed}: true, {HalfOpen, HalfOpen}: true,
	}
	rng := rand.New(rand.NewSource(1))
	var bad []string
	b := NewBreaker(BreakerConfig{Cooldown: 100 * time.Millisecond, MaxCooldown: time.Second, Ramp: 50 * time.Millisecond},
		func(from, to State) {
			if !allowed[[2]State{from, to}] {
				bad = append(bad, from.String()+"->"+to.String())
			}
		})
	now := time.Unix(0, 0)
	for i := 0; i < 20000; i++ {
		now = now.Add(time.Duration(rng.Intn(40)) * time.Millisecond)
		switch rng.Intn(10) {
		case 0:
			b.Trip(now)
		case 1:
			if rng.Intn(50) == 0 {
				b.Reset(now)
			}
		default:
			st := b.Snapshot(now).State
			if b.Allow(now) && st == Open {
				t.Fatalf("open breaker admitted at step %d", i)
			}
		}
	}
	if len(bad) > 0 {
		t.Fatalf("illegal transitions: %v", bad[:min(len(bad), 5)])
	}
}
