package plugin

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	humanize "github.com/dustin/go-humanize"
	logging "github.com/ipfs/go-log/v2"
	"github.com/ipfs/kubo/core"

	"github.com/kubo-highload/highload/health"
	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

var healthLog = logging.Logger("highload/health")

func init() {
	registerComponent(component{
		name:  "health",
		order: 10,
		init: func(_, r *hlconfig.Config) error {
			if !r.Health.Enabled.WithDefault(true) {
				hlstate.SetComponent("health", hlstate.StatusDisabled, "Config.Health.Enabled is false")
				return nil
			}
			if _, err := healthThresholds(r.Health); err != nil {
				if !isConfigCommand(os.Args) {
					return err
				}
				// Like a parse error: `ipfs config` must stay usable
				// to fix the value.
				fmt.Fprintf(os.Stderr, "WARNING: %v\n", err)
			}
			hlstate.SetComponent("health", hlstate.StatusIdle, "runs in the daemon only")
			return nil
		},
		start: startHealth,
	})
}

// The process-wide pressure state. Kubo may build more than one node per
// process; the last daemon node's monitor wins, like hlstate.SetLive.
var (
	pressureMu   sync.Mutex
	monitor      *health.Monitor
	pressureSubs []func(health.Level)
)

// onPressure registers f for the daemon's pressure level: f is called now
// with the current level (normal while no monitor runs) and then on every
// change, from the monitor's loop; f must not block. Components call it
// from their start hook (order above 10, so the monitor is already up);
// Bitswap shedding, tier shrinking and connmgr watermarks hook in here.
func onPressure(f func(health.Level)) {
	pressureMu.Lock()
	pressureSubs = append(pressureSubs, f)
	pressureMu.Unlock()
	f(pressureLevel())
}

// pressureLevel returns the daemon's pressure level; normal when no
// monitor runs (health disabled, or a CLI process).
func pressureLevel() health.Level {
	pressureMu.Lock()
	m := monitor
	pressureMu.Unlock()
	if m == nil {
		return health.Normal
	}
	return m.Level()
}

// currentMonitor returns the running monitor, or nil.
func currentMonitor() *health.Monitor {
	pressureMu.Lock()
	defer pressureMu.Unlock()
	return monitor
}

func dispatchPressure(l health.Level) {
	pressureMu.Lock()
	subs := append([]func(health.Level){}, pressureSubs...)
	pressureMu.Unlock()
	for _, f := range subs {
		f(l)
	}
}

// healthThresholds turns the percentages into thresholds, refusing
// combinations that cannot work with the keys named.
func healthThresholds(c *hlconfig.HealthConfig) (health.Thresholds, error) {
	pct := func(v interface{ WithDefault(int64) int64 }, d int64) float64 {
		return float64(v.WithDefault(d)) / 100
	}
	t := health.Thresholds{
		ElevatedEnter: pct(c.ElevatedPercent, 80), ElevatedExit: pct(c.ElevatedExitPercent, 70),
		CriticalEnter: pct(c.CriticalPercent, 95), CriticalExit: pct(c.CriticalExitPercent, 85),
		MinDwell: c.MinDwell.WithDefault(10 * time.Second),
	}
	p := hlconfig.RootPath + ".Health."
	switch {
	case t.ElevatedExit >= t.ElevatedEnter:
		return t, fmt.Errorf("%s%sElevatedExitPercent (%.0f) must be below %sElevatedPercent (%.0f)",
			hlconfig.ErrPrefix, p, 100*t.ElevatedExit, p, 100*t.ElevatedEnter)
	case t.CriticalEnter <= t.ElevatedEnter:
		return t, fmt.Errorf("%s%sCriticalPercent (%.0f) must be above %sElevatedPercent (%.0f)",
			hlconfig.ErrPrefix, p, 100*t.CriticalEnter, p, 100*t.ElevatedEnter)
	case t.CriticalExit >= t.CriticalEnter:
		return t, fmt.Errorf("%s%sCriticalExitPercent (%.0f) must be below %sCriticalPercent (%.0f)",
			hlconfig.ErrPrefix, p, 100*t.CriticalExit, p, 100*t.CriticalEnter)
	case t.CriticalExit < t.ElevatedExit:
		return t, fmt.Errorf("%s%sCriticalExitPercent (%.0f) must not be below %sElevatedExitPercent (%.0f)",
			hlconfig.ErrPrefix, p, 100*t.CriticalExit, p, 100*t.ElevatedExit)
	}
	return t, t.Validate()
}

// diskPaths expands Health.DiskPaths: "auto" is the repo and every "path"
// in Datastore.Spec (relative ones are under the repo).
func diskPaths(n *core.IpfsNode, c *hlconfig.HealthConfig) []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p = filepath.Clean(p); p != "." && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	repoPath := ""
	if n.Repo != nil {
		repoPath = n.Repo.Path()
	}
	for _, p := range strings.Split(c.DiskPaths.WithDefault("auto"), string(os.PathListSeparator)) {
		switch p = strings.TrimSpace(p); {
		case p == "":
		case p == "auto":
			if repoPath == "" {
				continue
			}
			add(repoPath)
			if cfg, err := n.Repo.Config(); err == nil {
				for _, sp := range specPaths(cfg.Datastore.Spec) {
					if !filepath.IsAbs(sp) {
						sp = filepath.Join(repoPath, sp)
					}
					add(sp)
				}
			}
		default:
			add(p)
		}
	}
	sort.Strings(out)
	return out
}

// specPaths returns every string under a "path" key in a datastore spec.
func specPaths(v any) []string {
	var out []string
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && k == "path" {
				out = append(out, s)
				continue
			}
			out = append(out, specPaths(x)...)
		}
	case []any:
		for _, x := range t {
			out = append(out, specPaths(x)...)
		}
	}
	return out
}

// reliefInterval bounds how often a critical level returns freed heap to
// the OS (a full GC each time).
const reliefInterval = 30 * time.Second

func startHealth(n *core.IpfsNode, _, r *hlconfig.Config) error {
	c := r.Health
	if !c.Enabled.WithDefault(true) {
		return nil
	}
	th, err := healthThresholds(c)
	if err != nil {
		return err
	}
	paths := diskPaths(n, c)
	budget := uint64(c.MemoryBudget.WithDefault(0))
	var lastRelief time.Time
	m, err := health.New(health.NewSystemSource(paths),
		health.WithInterval(c.Interval.WithDefault(5*time.Second)),
		health.WithThresholds(th),
		health.WithMemoryBudget(budget),
		health.WithHorizon(c.Horizon.WithDefault(30*time.Minute)),
		health.WithOnWarning(func(w health.Warning) { healthLog.Warnf("%s", w.Message) }),
		health.WithOnSample(func(s health.Snapshot) {
			recordSeries(n, s)
			// Under critical pressure, hand freed heap back to the OS
			// now rather than when the scavenger gets to it.
			if s.Level == health.Critical && time.Since(lastRelief) >= reliefInterval {
				lastRelief = time.Now()
				debug.FreeOSMemory()
			}
		}),
	)
	if err != nil {
		return fmt.Errorf("highload: health: %w", err)
	}
	// Rising levels are warnings, recoveries are news. The first call
	// (from Subscribe) and the loop's may overlap, hence the atomic.
	var prev atomic.Int32
	prev.Store(int32(m.Level()))
	m.Subscribe(func(l health.Level) {
		s := m.Snapshot()
		switch old := health.Level(prev.Swap(int32(l))); {
		case l > old:
			healthLog.Warnf("pressure level %s (%s at %.0f%%)", l, s.Driver, 100*s.Pressure)
		case l < old:
			healthLog.Infof("pressure level %s: recovered (%s at %.0f%%)", l, s.Driver, 100*s.Pressure)
		}
	})
	m.Subscribe(dispatchPressure)
	pressureMu.Lock()
	old := monitor
	monitor = m
	pressureMu.Unlock()
	if old != nil {
		old.Close()
	}
	hlstate.SetLive("health", func() any { return m.Snapshot() })
	hlstate.SetLive("advise", func() any { return adviseReport() })
	budgetText := "no budget"
	if budget > 0 {
		budgetText = "budget " + humanize.IBytes(budget)
	}
	base := fmt.Sprintf("sampling every %s; %s; %d disk path(s)", m.Interval(), budgetText, len(paths))
	// `ipfs stats highload` shows the level beside the settings.
	m.Subscribe(func(l health.Level) {
		hlstate.SetComponent("health", hlstate.StatusActive, base+"; level "+l.String())
	})
	if r.Metrics.Enabled.WithDefault(true) {
		if err := registerCollector(healthCollector{}); err != nil {
			return err
		}
		if err := registerCollector(isolationCollector{}); err != nil {
			return err
		}
	}
	go func() {
		<-n.Context().Done()
		m.Close()
		pressureMu.Lock()
		last := monitor == m
		if last {
			monitor = nil
		}
		pressureMu.Unlock()
		if last {
			hlstate.SetLive("health", nil)
			hlstate.SetLive("advise", nil)
		}
	}()
	return nil
}
