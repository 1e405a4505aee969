package commands

import (
	"errors"
	"fmt"
	"io"
	"time"

	cmds "github.com/ipfs/go-ipfs-cmds"

	"github.com/kubo-highload/highload/autotune"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// AdviseCmd is `ipfs stats highload advise`.
var AdviseCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Look for bottlenecks in the daemon's recent metrics.",
		ShortDescription: `
'ipfs stats highload advise' runs the bottleneck analyzer over the last
samples the resource monitor recorded (memory, Go heap, goroutines, fds,
CPU, disk free, Bitswap counters). Each finding says what was seen, the
metric behind it, and the config change it recommends. Anomalies use a
robust z-score (median and MAD); trends use the Theil-Sen slope. It runs
in the daemon only.
`,
	},
	Run: func(req *cmds.Request, res cmds.ResponseEmitter, env cmds.Environment) error {
		f, ok := hlstate.Live("advise")
		if !ok {
			return errNoDaemon("the advisor", "Config.Health.Enabled")
		}
		r, ok := f().(autotune.Report)
		if !ok {
			return errors.New("highload: advise: unexpected live view type")
		}
		return cmds.EmitOnce(res, &r)
	},
	Type: autotune.Report{},
	Encoders: cmds.EncoderMap{
		cmds.Text: cmds.MakeTypedEncoder(func(req *cmds.Request, w io.Writer, r *autotune.Report) error {
			return writeAdvice(w, r)
		}),
	},
}

func writeAdvice(w io.Writer, r *autotune.Report) error {
	since := "no samples yet"
	if !r.Since.IsZero() {
		since = "since " + r.Since.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "Analysed %d series, up to %d samples each (%s).\n", r.Series, r.Points, since)
	if r.Note != "" {
		fmt.Fprintf(w, "Note: %s\n", r.Note)
	}
	if len(r.Findings) == 0 {
		fmt.Fprintf(w, "\nNo findings: nothing stands out.\n")
		return nil
	}
	fmt.Fprintf(w, "\nFindings:\n")
	for i, f := range r.Findings {
		fmt.Fprintf(w, "%d. [%s] %s\n   metric: %s\n   change: %s\n", i+1, f.Kind, f.Message, f.Metric, f.Advice)
	}
	return nil
}

func init() {
	addSubcommand("advise", AdviseCmd)
}
