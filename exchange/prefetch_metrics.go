package exchange

import "github.com/prometheus/client_golang/prometheus"

var (
	pfWantsDesc = prometheus.NewDesc("highload_bitswap_prefetch_wants_total",
		"Prefetch wants by outcome: requested (asked for ahead of the walker), served (handed to the walker), stored (leaves written ahead), failed (ended without a block), unused (held when the session ended).",
		[]string{"outcome"}, nil)
	pfBytesDesc = prometheus.NewDesc("highload_bitswap_prefetch_bytes",
		"Bytes the prefetch sessions hold and have in flight now.", nil, nil)
	pfMaxBytesDesc = prometheus.NewDesc("highload_bitswap_prefetch_max_bytes",
		"Bound on highload_bitswap_prefetch_bytes for all sessions of the node.", nil, nil)
	directWantsDesc = prometheus.NewDesc("highload_bitswap_direct_wants_total",
		"Want-blocks sent straight to a peer past boxo's session (prefetch wants, a reader's own runs, the first HAVE's want-block), by result: sent, block, dont_have, timeout, not_sent; redirected (sent to another peer than the parent's sender, whose window was full or who was much slower) and spilled (not sent: no peer had room, boxo's session asked instead).",
		[]string{"result"}, nil)
	directMsgsDesc = prometheus.NewDesc("highload_bitswap_direct_messages_total",
		"Messages that carried the direct wants and their cancels.", nil, nil)
	directWaitDesc = prometheus.NewDesc("highload_bitswap_direct_wants_waiting",
		"Direct wants out now (boxo's wantlist does not list them).", nil, nil)
)

// PrefetchCollector reports a prefetching exchange's [PrefetchStats] as
// highload_bitswap_prefetch_* and highload_bitswap_direct_* metrics at
// scrape time. The caller registers it.
type PrefetchCollector struct {
	stats func() (PrefetchStats, bool)
}

// NewPrefetchCollector returns a collector over stats, which reports false
// while the node has no prefetcher (then nothing is reported).
func NewPrefetchCollector(stats func() (PrefetchStats, bool)) *PrefetchCollector {
	return &PrefetchCollector{stats: stats}
}

// Describe sends the collector's descriptors.
func (c *PrefetchCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pfWantsDesc, pfBytesDesc, pfMaxBytesDesc, directWantsDesc, directMsgsDesc, directWaitDesc} {
		ch <- d
	}
}

// Collect sends the current values.
func (c *PrefetchCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.stats()
	if !ok {
		return
	}
	cnt, g := prometheus.CounterValue, prometheus.GaugeValue
	for _, o := range []struct {
		name string
		v    uint64
	}{{"requested", s.Requested}, {"served", s.Served}, {"stored", s.Stored}, {"failed", s.Failed}, {"unused", s.Unused}} {
		ch <- prometheus.MustNewConstMetric(pfWantsDesc, cnt, float64(o.v), o.name)
	}
	ch <- prometheus.MustNewConstMetric(pfBytesDesc, g, float64(max(s.Bytes, 0)))
	ch <- prometheus.MustNewConstMetric(pfMaxBytesDesc, g, float64(s.MaxBytes))
	d := s.Direct
	for _, r := range []struct {
		name string
		v    uint64
	}{{"sent", d.Sent}, {"block", d.Blocks}, {"dont_have", d.DontHaves}, {"timeout", d.Timeouts}, {"not_sent", d.Failed}, {"redirected", d.Redirected}, {"spilled", d.Spilled}} {
		ch <- prometheus.MustNewConstMetric(directWantsDesc, cnt, float64(r.v), r.name)
	}
	ch <- prometheus.MustNewConstMetric(directMsgsDesc, cnt, float64(d.Messages))
	ch <- prometheus.MustNewConstMetric(directWaitDesc, g, float64(d.Waiting))
}
