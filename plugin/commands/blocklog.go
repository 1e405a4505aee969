package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"
	cmds "github.com/ipfs/go-ipfs-cmds"
	"github.com/ipfs/kubo/core/commands/cmdenv"

	"github.com/kubo-highload/highload/datastore/blocklog"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// BlocklogLog is one open log in `ipfs stats highload blocklog`.
type BlocklogLog struct {
	// Path is the log's directory.
	Path string `json:"path"`
	// Stats are its figures.
	Stats blocklog.Stats `json:"stats"`
}

// BlocklogStatus is the output of `ipfs stats highload blocklog`.
type BlocklogStatus struct {
	// Logs are the open logs, by path; empty when the repo has none.
	Logs []BlocklogLog `json:"logs"`
}

// BlocklogCmd is `ipfs stats highload blocklog`.
var BlocklogCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Show blocklog segments, group commits, flushes and compactions.",
		ShortDescription: `
'ipfs stats highload blocklog' prints, for each open blocklog (the append-only
log a tiered datastore may use as its fast tier): its segments, keys, disk,
live and garbage bytes; its group commits (records per group, largest
group); its flushes (count, mean latency, groups written into the
zero-filled tail); its compactions; and what its last open truncated.
`,
	},
	Run: func(req *cmds.Request, res cmds.ResponseEmitter, env cmds.Environment) error {
		if _, err := cmdenv.GetNode(env); err != nil {
			return err
		}
		out := BlocklogStatus{Logs: []BlocklogLog{}}
		if f, ok := hlstate.Live("blocklog"); ok {
			// The plugin publishes its own slice type, of the same shape
			// (this package cannot import the plugin's).
			b, err := json.Marshal(f())
			if err == nil {
				err = json.Unmarshal(b, &out.Logs)
			}
			if err != nil {
				return fmt.Errorf("blocklog stats: %w", err)
			}
		}
		return cmds.EmitOnce(res, &out)
	},
	Type: BlocklogStatus{},
	Encoders: cmds.EncoderMap{
		cmds.Text: cmds.MakeTypedEncoder(func(req *cmds.Request, w io.Writer, s *BlocklogStatus) error {
			return writeBlocklog(w, s)
		}),
	},
}

func writeBlocklog(w io.Writer, s *BlocklogStatus) error {
	if len(s.Logs) == 0 {
		_, err := fmt.Fprintln(w, `blocklog: none open (no "blocklog" type in Datastore.Spec)`)
		return err
	}
	for _, l := range s.Logs {
		st := l.Stats
		fmt.Fprintf(w, "blocklog %s\n", l.Path)
		fmt.Fprintf(w, "  segments: %d, keys: %d\n", st.Segments, st.Keys)
		fmt.Fprintf(w, "  disk: %s, live: %s, garbage: %s (tombstones %s)\n", humanize.IBytes(uint64(st.DiskBytes)),
			humanize.IBytes(uint64(st.LiveBytes)), humanize.IBytes(uint64(st.GarbageBytes)), humanize.IBytes(uint64(st.TombstoneBytes)))
		perGroup := 0.0
		if st.Groups > 0 {
			perGroup = float64(st.GroupedOps) / float64(st.Groups)
		}
		fmt.Fprintf(w, "  group commits: %d, %d records (%.2f per group, largest %d), %s\n", st.Groups, st.GroupedOps,
			perGroup, st.MaxGroupOps, humanize.IBytes(st.GroupBytes))
		mean := time.Duration(0)
		if st.Syncs > 0 {
			mean = st.SyncTime / time.Duration(st.Syncs)
		}
		fmt.Fprintf(w, "  flushes: %d, mean %s; groups into the zero-filled tail: %d (%s ahead now, %s zeros written, %d failures)\n",
			st.Syncs, mean.Round(time.Microsecond), st.InPlaceGroups, humanize.IBytes(uint64(st.PreallocatedBytes)),
			humanize.IBytes(st.ZeroFilledBytes), st.PreallocFailures)
		switch {
		case st.ZeroFill == "off":
			fmt.Fprintln(w, "  zero fill: off")
		case st.PreallocMaxGroup <= 0:
			fmt.Fprintf(w, "  zero fill: %s (never paused)\n", st.ZeroFill)
		default:
			rel := "below"
			if st.ZeroFill == "paused" {
				rel = "not below"
			}
			fmt.Fprintf(w, "  zero fill: %s (recent groups %s, %s %s)\n", st.ZeroFill,
				humanize.IBytes(uint64(st.RecentGroupBytes)), rel, humanize.IBytes(uint64(st.PreallocMaxGroup)))
		}
		fmt.Fprintf(w, "  compactions: %d, %s freed, %d failed\n", st.Compactions, humanize.IBytes(st.CompactedBytes), st.CompactionFailures)
		if _, err := fmt.Fprintf(w, "  last open: %s, torn tail truncated: %s\n", st.OpenTime.Round(time.Millisecond),
			humanize.IBytes(st.TruncatedBytes)); err != nil {
			return err
		}
	}
	return nil
}

func init() {
	addSubcommand("blocklog", BlocklogCmd)
}
