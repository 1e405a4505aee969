package plugin

import (
	"math"
	"strings"

	"github.com/ipfs/kubo/core"

	"github.com/kubo-highload/highload/health"
	"github.com/kubo-highload/highload/plugin/hlconfig"
)

// The pressure wiring: the health monitor's level (plugin/health.go) drives
// the components that degrade. The components never import health; each
// takes its own small input, and this file translates.
//
//   - connmgr reads a level 0..3 at each adaptation step: normal is 0,
//     critical 3; elevated is 2 (HighWater down a step, grace halved) only
//     while a resource is measured at or above the Elevated threshold, and
//     1 (hold: no growth, no shedding) while the level is elevated by a
//     forecast or by the hysteresis band alone (connMgrLevel).
//   - the tiered store's memory tier gets its configured budget at normal,
//     half of it at elevated and an eighth at critical.

func init() {
	setConnMgrPressure(healthConnMgrPressure)
	registerComponent(component{
		name:  "pressure-wiring",
		order: 20, // after health (10), before the components' own starts
		start: func(*core.IpfsNode, *hlconfig.Config, *hlconfig.Config) error {
			onPressure(applyTieredPressure)
			return nil
		},
	})
}

// healthConnMgrPressure is connmgr's pressure source: the health
// monitor's snapshot, mapped by connMgrLevel.
func healthConnMgrPressure() int {
	m := currentMonitor()
	if m == nil {
		return 0
	}
	return connMgrLevel(m.Snapshot())
}

// connMgrLevel maps the health snapshot onto connmgr's 0 (none) .. 3
// (critical). Elevated sheds connections (2) only while a resource other
// than a disk is measured at or above the Elevated threshold (the snapshot
// then carries a warning named after it). Elevated that comes from a
// forecast alone, or from the band between the exit and enter thresholds,
// holds the watermarks (1): no growth under demand, no trimming. Without
// this, a burst of inbound connections is its own alarm: 10,000 of them
// arriving at 200 a second make the fd trend forecast exhaustion within
// the horizon, the level turns Elevated, and the manager trimmed 2,063 of
// the connections it was configured to keep (W7, fds at 50% of the limit).
func connMgrLevel(s health.Snapshot) int {
	switch {
	case s.Level >= health.Critical:
		return 3
	case s.Level >= health.Elevated:
		for _, w := range s.Warnings {
			if !strings.HasSuffix(w.Resource, ":forecast") && !strings.HasPrefix(w.Resource, health.ReadDisk+":") {
				return 2
			}
		}
		return 1
	default:
		return 0
	}
}

// tieredBudgetFraction is the share of the configured memory tier kept at
// each level.
func tieredBudgetFraction(l health.Level) float64 {
	switch {
	case l >= health.Critical:
		return 1.0 / 8
	case l >= health.Elevated:
		return 1.0 / 2
	default:
		return 1
	}
}

// applyTieredPressure resizes the running tiered store's memory tier.
func applyTieredPressure(l health.Level) {
	d := currentTiered.Load()
	if d == nil {
		return
	}
	// SetMemoryBudget clamps to the configured capacity, so asking for
	// everything returns the configured size.
	full := d.SetMemoryBudget(math.MaxUint64)
	if f := tieredBudgetFraction(l); f < 1 {
		got := d.SetMemoryBudget(uint64(float64(full) * f))
		log.Infof("pressure %s: tiered memory tier budget %s of %s", l, humanBytes(got), humanBytes(full))
	}
}

// bitswapPressureLevel is the Bitswap policy's pressure source: 0 normal,
// 1 elevated, 2 critical. The policy shrinks its live limits as it rises
// and sheds the lower classes first.
func bitswapPressureLevel() int {
	switch l := pressureLevel(); {
	case l >= health.Critical:
		return 2
	case l >= health.Elevated:
		return 1
	default:
		return 0
	}
}
