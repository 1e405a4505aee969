package plugin

import (
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/kubo/core"

	"github.com/kubo-highload/highload/autotune"
	"github.com/kubo-highload/highload/health"
)

// seriesLen is how many samples of each metric the advisor keeps: 10
// minutes at the default 5s interval.
const seriesLen = 120

var (
	seriesMu sync.Mutex
	series   = map[string][]autotune.Point{}
)

// Series names the advisor records from each health sample.
const (
	seriesRSS        = "rss_bytes"
	seriesHeap       = "go_heap_live_bytes"
	seriesGoroutines = "goroutines"
	seriesFDs        = "open_fds"
	seriesCPU        = "process_cpu_cores"
	seriesSent       = "bitswap_blocks_sent_total"
	seriesDataSent   = "bitswap_data_sent_bytes_total"
	seriesDup        = "bitswap_dup_blocks_received_total"
	seriesDiskFree   = "disk_free_bytes:" // + path
)

// recordSeries appends one health sample (and Bitswap's counters, when the
// node has Bitswap) to the advisor's series. It runs on the monitor's loop.
func recordSeries(n *core.IpfsNode, s health.Snapshot) {
	t := s.Time
	add := func(name string, v float64) {
		ps := append(series[name], autotune.Point{T: t, V: v})
		if len(ps) > seriesLen {
			ps = ps[len(ps)-seriesLen:]
		}
		series[name] = ps
	}
	seriesMu.Lock()
	defer seriesMu.Unlock()
	if _, ok := s.Unknown[health.ReadRSS]; !ok {
		add(seriesRSS, float64(s.RSS))
	}
	if _, ok := s.Unknown[health.ReadGoRuntime]; !ok {
		add(seriesHeap, float64(s.HeapLive))
		add(seriesGoroutines, float64(s.Goroutines))
	}
	if _, ok := s.Unknown[health.ReadFDs]; !ok {
		add(seriesFDs, float64(s.FDs))
	}
	if _, ok := s.Unknown[health.ReadProcessCPU]; !ok {
		add(seriesCPU, s.ProcessCPU)
	}
	for _, d := range s.Disks {
		add(seriesDiskFree+d.Path, float64(d.Free))
	}
	if n != nil && n.Bitswap != nil {
		if st, err := n.Bitswap.Stat(); err == nil {
			add(seriesSent, float64(st.BlocksSent))
			add(seriesDataSent, float64(st.DataSent))
			add(seriesDup, float64(st.DupBlksReceived))
		}
	}
}

// adviceRules says what each recorded series means and what to change.
func adviceRules(s health.Snapshot) []autotune.Rule {
	rules := []autotune.Rule{
		{Metric: seriesRSS, What: "resident memory (bytes)", Bad: autotune.BadWhenHigh, MinDelta: 64 << 20,
			Advice: "set Config.Health.MemoryBudget so pressure levels engage before the host runs out; lower Config.Bitswap.MaxOutstandingBytesPerPeer"},
		{Metric: seriesHeap, What: "Go heap in use (bytes)", Bad: autotune.BadWhenHigh, MinDelta: 64 << 20,
			Advice: "lower Config.Bitswap.MaxOutstandingBytesPerPeer and Config.Bitswap.EngineBlockstoreWorkerCount; enable Config.AutoTune to trade GC CPU for memory"},
		{Metric: seriesGoroutines, What: "goroutines", Bad: autotune.BadWhenHigh, MinDelta: 500,
			Advice: "lower Config.Bitswap.EngineBlockstoreWorkerCount and Swarm.ConnMgr.HighWater"},
		{Metric: seriesFDs, What: "open file descriptors", Bad: autotune.BadWhenHigh, MinDelta: 100,
			Advice: "raise the fd limit (IPFS_FD_MAX or ulimit -n) or lower Swarm.ConnMgr.HighWater"},
		{Metric: seriesCPU, What: "CPU used by the daemon (cores)", Bad: autotune.BadWhenHigh, MinDelta: 0.25,
			Advice: "lower Config.Bitswap.TaskWorkerCount and Config.Bitswap.EngineTaskWorkerCount, or give the daemon more cores"},
		{Metric: seriesSent, What: "Bitswap blocks sent per second", Counter: true, Bad: autotune.BadWhenLow, MinDelta: 10,
			Advice: "if peers still want blocks, raise Config.Bitswap.EngineBlockstoreWorkerCount and check the datastore's disk"},
		{Metric: seriesDup, What: "duplicate blocks received per second", Counter: true, Bad: autotune.BadWhenHigh, MinDelta: 5,
			Advice: "duplicates waste bandwidth: keep Internal.Bitswap.BroadcastControl enabled and lower its MaxPeers"},
	}
	if s.FDLimit > 0 {
		rules[3].Limit = 0.9 * float64(s.FDLimit)
	}
	for _, d := range s.Disks {
		r := autotune.Rule{Metric: seriesDiskFree + d.Path, What: "free space on " + d.Path + " (bytes)",
			Bad: autotune.BadWhenLow, MinDelta: 1 << 30, Advice: "run `ipfs repo gc`, lower Datastore.StorageMax, or move " + d.Path + " to a larger disk"}
		if d.Total > 0 {
			r.Limit = 0.05 * float64(d.Total)
		}
		rules = append(rules, r)
	}
	return rules
}

// adviseReport runs the analyzer over the recorded series.
func adviseReport() autotune.Report {
	m := currentMonitor()
	if m == nil {
		return autotune.Report{Note: "the resource monitor is not running (Config.Health.Enabled is false)"}
	}
	snap := m.Snapshot()
	seriesMu.Lock()
	copied := make(map[string][]autotune.Point, len(series))
	points := 0
	var since time.Time
	for k, v := range series {
		copied[k] = append([]autotune.Point(nil), v...)
		points = max(points, len(v))
		if len(v) > 0 && (since.IsZero() || v[0].T.Before(since)) {
			since = v[0].T
		}
	}
	seriesMu.Unlock()
	rep := autotune.Report{Series: len(copied), Points: points, Since: since,
		Findings: autotune.Analyzer{Rules: adviceRules(snap)}.Analyze(copied)}
	for _, w := range snap.Warnings {
		rep.Findings = append(rep.Findings, autotune.Finding{Metric: "health:" + w.Resource, What: w.Resource,
			Kind: "limit", Message: w.Message, Advice: healthAdvice(w.Resource)})
	}
	if points < 8 {
		rep.Note = fmt.Sprintf("only %d samples so far; trends and anomalies need 8", points)
	}
	return rep
}

// healthAdvice is the advice for a monitor warning on resource r.
func healthAdvice(r string) string {
	switch {
	case len(r) >= 6 && r[:6] == "memory", r == health.ReadCgroup, r == health.ReadSystemMem:
		return "raise Config.Health.MemoryBudget or the container's memory, or lower Config.Bitswap.MaxOutstandingBytesPerPeer"
	case len(r) >= 3 && r[:3] == "fds":
		return "raise the fd limit (IPFS_FD_MAX or ulimit -n) or lower Swarm.ConnMgr.HighWater"
	default:
		return "free disk space: `ipfs repo gc`, lower Datastore.StorageMax, or use a larger disk"
	}
}
