package plugin

import (
	"sync"
	"time"

	"github.com/kubo-highload/highload/autoscale"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// The process-wide isolator: components report the outcome of calls to a
// part that can fail (a tier, a peer class, a breaker) under a name such as
// "tiered/slow", and ask before calling it again. Isolated names are shown
// by `ipfs stats highload health` and logged.
var (
	isolatorOnce sync.Once
	isolatorInst *autoscale.Isolator
)

// isolation returns the process-wide isolator: 5 consecutive failures
// isolate a name for 5s, doubling per isolation in a row up to 5m.
func isolation() *autoscale.Isolator {
	isolatorOnce.Do(func() {
		isolatorInst = autoscale.NewIsolator(autoscale.IsolatorConfig{
			Threshold: 5, Backoff: 5 * time.Second, MaxBackoff: 5 * time.Minute,
			OnChange: func(name string, from, to autoscale.State, err error) {
				switch to {
				case autoscale.Isolated:
					healthLog.Warnf("%s isolated (was %s) after repeated failures: %v", name, from, err)
				case autoscale.Healthy:
					healthLog.Infof("%s healthy again", name)
				}
			},
		})
		hlstate.SetLive("isolation", func() any { return isolatorInst.Statuses() })
	})
	return isolatorInst
}
