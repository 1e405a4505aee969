package commands

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	humanize "github.com/dustin/go-humanize"
	cmds "github.com/ipfs/go-ipfs-cmds"

	"github.com/kubo-highload/highload/autoscale"
	"github.com/kubo-highload/highload/health"
	"github.com/kubo-highload/highload/hugepages"
	"github.com/kubo-highload/highload/plugin"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// HealthOutput is the output of `ipfs stats highload health`: the
// monitor's snapshot (its fields at the top level of the JSON) and the
// parts components reported to the isolator.
type HealthOutput struct {
	health.Snapshot
	// Isolation lists every name components reported on, with its state
	// (healthy, isolated, probing); omitted when none reported.
	Isolation []autoscale.Status `json:",omitempty"`
	// Pools lists our worker pools that size themselves live; omitted
	// when none runs.
	Pools []plugin.PoolStatus `json:",omitempty"`
	// HugePages is the Go heap's huge page state; omitted when
	// Config.Runtime.HugePages is false.
	HugePages *hugepages.Status `json:",omitempty"`
}

// errNoDaemon is returned by commands whose component runs in the daemon only.
func errNoDaemon(what, key string) error {
	return fmt.Errorf("highload: %s runs in the daemon only: start `ipfs daemon` (and check %s)", what, key)
}

// HealthCmd is `ipfs stats highload health`.
var HealthCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Show the daemon's resource readings, forecasts and pressure level.",
		ShortDescription: `
'ipfs stats highload health' prints the resource monitor's latest sample:
the pressure level (normal, elevated, critical) and the resource driving it,
memory against Config.Health.MemoryBudget, the cgroup limit and the host,
the Go heap, CPU, open file descriptors against their limit, free space on
each watched path, the trend forecasts, the warnings in force and the
readings that could not be taken. The monitor runs in the daemon only.
`,
	},
	Run: func(req *cmds.Request, res cmds.ResponseEmitter, env cmds.Environment) error {
		f, ok := hlstate.Live("health")
		if !ok {
			return errNoDaemon("the resource monitor", "Config.Health.Enabled")
		}
		s, ok := f().(health.Snapshot)
		if !ok {
			return errors.New("highload: health: unexpected live view type")
		}
		out := HealthOutput{Snapshot: s}
		if iso, ok := hlstate.Live("isolation"); ok {
			out.Isolation, _ = iso().([]autoscale.Status)
		}
		if p, ok := hlstate.Live("pools"); ok {
			out.Pools, _ = p().([]plugin.PoolStatus)
		}
		if hp, ok := hlstate.Live("hugepages"); ok {
			if st, ok := hp().(hugepages.Status); ok {
				out.HugePages = &st
			}
		}
		return cmds.EmitOnce(res, &out)
	},
	Type: HealthOutput{},
	Encoders: cmds.EncoderMap{
		cmds.Text: cmds.MakeTypedEncoder(func(req *cmds.Request, w io.Writer, s *HealthOutput) error {
			if err := writeHealth(w, &s.Snapshot); err != nil {
				return err
			}
			if err := writeIsolation(w, s.Isolation); err != nil {
				return err
			}
			if err := writePools(w, s.Pools); err != nil {
				return err
			}
			return writeHugePages(w, s.HugePages)
		}),
	},
}

func pctOf(a, b uint64) string {
	if b == 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(a)/float64(b))
}

func writeHealth(w io.Writer, s *health.Snapshot) error {
	unknown := func(name string) (string, bool) { why, bad := s.Unknown[name]; return why, bad }
	fmt.Fprintf(w, "Pressure level: %s (since %s)", s.Level, s.LevelSince.UTC().Format(time.RFC3339))
	if s.PressureKnown {
		fmt.Fprintf(w, "; highest: %s at %.0f%%", s.Driver, 100*s.Pressure)
	} else {
		fmt.Fprintf(w, "; pressure unknown")
	}
	fmt.Fprintf(w, "\n\n")
	if _, bad := unknown(health.ReadRSS); bad {
		fmt.Fprintf(w, "Memory:  RSS unknown")
	} else {
		fmt.Fprintf(w, "Memory:  RSS %s", humanize.IBytes(s.RSS))
		if s.MemoryBudget > 0 {
			fmt.Fprintf(w, " of budget %s (%s)", humanize.IBytes(s.MemoryBudget), pctOf(s.RSS, s.MemoryBudget))
		} else {
			fmt.Fprintf(w, " (no budget set)")
		}
	}
	if _, bad := unknown(health.ReadSystemMem); !bad {
		fmt.Fprintf(w, "; host %s available of %s", humanize.IBytes(s.SystemAvailable), humanize.IBytes(s.SystemTotal))
	}
	if s.CgroupLimit > 0 {
		fmt.Fprintf(w, "; cgroup %s of %s", humanize.IBytes(s.CgroupUsage), humanize.IBytes(s.CgroupLimit))
	}
	fmt.Fprintln(w)
	if _, bad := unknown(health.ReadGoRuntime); !bad {
		fmt.Fprintf(w, "Go:      heap %s live, GC goal %s, %s mapped; %d goroutines\n",
			humanize.IBytes(s.HeapLive), humanize.IBytes(s.HeapGoal), humanize.IBytes(s.GoTotal), s.Goroutines)
	}
	fmt.Fprintf(w, "CPU:     ")
	if _, bad := unknown(health.ReadProcessCPU); bad {
		fmt.Fprintf(w, "process unknown")
	} else {
		fmt.Fprintf(w, "process %.2f cores", s.ProcessCPU)
	}
	if _, bad := unknown(health.ReadSystemCPU); !bad {
		fmt.Fprintf(w, "; host %.0f%% of %d cores", 100*s.SystemCPU, s.NumCPU)
	}
	fmt.Fprintln(w)
	if _, bad := unknown(health.ReadFDs); bad {
		fmt.Fprintf(w, "FDs:     unknown\n")
	} else {
		fmt.Fprintf(w, "FDs:     %d open of %d (%s)\n", s.FDs, s.FDLimit, pctOf(s.FDs, s.FDLimit))
	}
	for _, d := range s.Disks {
		fmt.Fprintf(w, "Disk:    %s: %s free of %s\n", d.Path, humanize.IBytes(d.Free), humanize.IBytes(d.Total))
	}
	if len(s.Forecasts) > 0 {
		fmt.Fprintf(w, "\nForecasts (Holt linear trend):\n")
		for _, f := range s.Forecasts {
			fmt.Fprintf(w, "  %s: %s/s; ", f.Resource, signedQty(f.PerSecond, f.Resource))
			if f.Exhausts {
				fmt.Fprintf(w, "limit reached in %s\n", f.TimeToLimit.Round(time.Second))
			} else {
				fmt.Fprintf(w, "limit not in sight\n")
			}
		}
	}
	if len(s.Warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings:\n")
		for _, x := range s.Warnings {
			fmt.Fprintf(w, "  %s\n", x.Message)
		}
	}
	if len(s.Unknown) > 0 {
		fmt.Fprintf(w, "\nUnknown readings:\n")
		keys := make([]string, 0, len(s.Unknown))
		for k := range s.Unknown {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s: %s\n", k, s.Unknown[k])
		}
	}
	fmt.Fprintf(w, "\nSamples: %d (last took %s); level changes: %d\n", s.Samples, s.SampleCost.Round(time.Microsecond), s.LevelChanges)
	return nil
}

func writeIsolation(w io.Writer, st []autoscale.Status) error {
	if len(st) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nIsolation:\n")
	for _, s := range st {
		fmt.Fprintf(w, "  %s: %s", s.Name, s.State)
		if s.State != autoscale.Healthy {
			fmt.Fprintf(w, " until %s (isolation %d in a row)", s.Until.UTC().Format(time.TimeOnly), s.Isolations)
		}
		if s.TotalFailures > 0 || s.Refused > 0 {
			fmt.Fprintf(w, "; %d failed, %d refused", s.TotalFailures, s.Refused)
		}
		if s.LastError != "" {
			fmt.Fprintf(w, "; last error: %s", s.LastError)
		}
		fmt.Fprintln(w)
	}
	return nil
}

func writePools(w io.Writer, ps []plugin.PoolStatus) error {
	if len(ps) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nPools (sized live by backlog):\n")
	for _, p := range ps {
		fmt.Fprintf(w, "  %s: %d worker(s) (%d running), %d queued, %d done, %d dropped\n",
			p.Name, p.Size, p.Running, p.Queued, p.Processed, p.Dropped)
	}
	return nil
}

// signedQty formats a rate in bytes for byte resources, plain otherwise.
// writeHugePages prints the Go heap's huge page state.
func writeHugePages(w io.Writer, s *hugepages.Status) error {
	if s == nil {
		return nil
	}
	on := "off"
	if s.Active {
		on = "on"
	}
	_, err := fmt.Fprintf(w, "huge pages:  %s (THP %s): %s\n  heap mapped %s, marked %s in %d passes; in huge pages %s; reserve %s\n",
		on, s.Mode, s.Detail, humanize.IBytes(s.HeapMappedBytes), humanize.IBytes(s.MarkedBytes), s.Passes,
		humanize.IBytes(s.AnonHugePagesBytes), humanize.IBytes(s.ReserveBytes))
	return err
}

func signedQty(v float64, resource string) string {
	if resource == health.ResourceFDs {
		return fmt.Sprintf("%+.2f", v)
	}
	sign := "+"
	if v < 0 {
		sign, v = "-", -v
	}
	return sign + humanize.IBytes(uint64(v))
}

func init() {
	addSubcommand("health", HealthCmd)
}
