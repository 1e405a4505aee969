package exchange

import "fmt"

// Knob is one live setting as plain data, for a tuner: Get and Set read and
// write an atomic inside the policy, and Set refuses values outside
// [Min, Max]. Changes take effect on the next tick (limits) or at once
// (shares).
type Knob struct {
	// Name is dotted, e.g. "bitswap.peer_rate.unknown".
	Name string
	// Unit names what the value counts.
	Unit string
	// Min and Max bound the value.
	Min, Max int64
	// Get returns the current value.
	Get func() int64
	// Set changes the value.
	Set func(int64) error
}

// Knobs returns the policy's live settings.
func (p *Policy) Knobs() []Knob {
	var ks []Knob
	for _, c := range []Class{ClassGood, ClassUnknown} {
		ks = append(ks,
			p.knob("bitswap.peer_rate."+c.String(), "entries/s", 0, 1<<24, &p.peerRate[c], nil),
			p.knob("bitswap.peer_pending."+c.String(), "entries", 0, 1<<24, &p.peerPending[c], nil))
	}
	for _, c := range []Class{ClassPriority, ClassGood, ClassUnknown} {
		c := c
		ks = append(ks, p.knob("bitswap.min_share."+c.String(), "percent", 1, 100, &p.minShare[c], func(v int64) error {
			sum := v
			for o := Class(0); o < NumClasses; o++ {
				if o != c {
					sum += p.minShare[o].Load()
				}
			}
			if sum > 100 {
				return fmt.Errorf("exchange: %s=%d would make the minimum shares add up to %d%%", "bitswap.min_share."+c.String(), v, sum)
			}
			return nil
		}))
	}
	ks = append(ks, p.knob("bitswap.global_pending", "entries", 64, 1<<26, &p.globalPend, nil))
	return ks
}

type atomicInt interface {
	Load() int64
	Store(int64)
}

func (p *Policy) knob(name, unit string, lo, hi int64, v atomicInt, check func(int64) error) Knob {
	return Knob{Name: name, Unit: unit, Min: lo, Max: hi, Get: v.Load, Set: func(n int64) error {
		if n < lo || n > hi {
			return fmt.Errorf("exchange: %s=%d is out of range %d to %d", name, n, lo, hi)
		}
		if check != nil {
			if err := check(n); err != nil {
				return err
			}
		}
		v.Store(n)
		return nil
	}}
}
