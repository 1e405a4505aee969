package autotune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sync"
	"time"
)

// Errors returned by the Tuner.
var (
	// ErrNoSignal, returned by an Objective, means this window carries no
	// information (no traffic); the tuner skips it.
	ErrNoSignal = errors.New("autotune: no signal in this window")
	// ErrNothingToRevert: RevertLast found no kept change to undo.
	ErrNothingToRevert = errors.New("autotune: no kept change to revert")
	// ErrUnknownKnob: a name that no registered knob has.
	ErrUnknownKnob = errors.New("autotune: unknown knob")
)

// Objective returns the figure the tuner maximises, measured over the
// window that just ended. ErrNoSignal skips the window.
type Objective func() (float64, error)

// Config configures a Tuner. Zero fields take the defaults.
type Config struct {
	// Knobs returns the knobs to tune; it is read every window, so knobs
	// registered late are picked up. Invalid knobs are skipped and shown
	// in Status.
	Knobs func() []Knob
	// Objective is required.
	Objective Objective
	// Gate, when set, is asked every window; false pauses tuning (a trial
	// in flight is rolled back) and the string says why, e.g. "health:
	// critical".
	Gate func() (ok bool, why string)
	// Window is the observation window (default 1m).
	Window time.Duration
	// BaselineWindows is how many windows are measured at settled values
	// before a trial (default 2, the minimum that estimates noise).
	BaselineWindows int
	// MaxStepMult bounds a trial's change to MaxStepMult*Step (default 8).
	MaxStepMult float64
	// NoiseSigmas is how many standard deviations of measurement noise a
	// fall must exceed to count as "worse" rather than "no gain"
	// (default 2).
	NoiseSigmas float64
	// KeepSigmas is how many standard deviations of measurement noise a
	// gain must exceed for a trial to be kept (default 1; the margin is at
	// least MinRelativeNoise of the baseline). On a noisy objective a
	// lower bar keeps noise and walks the knobs at random.
	KeepSigmas float64
	// MinRelativeNoise is the noise margin's floor as a fraction of the
	// baseline (default 0.01).
	MinRelativeNoise float64
	// ExploreProb is the chance of a bandit step on a knob the model
	// judges settled, to follow a workload that changes (default 0.1).
	ExploreProb float64
	// MaxChanges is the change log's length (default 200).
	MaxChanges int
	// Seed seeds the bandit (default 1).
	Seed int64
	// Now is the clock for change times (default time.Now).
	Now func() time.Time
	// OnChange is called with each change as it is recorded (under the
	// tuner's lock: it must not call the Tuner).
	OnChange func(Change)
}

// Change kinds.
const (
	KindTrial    = "trial"
	KindRollback = "rollback"
	KindRevert   = "revert"
	KindSet      = "set"
)

// Change is one entry of the change log.
type Change struct {
	// Seq numbers changes from 1.
	Seq uint64
	// Time is when the value was set.
	Time time.Time
	// Kind is trial (the tuner or an operator tries a value), rollback
	// (the tuner undoes a trial), revert (an operator undoes a kept
	// change) or set (an operator pins a value while the tuner is frozen).
	Kind string
	// Knob and Unit name what changed; From and To are its values.
	Knob, Unit string
	From, To   float64
	// Reason says why, in plain words.
	Reason string
	// Before is the objective at From (the baseline), After the objective
	// measured over the window after the change; nil until measured.
	Before, After *float64
	// Outcome, for a trial: "kept", "rolled back" or "" while observed.
	Outcome string `json:",omitempty"`
}

// KnobStatus is one knob as the tuner sees it.
type KnobStatus struct {
	Name, Unit     string
	Value          float64
	Min, Max, Step float64
	// Model describes what the model knows, e.g. "quadratic peak near 40"
	// or "3 points; exploring".
	Model string
	// Error is set when the knob is invalid and skipped.
	Error string `json:",omitempty"`
}

// Status is the tuner's state for `ipfs stats highload autotune`.
type Status struct {
	// State is "no knobs registered", "frozen", "paused", "measuring",
	// "trial" or "settled".
	State string
	// Detail explains State.
	Detail string `json:",omitempty"`
	// Frozen is true after Freeze until Resume.
	Frozen bool
	// Window is the observation window.
	Window time.Duration
	// Objective is the last measured objective; nil before the first.
	Objective *float64
	// Noise is the estimated standard deviation of one measurement.
	Noise float64
	// Windows counts windows, Skipped those without signal; Trials,
	// Kept, RolledBack and Reverts count changes by outcome.
	Windows, Skipped, Trials, Kept, RolledBack, Reverts uint64
	// Knobs are the registered knobs.
	Knobs []KnobStatus
	// Changes is the change log, oldest first.
	Changes []Change
}

type trial struct {
	knob     Knob
	from, to float64
	dir      float64
	change   int // index in changes
	manual   bool
	reason   string
}

// Tuner is the tuning loop. Its methods are safe for concurrent use.
type Tuner struct {
	cfg Config

	mu                                                  sync.Mutex
	rng                                                 *rand.Rand
	models                                              map[string]*knobModel
	baseline                                            []float64
	cur                                                 *trial
	proposed                                            *trial
	next                                                int
	noiseVar                                            float64
	noiseN                                              int
	frozen                                              bool
	state                                               string
	detail                                              string
	objective                                           *float64
	changes                                             []Change
	seq                                                 uint64
	pending                                             []uint64 // Seqs of changes whose After is the next measurement
	windows, skipped, trials, kept, rolledBack, reverts uint64

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// New validates cfg and starts the tuner's loop, one step per Window.
func New(cfg Config) (*Tuner, error) {
	t, err := newTuner(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go t.loop(ctx)
	return t, nil
}

func newTuner(cfg Config) (*Tuner, error) {
	if cfg.Objective == nil {
		return nil, errors.New("autotune: Config.Objective is required")
	}
	if cfg.Knobs == nil {
		cfg.Knobs = func() []Knob { return nil }
	}
	if cfg.Window == 0 {
		cfg.Window = time.Minute
	}
	if cfg.Window < 0 {
		return nil, fmt.Errorf("autotune: Window %s is negative", cfg.Window)
	}
	if cfg.BaselineWindows < 2 {
		cfg.BaselineWindows = 2
	}
	if cfg.MaxStepMult < 1 {
		cfg.MaxStepMult = 8
	}
	if cfg.NoiseSigmas <= 0 {
		cfg.NoiseSigmas = 2
	}
	if cfg.MinRelativeNoise <= 0 {
		cfg.MinRelativeNoise = 0.01
	}
	if cfg.KeepSigmas <= 0 {
		cfg.KeepSigmas = 1
	}
	if cfg.ExploreProb < 0 || cfg.ExploreProb > 1 {
		return nil, fmt.Errorf("autotune: ExploreProb %g is outside [0, 1]", cfg.ExploreProb)
	}
	if cfg.ExploreProb == 0 {
		cfg.ExploreProb = 0.1
	}
	if cfg.MaxChanges <= 0 {
		cfg.MaxChanges = 200
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Tuner{
		cfg:    cfg,
		rng:    rand.New(rand.NewSource(cfg.Seed)),
		models: map[string]*knobModel{},
		state:  "measuring",
		done:   make(chan struct{}),
	}, nil
}

func (t *Tuner) loop(ctx context.Context) {
	defer close(t.done)
	tk := time.NewTicker(t.cfg.Window)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			t.step()
		}
	}
}

// Close stops the loop and waits for it. A trial in flight stays applied.
// It is safe to call twice.
func (t *Tuner) Close() error {
	t.closeOnce.Do(func() {
		if t.cancel != nil {
			t.cancel()
			<-t.done
		}
	})
	return nil
}

// knobs returns the valid knobs by name, and the status of all.
func (t *Tuner) knobs() ([]Knob, []KnobStatus) {
	var ok []Knob
	var st []KnobStatus
	for _, k := range t.cfg.Knobs() {
		s := KnobStatus{Name: k.Name, Unit: k.Unit, Min: k.Min, Max: k.Max, Step: k.Step}
		if err := k.Validate(); err != nil {
			s.Error = err.Error()
		} else {
			ok = append(ok, k)
			s.Value = k.Get()
			s.Model = t.model(k.Name).describe()
		}
		st = append(st, s)
	}
	return ok, st
}

func (t *Tuner) model(name string) *knobModel {
	m := t.models[name]
	if m == nil {
		m = &knobModel{mult: 1}
		t.models[name] = m
	}
	return m
}

func (m *knobModel) describe() string {
	if v, concave, ok := fitQuadratic(m.points); ok && concave {
		return fmt.Sprintf("%d points; quadratic peak near %.4g", len(m.points), v)
	}
	return fmt.Sprintf("%d points; exploring (step x%.0f)", len(m.points), m.mult)
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func fp(v float64) *float64 { return &v }

// record appends a change to the log and returns its index.
func (t *Tuner) record(c Change) int {
	t.seq++
	c.Seq = t.seq
	c.Time = t.cfg.Now()
	if len(t.changes) >= t.cfg.MaxChanges {
		drop := len(t.changes) - t.cfg.MaxChanges + 1
		t.changes = append(t.changes[:0], t.changes[drop:]...)
		if t.cur != nil {
			t.cur.change -= drop
		}
	}
	t.changes = append(t.changes, c)
	if t.cfg.OnChange != nil {
		t.cfg.OnChange(c)
	}
	return len(t.changes) - 1
}

// fillAfter sets After on the changes waiting for the next measurement.
func (t *Tuner) fillAfter(y float64) {
	for _, seq := range t.pending {
		for i := range t.changes {
			if t.changes[i].Seq == seq {
				t.changes[i].After = fp(y)
			}
		}
	}
	t.pending = t.pending[:0]
}

// margin is how far below the baseline a measurement must fall to count as
// worse rather than noise.
func (t *Tuner) margin(base float64) float64 { return t.noiseMargin(base, t.cfg.NoiseSigmas) }

// keepMargin is how far above the baseline a measurement must rise for a
// trial to be kept.
func (t *Tuner) keepMargin(base float64) float64 { return t.noiseMargin(base, t.cfg.KeepSigmas) }

func (t *Tuner) noiseMargin(base, sigmas float64) float64 {
	n := math.Max(1, float64(len(t.baseline)))
	noise := sigmas * math.Sqrt(t.noiseVar*(1+1/n))
	return math.Max(noise, t.cfg.MinRelativeNoise*math.Abs(base))
}

// step is one observation window.
func (t *Tuner) step() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.frozen {
		return
	}
	knobs, _ := t.knobs()
	if len(knobs) == 0 {
		t.state, t.detail = "no knobs registered", "no component has registered a live knob"
		return
	}
	if t.cfg.Gate != nil {
		if ok, why := t.cfg.Gate(); !ok {
			t.undoTrial("paused: " + why)
			t.state, t.detail = "paused", why
			return
		}
	}
	t.windows++
	y, err := t.cfg.Objective()
	if err != nil {
		t.skipped++
		t.undoTrial("objective unavailable: " + err.Error())
		t.state, t.detail = "measuring", "last window skipped: "+err.Error()
		return
	}
	t.objective = fp(y)
	t.fillAfter(y)
	if t.cur != nil {
		t.evaluate(y)
		return
	}
	if n := len(t.baseline); n > 0 {
		d := y - t.baseline[n-1]
		// Consecutive measurements at the same settings: their difference
		// has twice the measurement variance.
		t.noiseN++
		w := math.Max(0.1, 1/float64(t.noiseN))
		t.noiseVar = (1-w)*t.noiseVar + w*d*d/2
	}
	t.baseline = append(t.baseline, y)
	if len(t.baseline) > 5 {
		t.baseline = t.baseline[1:]
	}
	if len(t.baseline) >= t.cfg.BaselineWindows {
		t.startTrial(knobs)
	} else {
		t.state, t.detail = "measuring", fmt.Sprintf("baseline %d of %d windows", len(t.baseline), t.cfg.BaselineWindows)
	}
}

// startTrial picks one knob and one value, applies it and logs it.
func (t *Tuner) startTrial(knobs []Knob) {
	base := mean(t.baseline)
	if p := t.proposed; p != nil {
		t.proposed = nil
		p.from = p.knob.Get()
		t.apply(p, base, p.reason)
		return
	}
	for tries := 0; tries < len(knobs); tries++ {
		k := knobs[t.next%len(knobs)]
		t.next++
		m := t.model(k.Name)
		x0 := k.Get()
		m.add(x0, base)
		step := k.Step * m.mult
		var cand, dir float64
		var reason string
		have := false
		if v, concave, ok := fitQuadratic(m.points); ok && concave {
			target := math.Min(x0+step, math.Max(x0-step, v))
			cand, have = k.Snap(target), true
			reason = fmt.Sprintf("model: quadratic fit over %d points peaks near %.4g %s", len(m.points), v, k.Unit)
			if cand == x0 {
				if t.rng.Float64() >= t.cfg.ExploreProb {
					continue // the model says this knob is where it should be
				}
				have = false
			}
		}
		if !have {
			dir = m.direction(t.rng, x0 > k.Min, x0 < k.Max)
			cand = k.Snap(x0 + dir*step)
			word := "up"
			if dir < 0 {
				word = "down"
			}
			reason = fmt.Sprintf("explore: step %s by %.4g %s (up kept %d of %d, down kept %d of %d)", word, step, k.Unit,
				m.wins[1], m.wins[1]+m.losses[1], m.wins[0], m.wins[0]+m.losses[0])
		}
		if cand == x0 {
			continue
		}
		if dir == 0 {
			dir = math.Copysign(1, cand-x0)
		}
		t.apply(&trial{knob: k, from: x0, to: cand, dir: dir}, base, reason)
		return
	}
	t.state, t.detail = "settled", "the model puts every knob at its best value; measuring"
}

// apply sets a trial's value and logs it; a failed Set is logged and
// dropped.
func (t *Tuner) apply(tr *trial, base float64, reason string) {
	k := tr.knob
	if reason == "" {
		reason = "operator proposal"
	}
	if err := k.Set(tr.to); err != nil {
		t.record(Change{Kind: KindTrial, Knob: k.Name, Unit: k.Unit, From: tr.from, To: tr.from,
			Reason: fmt.Sprintf("%s; not applied: %v", reason, err), Before: fp(base), Outcome: "failed"})
		return
	}
	t.trials++
	tr.change = t.record(Change{Kind: KindTrial, Knob: k.Name, Unit: k.Unit, From: tr.from, To: tr.to,
		Reason: reason, Before: fp(base)})
	t.cur = tr
	t.state, t.detail = "trial", fmt.Sprintf("observing %s = %.4g %s for one window", k.Name, tr.to, k.Unit)
}

// evaluate decides a trial after its window.
func (t *Tuner) evaluate(y float64) {
	tr := t.cur
	t.cur = nil
	base := mean(t.baseline)
	m := t.model(tr.knob.Name)
	m.add(tr.to, y)
	c := &t.changes[tr.change]
	c.After = fp(y)
	if y > base+t.keepMargin(base) {
		c.Outcome = "kept"
		t.kept++
		if !tr.manual {
			m.record(tr.dir, gained, t.cfg.MaxStepMult)
		}
		t.baseline = append(t.baseline[:0], y)
		t.state, t.detail = "measuring", fmt.Sprintf("kept %s = %.4g", tr.knob.Name, tr.to)
		return
	}
	mg := t.margin(base)
	o := flat
	reason := fmt.Sprintf("no gain: objective %.4g vs baseline %.4g, not above it by the noise margin %.3g", y, base, t.keepMargin(base))
	if y < base-mg {
		o = worse
		reason = fmt.Sprintf("worse: objective fell from %.4g to %.4g, beyond the noise margin %.3g", base, y, mg)
	}
	if !tr.manual {
		m.record(tr.dir, o, t.cfg.MaxStepMult)
	}
	c.Outcome = "rolled back"
	t.rollback(tr, reason, y)
	t.state, t.detail = "measuring", reason
}

// rollback restores a trial's previous value and logs it.
func (t *Tuner) rollback(tr *trial, reason string, at float64) {
	t.rolledBack++
	if err := tr.knob.Set(tr.from); err != nil {
		reason += fmt.Sprintf("; restoring failed: %v", err)
	}
	idx := t.record(Change{Kind: KindRollback, Knob: tr.knob.Name, Unit: tr.knob.Unit, From: tr.to, To: tr.from,
		Reason: reason, Before: fp(at)})
	t.pending = append(t.pending, t.changes[idx].Seq)
}

// undoTrial rolls back a trial in flight, if any, without judging it.
func (t *Tuner) undoTrial(reason string) {
	if t.cur == nil {
		return
	}
	tr := t.cur
	t.cur = nil
	c := &t.changes[tr.change]
	c.Outcome = "rolled back"
	before := math.NaN()
	if c.Before != nil {
		before = *c.Before
	}
	t.rollback(tr, reason, before)
	if math.IsNaN(before) {
		t.changes[len(t.changes)-1].Before = nil
	}
}

// Propose queues value for the named knob as the next trial, observed and
// judged like the tuner's own (it is rolled back if it makes things worse).
// A value outside the knob's bounds is refused.
func (t *Tuner) Propose(name string, value float64, reason string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	knobs, _ := t.knobs()
	for _, k := range knobs {
		if k.Name != name {
			continue
		}
		if value < k.Min || value > k.Max || math.IsNaN(value) {
			return fmt.Errorf("autotune: %s = %g is outside [%g, %g]", name, value, k.Min, k.Max)
		}
		if reason == "" {
			reason = "operator proposal"
		}
		t.proposed = &trial{knob: k, to: k.Snap(value), manual: true, reason: reason}
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnknownKnob, name)
}

// RevertLast undoes the latest kept change (or rolls back a trial in
// flight) and returns the change it recorded.
func (t *Tuner) RevertLast(reason string) (Change, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if reason == "" {
		reason = "operator: revert last change"
	}
	if t.cur != nil {
		t.undoTrial(reason)
		t.baseline = t.baseline[:0]
		return t.changes[len(t.changes)-1], nil
	}
	knobs, _ := t.knobs()
	for i := len(t.changes) - 1; i >= 0; i-- {
		c := &t.changes[i]
		if c.Kind != KindTrial || c.Outcome != "kept" {
			continue
		}
		for _, k := range knobs {
			if k.Name != c.Knob {
				continue
			}
			cur := k.Get()
			if err := k.Set(c.From); err != nil {
				return Change{}, fmt.Errorf("autotune: revert %s to %g: %w", k.Name, c.From, err)
			}
			c.Outcome = "reverted"
			t.reverts++
			idx := t.record(Change{Kind: KindRevert, Knob: k.Name, Unit: k.Unit, From: cur, To: c.From,
				Reason: fmt.Sprintf("%s (undoes change %d)", reason, c.Seq), Before: t.objective})
			t.pending = append(t.pending, t.changes[idx].Seq)
			t.baseline = t.baseline[:0]
			return t.changes[idx], nil
		}
		return Change{}, fmt.Errorf("%w: %q (change %d)", ErrUnknownKnob, c.Knob, c.Seq)
	}
	return Change{}, ErrNothingToRevert
}

// ErrNotFrozen is returned by Set while the tuner is running.
var ErrNotFrozen = errors.New("autotune: freeze the tuner before setting a knob by hand")

// Set pins the named knob at value (snapped to its grid) while the tuner is
// frozen, and records it as a "set" change. It refuses while the tuner runs
// (a hand-set value would be mistaken for the tuner's own baseline) and
// refuses values outside the knob's bounds. The tuner measures a fresh
// baseline when resumed.
func (t *Tuner) Set(name string, value float64, reason string) (Change, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.frozen {
		return Change{}, ErrNotFrozen
	}
	knobs, _ := t.knobs()
	for _, k := range knobs {
		if k.Name != name {
			continue
		}
		if value < k.Min || value > k.Max || math.IsNaN(value) {
			return Change{}, fmt.Errorf("autotune: %s = %g is outside [%g, %g]", name, value, k.Min, k.Max)
		}
		if reason == "" {
			reason = "operator: set by hand"
		}
		cur, to := k.Get(), k.Snap(value)
		if err := k.Set(to); err != nil {
			return Change{}, fmt.Errorf("autotune: set %s to %g: %w", name, to, err)
		}
		t.baseline = t.baseline[:0]
		idx := t.record(Change{Kind: KindSet, Knob: k.Name, Unit: k.Unit, From: cur, To: to, Reason: reason})
		return t.changes[idx], nil
	}
	return Change{}, fmt.Errorf("%w: %q", ErrUnknownKnob, name)
}

// Freeze stops all changes until Resume; a trial in flight is rolled back
// first, so the frozen settings are ones that were measured.
func (t *Tuner) Freeze(reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if reason == "" {
		reason = "operator"
	}
	t.undoTrial("frozen: " + reason)
	t.frozen = true
	t.state, t.detail = "frozen", reason
}

// Resume lets a frozen tuner change knobs again, starting with a fresh
// baseline.
func (t *Tuner) Resume() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.frozen {
		return
	}
	t.frozen = false
	t.baseline = t.baseline[:0]
	t.state, t.detail = "measuring", "resumed"
}

// Status returns the tuner's state and change log.
func (t *Tuner) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	knobs, ks := t.knobs()
	s := Status{State: t.state, Detail: t.detail, Frozen: t.frozen, Window: t.cfg.Window,
		Noise: math.Sqrt(t.noiseVar), Windows: t.windows, Skipped: t.skipped, Trials: t.trials,
		Kept: t.kept, RolledBack: t.rolledBack, Reverts: t.reverts, Knobs: ks}
	if len(knobs) == 0 && !t.frozen {
		s.State, s.Detail = "no knobs registered", "no component has registered a live knob"
	}
	if t.objective != nil {
		s.Objective = fp(*t.objective)
	}
	s.Changes = make([]Change, len(t.changes))
	copy(s.Changes, t.changes)
	return s
}
