package plugin

import (
	"context"
	"fmt"
	"sync"

	humanize "github.com/dustin/go-humanize"
	logging "github.com/ipfs/go-log/v2"
	"github.com/ipfs/kubo/core"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubo-highload/highload/health"
	"github.com/kubo-highload/highload/hugepages"
	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

var hugeLog = logging.Logger("highload/hugepages")

// The process-wide heap marker: the heap is the process's, so the first
// daemon node starts it and later nodes share it.
var (
	hugeOnce sync.Once
	hugeHeap *hugepages.Heap
	hugeErr  error
)

func init() {
	registerComponent(component{
		name:  "hugepages",
		order: 11, // after health, whose pressure level turns it off
		init: func(_, r *hlconfig.Config) error {
			if !r.Runtime.HugePages.WithDefault(true) {
				hlstate.SetComponent("hugepages", hlstate.StatusDisabled, "Config.Runtime.HugePages is false")
				return nil
			}
			hlstate.SetComponent("hugepages", hlstate.StatusIdle, "runs in the daemon only")
			return nil
		},
		start: startHugePages,
	})
}

// startHugePages marks the Go heap for huge pages (see package hugepages)
// and turns that off while the pressure level is elevated or critical.
func startHugePages(n *core.IpfsNode, _, r *hlconfig.Config) error {
	if !r.Runtime.HugePages.WithDefault(true) {
		return nil
	}
	hugeOnce.Do(func() {
		h := hugepages.NewHeap(int(r.Runtime.HeapReserve.WithDefault(256 << 20)))
		// The marker lives as long as the process: its watcher only reads
		// runtime/metrics, and the heap outlives any one node.
		if err := h.Start(context.Background()); err != nil {
			hugeErr = fmt.Errorf("highload: hugepages: %w", err)
			return
		}
		hugeHeap = h
		onPressure(func(l health.Level) {
			if err := h.SetEnabled(l < health.Elevated); err != nil {
				hugeLog.Warnf("%v", err)
			}
			reportHugePages(h)
		})
		if r.Metrics.Enabled.WithDefault(true) {
			// The heap is marked either way: a collector that cannot be
			// registered costs the metrics, not the component's status.
			if err := registerCollector(hugeCollector{h: h}); err != nil {
				hugeLog.Warnf("highload: hugepages: metrics: %v", err)
			}
		}
	})
	if hugeErr != nil {
		// The daemon runs fine with 4 KiB pages: say why, do not stop it.
		hugeLog.Warnf("%v", hugeErr)
		hlstate.SetComponent("hugepages", hlstate.StatusDisabled, hugeErr.Error())
		return nil
	}
	hlstate.SetLive("hugepages", func() any { return hugeHeap.Status() })
	reportHugePages(hugeHeap)
	hugeLog.Infof("%s", hugeHeap.Status().Detail)
	return nil
}

// reportHugePages puts the marker's state in `ipfs stats highload`.
func reportHugePages(h *hugepages.Heap) {
	s := h.Status()
	status := hlstate.StatusActive
	if !s.Active {
		status = hlstate.StatusIdle
	}
	hlstate.SetComponent("hugepages", status, fmt.Sprintf("THP %s; %s; reserve %s", s.Mode, s.Detail, humanize.IBytes(s.ReserveBytes)))
}

var (
	hugeActiveDesc = prometheus.NewDesc("highload_hugepages_active",
		"1 while the Go heap is marked for transparent huge pages, 0 when not (THP mode always or never, memory pressure, an error).", nil, nil)
	hugeMarkedDesc = prometheus.NewDesc("highload_hugepages_heap_marked_bytes",
		"Size of the Go heap mappings marked at the last pass.", nil, nil)
	hugeAnonDesc = prometheus.NewDesc("highload_hugepages_anon_bytes",
		"The process's anonymous memory backed by huge pages (AnonHugePages of /proc/self/smaps_rollup).", nil, nil)
	hugePassesDesc = prometheus.NewDesc("highload_hugepages_passes_total",
		"Passes that (re)marked the Go heap's mappings: one at start, one per heap growth, one per pressure change.", nil, nil)
)

// hugeCollector reports the heap marker at scrape time.
type hugeCollector struct{ h *hugepages.Heap }

// Describe sends the descriptors.
func (hugeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hugeActiveDesc, hugeMarkedDesc, hugeAnonDesc, hugePassesDesc} {
		ch <- d
	}
}

// Collect reads the marker's status.
func (c hugeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.h.Status()
	active := 0.0
	if s.Active {
		active = 1
	}
	ch <- prometheus.MustNewConstMetric(hugeActiveDesc, prometheus.GaugeValue, active)
	ch <- prometheus.MustNewConstMetric(hugeMarkedDesc, prometheus.GaugeValue, float64(s.MarkedBytes))
	ch <- prometheus.MustNewConstMetric(hugeAnonDesc, prometheus.GaugeValue, float64(s.AnonHugePagesBytes))
	ch <- prometheus.MustNewConstMetric(hugePassesDesc, prometheus.CounterValue, float64(s.Passes))
}
