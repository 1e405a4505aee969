package commands

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	cmds "github.com/ipfs/go-ipfs-cmds"

	"github.com/kubo-highload/highload/connmgr"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

// ConnMgrCmd is `ipfs stats highload connmgr`.
var ConnMgrCmd = &cmds.Command{
	Helptext: cmds.HelpText{
		Tagline: "Show the adaptive connection manager's live state.",
		ShortDescription: `
'ipfs stats highload connmgr' prints the live watermarks and grace period,
why they last changed, the connection count, trims, protected and pool peers
and the best and worst connection quality scores. It needs a running online
daemon whose host uses the adaptive manager.
`,
	},
	Run: func(req *cmds.Request, res cmds.ResponseEmitter, env cmds.Environment) error {
		f, ok := hlstate.Live("connmgr")
		if !ok {
			return errors.New("highload: the adaptive connection manager is not running here " +
				"(no online daemon, Config.ConnMgr.Enabled false, or Swarm.ConnMgr.Type \"none\")")
		}
		s, ok := f().(connmgr.Stats)
		if !ok {
			return errors.New("highload: connmgr published an unexpected live view")
		}
		return cmds.EmitOnce(res, &s)
	},
	Type: connmgr.Stats{},
	Encoders: cmds.EncoderMap{
		cmds.Text: cmds.MakeTypedEncoder(func(req *cmds.Request, w io.Writer, s *connmgr.Stats) error {
			return writeConnMgr(w, s)
		}),
	},
}

func init() { addSubcommand("connmgr", ConnMgrCmd) }

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func writeConnMgr(w io.Writer, s *connmgr.Stats) error {
	b := s.Bounds
	limit := "none"
	if s.Limit > 0 {
		limit = fmt.Sprint(s.Limit)
	}
	fmt.Fprintf(w, "Watermarks:   low %d, high %d (bounds %d-%d, configured %d/%d)\n",
		s.LowWater, s.HighWater, b.MinHighWater, b.MaxHighWater, b.BaseLowWater, b.BaseHighWater)
	fmt.Fprintf(w, "Grace period: %s (bounds %s-%s)\n", s.GracePeriod, b.MinGracePeriod, b.MaxGracePeriod)
	fmt.Fprintf(w, "rcmgr limit:  %s\n", limit)
	fmt.Fprintf(w, "Last change:  %s (%s, %d changes)\n", s.Reason, ago(s.Changed), s.Changes)
	fmt.Fprintf(w, "Load:         pressure %d, churn %.1f conn/s\n", s.Pressure, s.Churn)
	fmt.Fprintf(w, "Connections:  %d to %d peers (%d slow); %d opened, %d closed\n",
		s.Conns, s.Peers, s.Slow, s.Connects, s.Disconnects)
	draining := ""
	if s.Draining {
		draining = ", draining to LowWater"
	}
	fmt.Fprintf(w, "Trims:        %d rounds closed %d connections, last %s%s\n",
		s.TrimRounds, s.Trimmed, ago(s.LastTrim), draining)
	fmt.Fprintf(w, "Streams:      %d resets, %d errors (yamux connections)\n", s.StreamResets, s.StreamErrors)
	if s.TrimmedProtected > 0 {
		fmt.Fprintf(w, "              %d of them of protected peers (a Protect raced a trim)\n", s.TrimmedProtected)
	}
	if t := s.TLSWrites; t != nil {
		fmt.Fprintf(w, "TLS writes:   %d records in %d write syscalls, %d bytes\n", t.Records, t.Writes, t.Bytes)
	}
	if c := s.Cluster; c != nil {
		fmt.Fprintf(w, "Cluster:      %s: %d Kubo nodes from %d cluster peers (%d skipped)\n",
			c.URL, c.Peers, c.ClusterPeers, c.Skipped)
		fmt.Fprintf(w, "              %d reads, %d failed, last %s, last good %s\n",
			c.Refreshes, c.Failures, ago(c.LastRefresh), ago(c.LastSuccess))
		if c.LastError != "" {
			fmt.Fprintf(w, "              error: %s\n", c.LastError)
		}
	}
	fmt.Fprintf(w, "\nProtected peers (%d):\n", len(s.Protected))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range s.Protected {
		state := "disconnected"
		if p.Connected {
			state = "connected"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%v\n", p.ID, state, p.Tags)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.Pool) > 0 {
		fmt.Fprintf(w, "\nPool (%d):\n", len(s.Pool))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, p := range s.Pool {
			state := "connected"
			if !p.Connected {
				state = fmt.Sprintf("down, %d failures, next dial in %s", p.Failures,
					time.Until(p.NextDial).Round(time.Millisecond))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\trtt %s\tlost %d\treconnects %d\tyielded %d\tfailed dials %d\t%s\n",
				p.ID, p.Source, state, p.RTT, p.Losses, p.Reconnects, p.Yields, p.FailedDials, p.LastError)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, part := range []struct {
		name string
		qs   []connmgr.Quality
	}{{"Best", s.Best}, {"Worst", s.Worst}} {
		fmt.Fprintf(w, "\n%s scores:\n", part.name)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, q := range part.qs {
			slow := ""
			if q.Slow {
				slow = " slow"
			}
			fmt.Fprintf(tw, "  %s\t%.1f\tvalue %d\tlatency %s\tstreams %d\terrors %.1f\tresets %.1f%s\n",
				q.Peer, q.Score, q.Value, q.Latency, q.Streams, q.StreamErrors, q.StreamResets, slow)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
