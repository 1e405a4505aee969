package commands

import (
	"errors"
	"fmt"
	"github.com/dustin/go-humanize"
	"io"
	"sort"
	"text/tabwriter"

	cmds "github.com/ipfs/go-ipfs-cmds"

	"github.com/kubo-highload/highload/exchange"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

func init() { addSubcommand("bitswap", BitswapCmd) }

// errNoPolicy is returned when no adaptive Bitswap policy runs here.
var errNoPolicy = errors.New("highload: no adaptive Bitswap policy runs in this process (offline node, or Config.Bitswap.Enabled / Adaptive is false)")

// BitswapCmd is `ipfs stats highload bitswap`.
var BitswapCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Show the adaptive Bitswap policy: classes, live limits, breakers.",
		ShortDescription: `
'ipfs stats highload bitswap' prints, per request class (priority, good,
unknown), the queued entries, the wants admitted and shed, the entries
sent, the live per-peer limits and the class's global breaker; then the
peer breakers and the peers being shed. It needs a running daemon.
`,
	},
	Run: func(req *cmds.Request, res cmds.ResponseEmitter, env cmds.Environment) error {
		f, ok := hlstate.Live("bitswap")
		if !ok {
			return errNoPolicy
		}
		st, ok := f().(exchange.Stats)
		if !ok {
			return errNoPolicy
		}
		return cmds.EmitOnce(res, &st)
	},
	Type: exchange.Stats{},
	Encoders: cmds.EncoderMap{
		cmds.Text: cmds.MakeTypedEncoder(func(req *cmds.Request, w io.Writer, s *exchange.Stats) error {
			return writeBitswap(w, s)
		}),
	},
}

func writeBitswap(w io.Writer, s *exchange.Stats) error {
	fmt.Fprintf(w, "Adaptive Bitswap: load %.2f (pressure %d, full load at %d queued)\n\n",
		s.Load, s.Pressure, s.GlobalPending)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "class\tpeers\tqueued\tadmitted\tshed\tsent\tshare%\trate/s\tpend\tglobal\t")
	for _, c := range s.Classes {
		var shed uint64
		for _, v := range c.Shed {
			shed += v
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", c.Class, c.Peers, c.Pending,
			c.Accepted, shed, c.Served, c.MinSharePct, limit(c.PeerRate), limit(c.PeerPending), c.Global.Name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nShed (breaker/overload/backlog):")
	for _, c := range s.Classes {
		fmt.Fprintf(w, " %s %d/%d/%d", c.Class, c.Shed["breaker"], c.Shed["overload"], c.Shed["backlog"])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Peer breakers: %s\n", counts(s.BreakerPeers))
	fmt.Fprintf(w, "Trips: %s; malformed wantlists %d\n", counts(s.Trips), s.Malformed)
	fmt.Fprintf(w, "Held wantlists: %d, dropped with the breaker still open: %d\n", s.Held, s.Dropped)
	fmt.Fprintf(w, "Slow peers kept out of the good class: %d\n", s.SlowPeers)
	if s.OutstandingCap > 0 {
		fmt.Fprintf(w, "Outstanding cap %d bytes/peer: %d peers at it now, %d orderings by it\n",
			s.OutstandingCap, s.PeersAtCap, s.CapOrdered)
	}
	fmt.Fprintf(w, "Transitions: peer %s; global %s\n", counts(s.PeerTransitions), counts(s.GlobalTransitions))
	if p := s.Prefetch; p != nil {
		fmt.Fprintf(w, "Prefetch (width %d): requested %d, served %d, stored ahead %d, failed %d, unused %d, nodes looked ahead at %d; %s held or in flight now (at most %s)\n",
			p.Width, p.Requested, p.Served, p.Stored, p.Failed, p.Unused, p.LookedAhead, humanize.IBytes(uint64(max(p.Bytes, 0))), humanize.IBytes(uint64(p.MaxBytes)))
		d := p.Direct
		fmt.Fprintf(w, "Wants sent direct (prefetch, reader runs, first HAVEs): %d in %d messages; answered by %d blocks, %d DONT_HAVEs; %d timed out, %d not sent; %d out now; past a peer's window, %d sent to another peer and %d left to Bitswap's session\n",
			d.Sent, d.Messages, d.Blocks, d.DontHaves, d.Timeouts, d.Failed, d.Waiting, d.Redirected, d.Spilled)
	}
	if len(s.Peers) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nPriority peers and peers being shed:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range s.Peers {
		fmt.Fprintf(tw, "  %s\t%s\t%s\tqueued %d\trequested %d\tdenied %d\t%d/s\n", short(p.ID), p.Class,
			p.Breaker.Name, p.Pending, p.Requested, p.Denied, p.RatePerSec)
	}
	return tw.Flush()
}

func limit(n int64) string {
	if n <= 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func counts[V int | uint64](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %d", k, m[k])
	}
	return out
}

func short(id string) string {
	if len(id) > 16 {
		return id[:6] + ".." + id[len(id)-6:]
	}
	return id
}
