package exchange

import "github.com/prometheus/client_golang/prometheus"

var (
	queueDesc = prometheus.NewDesc("highload_bitswap_queue_entries",
		"Estimated entries queued by the Bitswap server, per request class.", []string{"class"}, nil)
	peersDesc = prometheus.NewDesc("highload_bitswap_peers",
		"Known peers per request class.", []string{"class"}, nil)
	acceptedDesc = prometheus.NewDesc("highload_bitswap_accepted_requests_total",
		"Wants admitted by the policy's filter, per class.", []string{"class"}, nil)
	servedDesc = prometheus.NewDesc("highload_bitswap_served_entries_total",
		"Blocks and block presences sent, per class.", []string{"class"}, nil)
	shedDesc = prometheus.NewDesc("highload_bitswap_shed_requests_total",
		"Wants answered DONT_HAVE by the policy, per class and reason.", []string{"class", "reason"}, nil)
	activeDesc = prometheus.NewDesc("highload_bitswap_active_peers",
		"Peers with entries queued, per class.", []string{"class"}, nil)
	rateDesc = prometheus.NewDesc("highload_bitswap_limit_peer_rate_entries_per_second",
		"Live per-peer want rate limit per class (0: none).", []string{"class"}, nil)
	pendLimDesc = prometheus.NewDesc("highload_bitswap_limit_peer_pending_entries",
		"Live per-peer pending-entries limit per class (0: none).", []string{"class"}, nil)
	loadDesc = prometheus.NewDesc("highload_bitswap_load_ratio",
		"Queued entries over the full-load mark, raised by pressure.", nil, nil)
	brPeersDesc = prometheus.NewDesc("highload_bitswap_breaker_peers",
		"Peers whose breaker is in each state.", []string{"state"}, nil)
	globalDesc = prometheus.NewDesc("highload_bitswap_global_breaker_state",
		"1 for the state each class's global breaker is in.", []string{"class", "state"}, nil)
	transDesc = prometheus.NewDesc("highload_bitswap_breaker_transitions_total",
		"Breaker state changes, per scope (peer or global).", []string{"scope", "transition"}, nil)
	tripsDesc = prometheus.NewDesc("highload_bitswap_breaker_trips_total",
		"Peer breaker trips by fault.", []string{"fault"}, nil)
	malformedDesc = prometheus.NewDesc("highload_bitswap_malformed_messages_total",
		"Malformed or oversized wantlists received.", nil, nil)
	heldDesc = prometheus.NewDesc("highload_bitswap_held_messages_total",
		"Wantlists of peers with an open breaker held back before the server handled them.", nil, nil)
	droppedDesc = prometheus.NewDesc("highload_bitswap_dropped_messages_total",
		"Held wantlists dropped unanswered because the peer's breaker was still open after the hold.", nil, nil)
)

// Collector reports a policy's [Stats] as highload_bitswap_* metrics at
// scrape time. The caller registers it.
type Collector struct {
	stats func() Stats
}

// NewCollector returns a collector over stats (usually Policy.Stats; a
// function so the caller may swap policies).
func NewCollector(stats func() Stats) *Collector { return &Collector{stats: stats} }

// Describe sends the collector's descriptors.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueDesc, peersDesc, acceptedDesc, servedDesc, shedDesc, activeDesc,
		rateDesc, pendLimDesc, loadDesc, brPeersDesc, globalDesc, transDesc, tripsDesc, malformedDesc, heldDesc, droppedDesc} {
		ch <- d
	}
}

// Collect sends the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	g, cnt := prometheus.GaugeValue, prometheus.CounterValue
	for _, cs := range s.Classes {
		ch <- prometheus.MustNewConstMetric(queueDesc, g, float64(cs.Pending), cs.Class)
		ch <- prometheus.MustNewConstMetric(peersDesc, g, float64(cs.Peers), cs.Class)
		ch <- prometheus.MustNewConstMetric(acceptedDesc, cnt, float64(cs.Accepted), cs.Class)
		ch <- prometheus.MustNewConstMetric(servedDesc, cnt, float64(cs.Served), cs.Class)
		for r := Reason(0); r < numReasons; r++ {
			ch <- prometheus.MustNewConstMetric(shedDesc, cnt, float64(cs.Shed[r.String()]), cs.Class, r.String())
		}
		ch <- prometheus.MustNewConstMetric(activeDesc, g, float64(cs.ActivePeers), cs.Class)
		ch <- prometheus.MustNewConstMetric(rateDesc, g, float64(cs.PeerRate), cs.Class)
		ch <- prometheus.MustNewConstMetric(pendLimDesc, g, float64(cs.PeerPending), cs.Class)
		for st := State(0); st < numStates; st++ {
			ch <- prometheus.MustNewConstMetric(globalDesc, g, b2f(cs.Global.State == st), cs.Class, st.String())
		}
	}
	ch <- prometheus.MustNewConstMetric(loadDesc, g, s.Load)
	for st := State(0); st < numStates; st++ {
		ch <- prometheus.MustNewConstMetric(brPeersDesc, g, float64(s.BreakerPeers[st.String()]), st.String())
	}
	for k, v := range s.PeerTransitions {
		ch <- prometheus.MustNewConstMetric(transDesc, cnt, float64(v), "peer", k)
	}
	for k, v := range s.GlobalTransitions {
		ch <- prometheus.MustNewConstMetric(transDesc, cnt, float64(v), "global", k)
	}
	for f := Fault(0); f < numFaults; f++ {
		ch <- prometheus.MustNewConstMetric(tripsDesc, cnt, float64(s.Trips[f.String()]), f.String())
	}
	ch <- prometheus.MustNewConstMetric(malformedDesc, cnt, float64(s.Malformed))
	ch <- prometheus.MustNewConstMetric(heldDesc, cnt, float64(s.Held))
	ch <- prometheus.MustNewConstMetric(droppedDesc, cnt, float64(s.Dropped))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
