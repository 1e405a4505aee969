package connmgr

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/peer"
)

// decayer implements connmgr.Decayer for a Manager. Bumps and removals are
// applied at once under the manager's lock (libp2p queues them; the
// observable result is the same, without a queue that can fill up). Decay
// runs every DecayResolution for the tags whose interval has elapsed.
type decayer struct {
	m        *Manager
	mu       sync.Mutex
	tags     map[string]*decayingTag
	lastTick time.Time
}

func newDecayer(m *Manager) *decayer {
	return &decayer{m: m, tags: make(map[string]*decayingTag), lastTick: m.now()}
}

// RegisterDecayingTag creates a decaying tag. An interval below the decay
// resolution is raised to it, as in libp2p; a duplicate name is an error.
func (m *Manager) RegisterDecayingTag(name string, interval time.Duration, decayFn connmgr.DecayFn, bumpFn connmgr.BumpFn) (connmgr.DecayingTag, error) {
	d := m.decay
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.tags[name]; ok {
		return nil, fmt.Errorf("decaying tag with name %s already exists", name)
	}
	if decayFn == nil || bumpFn == nil {
		return nil, fmt.Errorf("decaying tag %s: decay and bump functions are required", name)
	}
	if interval < m.cfg.DecayResolution {
		interval = m.cfg.DecayResolution
	}
	t := &decayingTag{d: d, name: name, interval: interval, next: d.lastTick.Add(interval), decayFn: decayFn, bumpFn: bumpFn}
	d.tags[name] = t
	return t, nil
}

func (d *decayer) run() {
	defer d.m.wg.Done()
	t := time.NewTicker(d.m.cfg.DecayResolution)
	defer t.Stop()
	for {
		select {
		case <-d.m.ctx.Done():
			return
		case <-t.C:
			d.tick()
		}
	}
}

// tick decays every tag whose interval has elapsed.
func (d *decayer) tick() {
	now := d.m.now()
	d.mu.Lock()
	d.lastTick = now
	due := map[*decayingTag]bool{}
	for _, t := range d.tags {
		if !t.next.After(now) {
			due[t] = true
			t.next = t.next.Add(t.interval)
		}
	}
	d.mu.Unlock()
	if len(due) == 0 {
		return
	}
	m := d.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, pi := range m.peers {
		for t, v := range pi.decaying {
			if !due[t] {
				continue
			}
			after, rm := t.decayFn(*v)
			if rm {
				pi.value -= v.Value
				delete(pi.decaying, t)
				continue
			}
			pi.value += after - v.Value
			v.Value, v.LastVisit = after, now
		}
	}
}

type decayingTag struct {
	d        *decayer
	name     string
	interval time.Duration
	next     time.Time
	decayFn  connmgr.DecayFn
	bumpFn   connmgr.BumpFn
	closed   atomic.Bool
}

var _ connmgr.DecayingTag = (*decayingTag)(nil)

// Name returns the tag's name.
func (t *decayingTag) Name() string { return t.name }

// Interval returns the tag's effective decay interval.
func (t *decayingTag) Interval() time.Duration { return t.interval }

// Bump applies the tag's bump function to p's value.
func (t *decayingTag) Bump(p peer.ID, delta int) error {
	if t.closed.Load() {
		return fmt.Errorf("decaying tag %s had been closed; no further bumps are accepted", t.name)
	}
	m := t.d.m
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	pi := m.infoFor(p)
	v, ok := pi.decaying[t]
	if !ok {
		v = &connmgr.DecayingValue{Tag: t, Peer: p, Added: now, LastVisit: now}
		if pi.decaying == nil {
			pi.decaying = make(map[*decayingTag]*connmgr.DecayingValue, 1)
		}
		pi.decaying[t] = v
	}
	prev := v.Value
	v.Value, v.LastVisit = t.bumpFn(*v, delta), now
	pi.value += v.Value - prev
	return nil
}

// Remove removes the tag from p.
func (t *decayingTag) Remove(p peer.ID) error {
	if t.closed.Load() {
		return fmt.Errorf("decaying tag %s had been closed; no further removals are accepted", t.name)
	}
	m := t.d.m
	m.mu.Lock()
	defer m.mu.Unlock()
	pi, ok := m.peers[p]
	if !ok {
		return nil
	}
	if v, ok := pi.decaying[t]; ok {
		pi.value -= v.Value
		delete(pi.decaying, t)
	}
	return nil
}

// Close removes the tag from every peer and unregisters it.
func (t *decayingTag) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	t.d.mu.Lock()
	delete(t.d.tags, t.name)
	t.d.mu.Unlock()
	m := t.d.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, pi := range m.peers {
		if v, ok := pi.decaying[t]; ok {
			pi.value -= v.Value
			delete(pi.decaying, t)
		}
	}
	return nil
}
