package commands

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
	"time"

	cmds "github.com/ipfs/go-ipfs-cmds"

	"github.com/kubo-highload/highload/autotune"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// tunerControl is what the write commands need of the daemon's tuner.
type tunerControl interface {
	RevertLast(reason string) (autotune.Change, error)
	Freeze(reason string)
	Resume()
	Set(name string, value float64, reason string) (autotune.Change, error)
	Status() autotune.Status
}

func liveTuner() (tunerControl, error) {
	f, ok := hlstate.Live("autotune.control")
	if !ok {
		return nil, errNoDaemon("the tuner", "Config.AutoTune.Enabled")
	}
	t, ok := f().(tunerControl)
	if !ok {
		return nil, errors.New("highload: autotune: unexpected live view type")
	}
	return t, nil
}

const limitOption = "limit"

// AutoTuneCmd is `ipfs stats highload autotune`.
var AutoTuneCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Show the tuner's state, knobs and change log.",
		ShortDescription: `
'ipfs stats highload autotune' prints what the tuner is doing, the knobs
components registered (with bounds and what the model has learned), and
its change log: every value it set, why, and the objective before and after.
The subcommands revert the last kept change, freeze or resume the tuner and
set a knob by hand while it is frozen; they change the daemon and sit under
their own RPC paths (/api/v0/stats/highload/autotune/revert, .../freeze,
.../resume, .../set), see
docs/tuning.md for API.Authorizations. The tuner runs in the daemon only.
`,
	},
	Options: []cmds.Option{
		cmds.IntOption(limitOption, "n", "Show only the last n changes in text output.").WithDefault(20),
	},
	Run: func(req *cmds.Request, res cmds.ResponseEmitter, env cmds.Environment) error {
		t, err := liveTuner()
		if err != nil {
			return err
		}
		s := t.Status()
		return cmds.EmitOnce(res, &s)
	},
	Type: autotune.Status{},
	Encoders: cmds.EncoderMap{
		cmds.Text: cmds.MakeTypedEncoder(func(req *cmds.Request, w io.Writer, s *autotune.Status) error {
			limit, _ := req.Options[limitOption].(int)
			return writeTuner(w, s, limit)
		}),
	},
	Subcommands: map[string]*cmds.Command{
		"revert": autoTuneRevertCmd,
		"freeze": autoTuneFreezeCmd,
		"resume": autoTuneResumeCmd,
		"set":    autoTuneSetCmd,
	},
}

func fig(p *float64) string {
	if p == nil {
		return "?"
	}
	return fmt.Sprintf("%.4g", *p)
}

func writeTuner(w io.Writer, s *autotune.Status, limit int) error {
	fmt.Fprintf(w, "Tuner: %s", s.State)
	if s.Detail != "" {
		fmt.Fprintf(w, " (%s)", s.Detail)
	}
	fmt.Fprintf(w, "\nWindow: %s; windows %d (skipped %d); trials %d, kept %d, rolled back %d, reverted %d\n",
		s.Window, s.Windows, s.Skipped, s.Trials, s.Kept, s.RolledBack, s.Reverts)
	fmt.Fprintf(w, "Objective: %s (noise %.3g)\n", fig(s.Objective), s.Noise)
	if len(s.Knobs) == 0 {
		fmt.Fprintf(w, "\nKnobs: no knobs registered\n")
	} else {
		fmt.Fprintf(w, "\nKnobs:\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, k := range s.Knobs {
			if k.Error != "" {
				fmt.Fprintf(tw, "  %s\tinvalid: %s\n", k.Name, k.Error)
				continue
			}
			fmt.Fprintf(tw, "  %s\t%g %s\t[%g, %g] step %g\t%s\n", k.Name, k.Value, k.Unit, k.Min, k.Max, k.Step, k.Model)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nChanges (%d):\n", len(s.Changes))
	if len(s.Changes) == 0 {
		fmt.Fprintf(w, "  none\n")
		return nil
	}
	cs := s.Changes
	if limit > 0 && len(cs) > limit {
		cs = cs[len(cs)-limit:]
	}
	for _, c := range cs {
		outcome := ""
		if c.Outcome != "" {
			outcome = ", " + c.Outcome
		}
		fmt.Fprintf(w, "  #%d %s %s %s: %g -> %g %s (objective %s -> %s%s)\n      %s\n",
			c.Seq, c.Time.UTC().Format(time.TimeOnly), c.Kind, c.Knob, c.From, c.To, c.Unit,
			fig(c.Before), fig(c.After), outcome, c.Reason)
	}
	return nil
}

const reasonOption = "reason"

var autoTuneRevertCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Undo the last kept change.",
		ShortDescription: `
Sets the knob of the tuner's latest kept change back to its previous value
(or rolls back a trial in flight), records it in the change log and prints
that entry. The tuner measures a fresh baseline before trying again.
Daemon only; an admin command (see docs/tuning.md).
`,
	},
	NoLocal: true,
	Options: []cmds.Option{
		cmds.StringOption(reasonOption, "r", "Why, for the change log."),
	},
	Run: func(req *cmds.Request, res cmds.ResponseEmitter, env cmds.Environment) error {
		t, err := liveTuner()
		if err != nil {
			return err
		}
		reason, _ := req.Options[reasonOption].(string)
		if reason != "" {
			reason = "operator: " + reason
		}
		c, err := t.RevertLast(reason)
		if err != nil {
			return err
		}
		return cmds.EmitOnce(res, &c)
	},
	Type: autotune.Change{},
	Encoders: cmds.EncoderMap{
		cmds.Text: cmds.MakeTypedEncoder(func(req *cmds.Request, w io.Writer, c *autotune.Change) error {
			_, err := fmt.Fprintf(w, "change #%d: %s %s: %g -> %g %s: %s\n", c.Seq, c.Kind, c.Knob, c.From, c.To, c.Unit, c.Reason)
			return err
		}),
	},
}

// FreezeResult is the output of freeze and resume.
type FreezeResult struct {
	// Frozen is the tuner's state after the command.
	Frozen bool
	// State is the tuner's state.
	State string
}

func freezeRun(freeze bool) func(*cmds.Request, cmds.ResponseEmitter, cmds.Environment) error {
	return func(req *cmds.Request, res cmds.ResponseEmitter, env cmds.Environment) error {
		t, err := liveTuner()
		if err != nil {
			return err
		}
		if freeze {
			reason, _ := req.Options[reasonOption].(string)
			if reason == "" {
				reason = "operator"
			}
			t.Freeze(reason)
		} else {
			t.Resume()
		}
		s := t.Status()
		return cmds.EmitOnce(res, &FreezeResult{Frozen: s.Frozen, State: s.State})
	}
}

var freezeEncoders = cmds.EncoderMap{
	cmds.Text: cmds.MakeTypedEncoder(func(req *cmds.Request, w io.Writer, r *FreezeResult) error {
		if r.Frozen {
			_, err := fmt.Fprintln(w, "tuner frozen: no knob changes until `ipfs stats highload autotune resume`")
			return err
		}
		_, err := fmt.Fprintf(w, "tuner running (%s)\n", r.State)
		return err
	}),
}

var autoTuneFreezeCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Stop knob changes (admin).",
		ShortDescription: `
Rolls back a trial in flight, then stops all knob changes until
'ipfs stats highload autotune resume'. Kept values stay as they are.
`,
	},
	NoLocal:  true,
	Options:  []cmds.Option{cmds.StringOption(reasonOption, "r", "Why, for the status line.")},
	Run:      freezeRun(true),
	Type:     FreezeResult{},
	Encoders: freezeEncoders,
}

var autoTuneResumeCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Unfreeze the tuner (admin).",
		ShortDescription: `
Lets a frozen tuner change knobs again, starting with a fresh baseline.
Daemon only; an admin command (see docs/tuning.md).
`,
	},
	NoLocal:  true,
	Run:      freezeRun(false),
	Type:     FreezeResult{},
	Encoders: freezeEncoders,
}

var autoTuneSetCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Pin a knob while frozen.",
		ShortDescription: `
Sets the named knob (see 'ipfs stats highload autotune') to value, snapped
to its step and refused outside its bounds, and records it in the change
log. The tuner must be frozen first, so that it does not judge a hand-set
value as its own; it measures a fresh baseline when resumed.
Daemon only; an admin command (see docs/tuning.md).
`,
	},
	NoLocal: true,
	Arguments: []cmds.Argument{
		cmds.StringArg("knob", true, false, "Knob name, e.g. bitswap.global_pending."),
		cmds.StringArg("value", true, false, "New value, in the knob's unit."),
	},
	Options: []cmds.Option{
		cmds.StringOption(reasonOption, "r", "Why, for the change log."),
	},
	Run: func(req *cmds.Request, res cmds.ResponseEmitter, env cmds.Environment) error {
		t, err := liveTuner()
		if err != nil {
			return err
		}
		v, err := strconv.ParseFloat(req.Arguments[1], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("highload: autotune set: value %q is not a number", req.Arguments[1])
		}
		reason, _ := req.Options[reasonOption].(string)
		if reason != "" {
			reason = "operator: " + reason
		}
		c, err := t.Set(req.Arguments[0], v, reason)
		if err != nil {
			return err
		}
		return cmds.EmitOnce(res, &c)
	},
	Type:     autotune.Change{},
	Encoders: autoTuneRevertCmd.Encoders,
}

func init() {
	addSubcommand("autotune", AutoTuneCmd)
}
