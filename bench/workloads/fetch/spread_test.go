package fetch

import (
	"math"
	"testing"
)

func TestTopShare(t *testing.T) {
	for _, tc := range []struct {
		name string
		recv []uint64
		want float64
	}{
		{"nothing received", []uint64{0, 0, 0}, 0},
		{"no providers", nil, 0},
		{"even split", []uint64{100, 100, 100}, 100.0 / 3},
		{"one provider served all", []uint64{0, 268435456, 0}, 100},
		// The shape seen in W3 runs: one provider sends most blocks.
		{"skewed", []uint64{19136834, 234146174, 15204352}, 87.2},
	} {
		got := topShare(tc.recv)
		if math.Abs(got-tc.want) > 0.05 {
			t.Errorf("%s: topShare(%v) = %.2f, want %.2f", tc.name, tc.recv, got, tc.want)
		}
	}
}
