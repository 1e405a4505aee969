package autotune

import (
	"math"
	"math/rand"
	"sort"
)

// maxPoints is how many recent (setting, objective) points each knob's
// model keeps: enough for a stable quadratic fit, few enough that the fit
// follows a workload that changes.
const maxPoints = 16

// point is one observation of the objective at a knob setting.
type point struct{ x, y float64 }

// knobModel is what the tuner has learned about one knob.
type knobModel struct {
	points []point
	// wins and losses per direction (0 = down, 1 = up): the bandit's
	// record of which way paid off.
	wins, losses [2]int
	// mult is the current step multiplier, in [1, MaxStepMult].
	mult float64
}

func (m *knobModel) add(x, y float64) {
	m.points = append(m.points, point{x, y})
	if len(m.points) > maxPoints {
		m.points = m.points[len(m.points)-maxPoints:]
	}
}

// fitQuadratic fits y = a + b*u + c*u^2 with u = (x-mean)/scale by least
// squares and returns the vertex in x, whether the fit is concave (c < 0,
// so the vertex is a maximum), and whether a fit was possible at all (at
// least four points on at least three settings).
func fitQuadratic(ps []point) (vertex float64, concave, ok bool) {
	if len(ps) < 4 {
		return 0, false, false
	}
	distinct := map[float64]bool{}
	var mean float64
	for _, p := range ps {
		distinct[p.x] = true
		mean += p.x
	}
	if len(distinct) < 3 {
		return 0, false, false
	}
	mean /= float64(len(ps))
	var scale float64
	for _, p := range ps {
		scale = math.Max(scale, math.Abs(p.x-mean))
	}
	// Normal equations: sums of u^k (k = 0..4) and y*u^k (k = 0..2).
	var s [5]float64
	var t [3]float64
	for _, p := range ps {
		u := (p.x - mean) / scale
		pw := 1.0
		for k := 0; k < 5; k++ {
			s[k] += pw
			if k < 3 {
				t[k] += p.y * pw
			}
			pw *= u
		}
	}
	a := [3][4]float64{
		{s[0], s[1], s[2], t[0]},
		{s[1], s[2], s[3], t[1]},
		{s[2], s[3], s[4], t[2]},
	}
	coef, solved := solve3(a)
	if !solved {
		return 0, false, false
	}
	b, c := coef[1], coef[2]
	if c >= 0 {
		return 0, false, true
	}
	return mean + (-b/(2*c))*scale, true, true
}

// solve3 solves a 3x3 augmented system by Gaussian elimination with partial
// pivoting.
func solve3(a [3][4]float64) ([3]float64, bool) {
	for col := 0; col < 3; col++ {
		piv := col
		for r := col + 1; r < 3; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		if math.Abs(a[piv][col]) < 1e-12 {
			return [3]float64{}, false
		}
		a[col], a[piv] = a[piv], a[col]
		for r := col + 1; r < 3; r++ {
			f := a[r][col] / a[col][col]
			for k := col; k < 4; k++ {
				a[r][k] -= f * a[col][k]
			}
		}
	}
	var x [3]float64
	for r := 2; r >= 0; r-- {
		v := a[r][3]
		for k := r + 1; k < 3; k++ {
			v -= a[r][k] * x[k]
		}
		x[r] = v / a[r][r]
	}
	return x, true
}

// sampleBeta draws from Beta(a, b) for positive integers a and b: the a-th
// smallest of a+b-1 uniform draws.
func sampleBeta(rng *rand.Rand, a, b int) float64 {
	n := a + b - 1
	u := make([]float64, n)
	for i := range u {
		u[i] = rng.Float64()
	}
	sort.Float64s(u)
	return u[a-1]
}

// direction picks up (+1) or down (-1) by Thompson sampling over the two
// arms; an arm that cannot move (at a bound) is not picked.
func (m *knobModel) direction(rng *rand.Rand, canDown, canUp bool) float64 {
	switch {
	case !canUp:
		return -1
	case !canDown:
		return 1
	}
	down := sampleBeta(rng, 1+m.wins[0], 1+m.losses[0])
	up := sampleBeta(rng, 1+m.wins[1], 1+m.losses[1])
	if up >= down {
		return 1
	}
	return -1
}

// outcome is how a trial ended, for the step rule.
type outcome int

const (
	// gained: kept, above the baseline by more than the keep margin.
	gained outcome = iota
	// flat: rolled back, within the noise (neither kept nor worse).
	flat
	// worse: rolled back, below the baseline by more than the noise margin.
	worse
)

// record updates the bandit and the step multiplier after a trial. The
// bandit counts a gain as a win and anything else as a loss. The step
// doubles after a gain (go further the way that paid) and also after a flat
// trial: a change whose effect did not show above the noise is too small to
// judge, so the next one on this knob is bigger (up to maxMult). It halves
// only after a trial that made things measurably worse.
func (m *knobModel) record(dir float64, o outcome, maxMult float64) {
	arm := 0
	if dir > 0 {
		arm = 1
	}
	if o == gained {
		m.wins[arm]++
	} else {
		m.losses[arm]++
	}
	if o == worse {
		m.mult = math.Max(1, m.mult/2)
	} else {
		m.mult = math.Min(maxMult, m.mult*2)
	}
	// Forget slowly, so the bandit can follow a workload that changes.
	for i := range m.wins {
		if m.wins[i]+m.losses[i] > 20 {
			m.wins[i], m.losses[i] = m.wins[i]/2, m.losses[i]/2
		}
	}
}
