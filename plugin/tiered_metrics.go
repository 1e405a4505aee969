package plugin

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// tieredCollector reports the open tiered store's Stats at scrape time.
type tieredCollector struct{}

var (
	tierLabels       = []string{"tier", "kind"}
	tieredCapacity   = prometheus.NewDesc("highload_tiered_capacity_bytes", "Configured capacity of each tier (0: unbounded).", tierLabels, nil)
	tieredBudget     = prometheus.NewDesc("highload_tiered_budget_bytes", "Current byte budget of each tier (the memory tier shrinks under pressure).", tierLabels, nil)
	tieredUsed       = prometheus.NewDesc("highload_tiered_used_bytes", "Bytes held by each tier.", tierLabels, nil)
	tieredBlocks     = prometheus.NewDesc("highload_tiered_blocks", "Values held by each tier.", tierLabels, nil)
	tieredHits       = prometheus.NewDesc("highload_tiered_hits_total", "Reads served by each tier.", tierLabels, nil)
	tieredMisses     = prometheus.NewDesc("highload_tiered_misses_total", "Reads that reached a tier and were served below it or not found.", tierLabels, nil)
	tieredPromotions = prometheus.NewDesc("highload_tiered_promotions_total", "Blocks moved into each tier from a slower one.", tierLabels, nil)
	tieredDemotions  = prometheus.NewDesc("highload_tiered_demotions_total", "Blocks moved out of each tier to a slower one.", tierLabels, nil)
	tieredBatches    = prometheus.NewDesc("highload_tiered_commits_total", "Group commits (child batches) per durable tier.", tierLabels, nil)
	tieredBatched    = prometheus.NewDesc("highload_tiered_committed_puts_total", "Puts written by group commits per durable tier.", tierLabels, nil)
	tieredBacklog    = prometheus.NewDesc("highload_tiered_mover_backlog", "Promotions queued for the mover.", nil, nil)
	tieredSaved      = prometheus.NewDesc("highload_tiered_compression_saved_bytes_total", "Bytes saved by zstd compression of values written.", nil, nil)
	tieredCompressed = prometheus.NewDesc("highload_tiered_compressed_values_total", "Values written compressed.", nil, nil)
	tieredIndex      = prometheus.NewDesc("highload_tiered_index_blocks", "Keys in the location index.", nil, nil)
)

// Describe sends the collector's descriptors.
func (tieredCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tieredCapacity, tieredBudget, tieredUsed, tieredBlocks, tieredHits,
		tieredMisses, tieredPromotions, tieredDemotions, tieredBatches, tieredBatched, tieredBacklog,
		tieredSaved, tieredCompressed, tieredIndex} {
		ch <- d
	}
}

// Collect reads the store's Stats.
func (tieredCollector) Collect(ch chan<- prometheus.Metric) {
	d := currentTiered.Load()
	if d == nil {
		return
	}
	s := d.Stats(context.Background())
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	for _, t := range s.Tiers {
		l := []string{t.Name, t.Kind}
		ch <- prometheus.MustNewConstMetric(tieredCapacity, g, float64(t.Capacity), l...)
		ch <- prometheus.MustNewConstMetric(tieredBudget, g, float64(t.Budget), l...)
		ch <- prometheus.MustNewConstMetric(tieredUsed, g, float64(t.Used), l...)
		ch <- prometheus.MustNewConstMetric(tieredBlocks, g, float64(t.Blocks), l...)
		ch <- prometheus.MustNewConstMetric(tieredHits, c, float64(t.Hits), l...)
		ch <- prometheus.MustNewConstMetric(tieredMisses, c, float64(t.Misses), l...)
		ch <- prometheus.MustNewConstMetric(tieredPromotions, c, float64(t.Promotions), l...)
		ch <- prometheus.MustNewConstMetric(tieredDemotions, c, float64(t.Demotions), l...)
		ch <- prometheus.MustNewConstMetric(tieredBatches, c, float64(t.Batches), l...)
		ch <- prometheus.MustNewConstMetric(tieredBatched, c, float64(t.BatchedPuts), l...)
	}
	ch <- prometheus.MustNewConstMetric(tieredBacklog, g, float64(s.MoverBacklog))
	ch <- prometheus.MustNewConstMetric(tieredSaved, c, float64(s.CompressionSavedBytes))
	ch <- prometheus.MustNewConstMetric(tieredCompressed, c, float64(s.CompressedValues))
	ch <- prometheus.MustNewConstMetric(tieredIndex, g, float64(s.IndexedBlocks))
}
