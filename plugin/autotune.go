package plugin

import (
	"fmt"
	"os"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/ipfs/kubo/core"

	"github.com/kubo-highload/highload/autotune"
	"github.com/kubo-highload/highload/health"
	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

var tuneLog = logging.Logger("highload/autotune")

func init() {
	registerComponent(component{
		name:  "autotune",
		order: 90,
		init: func(_, r *hlconfig.Config) error {
			if r.AutoTune.Enabled.WithDefault(false) {
				hlstate.SetComponent("autotune", hlstate.StatusIdle, "runs in the daemon only")
			} else {
				hlstate.SetComponent("autotune", hlstate.StatusDisabled, "Config.AutoTune.Enabled is false")
			}
			return nil
		},
		start: startAutoTune,
	})
}

var (
	tunerMu  sync.Mutex
	tuner    *autotune.Tuner
	gogcOnce sync.Once
)

// currentTuner returns the running tuner, or nil.
func currentTuner() *autotune.Tuner {
	tunerMu.Lock()
	defer tunerMu.Unlock()
	return tuner
}

// bitswapBytesSent is the default served counter: the bytes the node's
// Bitswap server sent.
func bitswapBytesSent(n *core.IpfsNode) func() float64 {
	return func() float64 {
		if n.Bitswap == nil {
			return 0
		}
		st, err := n.Bitswap.Stat()
		if err != nil {
			return 0
		}
		return float64(st.DataSent)
	}
}

func startAutoTune(n *core.IpfsNode, _, r *hlconfig.Config) error {
	c := r.AutoTune
	if !c.Enabled.WithDefault(false) {
		return nil
	}
	if c.TuneGOGC.WithDefault(true) {
		if os.Getenv("GOGC") == "" {
			gogcOnce.Do(func() { addKnobs(func() []autotune.Knob { return []autotune.Knob{gogcKnob()} }) })
		} else {
			tuneLog.Infof("GOGC is set in the environment; the tuner leaves the GC target alone")
		}
	}
	budget := uint64(r.Health.MemoryBudget.WithDefault(0))
	obj, err := autotune.ThroughputObjective(autotune.ThroughputInputs{
		// No component of this plugin measures a p99 yet, so P99Limit
		// has no effect (docs/tuning.md).
		Served:   bitswapBytesSent(n),
		P99:      nil,
		P99Limit: c.P99Limit.WithDefault(500 * time.Millisecond),
		Memory: func() (uint64, bool) {
			m := currentMonitor()
			if m == nil {
				return 0, false
			}
			s := m.Snapshot()
			_, unknown := s.Unknown[health.ReadRSS]
			return s.RSS, s.Samples > 0 && !unknown
		},
		MemoryBudget: budget,
		MinRate:      1024, // bytes/s: below this the window is idle
	})
	if err != nil {
		return fmt.Errorf("highload: autotune: %w", err)
	}
	t, err := autotune.New(autotune.Config{
		Knobs:     registeredKnobs,
		Objective: obj,
		Gate: func() (bool, string) {
			if l := pressureLevel(); l >= health.Critical {
				return false, "health: pressure level " + l.String()
			}
			return true, ""
		},
		Window: c.Window.WithDefault(time.Minute),
		Seed:   time.Now().UnixNano(),
		OnChange: func(ch autotune.Change) {
			tuneLog.Infof("%s %s: %g -> %g %s: %s", ch.Kind, ch.Knob, ch.From, ch.To, ch.Unit, ch.Reason)
		},
	})
	if err != nil {
		return fmt.Errorf("highload: autotune: %w", err)
	}
	tunerMu.Lock()
	old := tuner
	tuner = t
	tunerMu.Unlock()
	if old != nil {
		old.Close()
	}
	hlstate.SetLive("autotune", func() any { return t.Status() })
	hlstate.SetLive("autotune.control", func() any { return t })
	detail := fmt.Sprintf("window %s", c.Window.WithDefault(time.Minute))
	if k := len(registeredKnobs()); k == 0 {
		detail += "; no knobs registered"
	} else {
		detail += fmt.Sprintf("; %d knob(s)", k)
	}
	hlstate.SetComponent("autotune", hlstate.StatusActive, detail)
	if r.Metrics.Enabled.WithDefault(true) {
		if err := registerCollector(tuneCollector{}); err != nil {
			return err
		}
	}
	go func() {
		<-n.Context().Done()
		t.Close()
		tunerMu.Lock()
		last := tuner == t
		if last {
			tuner = nil
		}
		tunerMu.Unlock()
		if last {
			hlstate.SetLive("autotune", nil)
			hlstate.SetLive("autotune.control", nil)
		}
	}()
	return nil
}
