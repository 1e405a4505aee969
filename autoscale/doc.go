// Package autoscale holds two small helpers that any component (the tiered
// store's movers, Bitswap's batch workers) can use without depending on any
// other component: a worker Pool whose size can be changed while it runs,
// and an Isolator that takes a repeatedly failing part out of service and
// brings it back with exponential backoff.
//
// The Pool's model: a bounded task queue served by N workers; Resize starts
// workers at once and stops surplus workers as they become idle (a worker
// never abandons a task). Its size is a natural autotune knob.
//
// The Isolator's model: a per-name breaker. Threshold consecutive failures
// isolate the name for a backoff that doubles with each isolation in a row
// (up to MaxBackoff); while isolated Allow says no, so callers do not retry
// hot. When the backoff ends one probe is let through: success restores the
// name and resets the backoff, failure isolates it again for longer.
//
//	p := autoscale.NewPool(8, 1024, func(j job) { j.run() })
//	p.Resize(16)
//	iso := autoscale.NewIsolator(autoscale.IsolatorConfig{Threshold: 5})
//	if iso.Allow("slow-tier") { iso.Report("slow-tier", tier.Put(k, v)) }
package autoscale
