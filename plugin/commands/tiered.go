package commands

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	cmds "github.com/ipfs/go-ipfs-cmds"
	"github.com/ipfs/kubo/core/commands/cmdenv"

	"github.com/kubo-highload/highload/datastore/tiered"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// TieredStatus is the output of `ipfs stats highload tiered`.
type TieredStatus struct {
	// Open is false when this node's repo has no tiered datastore.
	Open bool
	// Stats are the store's figures; empty unless Open.
	Stats tiered.Stats
}

// TieredCmd is `ipfs stats highload tiered`.
var TieredCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Show the tiered datastore's tiers, hits, moves and savings.",
		ShortDescription: `
'ipfs stats highload tiered' prints, for each tier of the tiered datastore
(the memory tier, then the durable tiers fastest first), its capacity, the
bytes and blocks it holds, its read hits and misses, and the blocks the
mover promoted into it and demoted out of it; then the mover's backlog and
what zstd compression saved. It reads the daemon's store when one runs, and
opens the repo otherwise.
`,
	},
	Run: func(req *cmds.Request, res cmds.ResponseEmitter, env cmds.Environment) error {
		if _, err := cmdenv.GetNode(env); err != nil {
			return err
		}
		out := TieredStatus{}
		if f, ok := hlstate.Live("tiered"); ok {
			if s, ok := f().(tiered.Stats); ok {
				out.Open, out.Stats = true, s
			}
		}
		return cmds.EmitOnce(res, &out)
	},
	Type: TieredStatus{},
	Encoders: cmds.EncoderMap{
		cmds.Text: cmds.MakeTypedEncoder(func(req *cmds.Request, w io.Writer, s *TieredStatus) error {
			return writeTiered(w, s)
		}),
	},
}

func writeTiered(w io.Writer, s *TieredStatus) error {
	if !s.Open {
		_, err := fmt.Fprintln(w, `tiered datastore: not in use (no "tiered" type in Datastore.Spec)`)
		return err
	}
	st := s.Stats
	fmt.Fprintln(w, "tiered datastore")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIER\tKIND\tCAPACITY\tUSED\tBLOCKS\tHITS\tMISSES\tPROMOTED\tDEMOTED")
	for _, t := range st.Tiers {
		capacity := "unbounded"
		if t.Capacity > 0 {
			capacity = humanize.IBytes(t.Capacity)
			if t.Budget != t.Capacity {
				capacity += " (now " + humanize.IBytes(t.Budget) + ")"
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", t.Name, t.Kind, capacity,
			humanize.IBytes(t.Used), t.Blocks, t.Hits, t.Misses, t.Promotions, t.Demotions)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "  mover backlog: %d (dropped %d), promotions %d, demotions %d\n",
		st.MoverBacklog, st.PromotionsDropped, st.Promotions, st.Demotions)
	fmt.Fprintf(w, "  compression: %d values, %s saved\n", st.CompressedValues, humanize.IBytes(st.CompressionSavedBytes))
	fmt.Fprintf(w, "  location index: %d blocks, at most %s\n", st.IndexedBlocks, humanize.IBytes(st.IndexBytesBound))
	fmt.Fprintf(w, "  memory tier: %d misses not cached yet (read fewer than memoryAdmitReads times)\n", st.AdmissionsDeferred)
	_, err := fmt.Fprintf(w, "  reads of absent keys: %d; duplicates resolved at open: %d\n", st.Absent, st.ResolvedDuplicates)
	return err
}

func init() {
	addSubcommand("tiered", TieredCmd)
}
