package plugin

import (
	"sync"

	"github.com/kubo-highload/highload/autotune"
	"github.com/kubo-highload/highload/exchange"
)

// tunedBitswapKnobs are the exchange policy's knobs the tuner may move:
// the node-wide pending budget and the unknown class's per-peer rate, the
// two that trade served throughput against load. The class shares are left
// to the operator: served bytes alone cannot say who deserves them.
var tunedBitswapKnobs = map[string]bool{
	"bitswap.global_pending":    true,
	"bitswap.peer_rate.unknown": true,
}

// knobBase remembers each knob's value when the tuner first saw it, so its
// bounds stay put while the tuner moves the value.
var knobBase sync.Map

func init() {
	addKnobs(func() []autotune.Knob {
		pol := bsPolicy.Load()
		if pol == nil {
			return nil
		}
		var out []autotune.Knob
		for _, k := range pol.Knobs() {
			if tunedBitswapKnobs[k.Name] {
				out = append(out, tunerKnob(k))
			}
		}
		return out
	})
}

// tunerKnob narrows an exchange knob to a quarter to four times its value
// at the time it is first seen (the configured or default value), inside
// the policy's own bounds, with steps of a quarter of that value: the tuner
// explores around what the operator chose, never far from it.
func tunerKnob(k exchange.Knob) autotune.Knob {
	base := float64(k.Get())
	if b, ok := knobBase.Load(k.Name); ok {
		base = b.(float64)
	} else {
		knobBase.Store(k.Name, base)
	}
	if base < 4 {
		base = 4
	}
	lo := max(float64(k.Min), base/4)
	hi := min(float64(k.Max), base*4)
	return autotune.Knob{
		Name: k.Name, Unit: k.Unit, Min: lo, Max: hi, Step: base / 4,
		Get: func() float64 { return float64(k.Get()) },
		Set: func(v float64) error { return k.Set(int64(v)) },
	}
}
