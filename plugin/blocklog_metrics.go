package plugin

import "github.com/prometheus/client_golang/prometheus"

// blocklogCollector reports every open log's Stats at scrape time.
type blocklogCollector struct{}

var (
	blocklogLabels      = []string{"path"}
	blocklogSegments    = prometheus.NewDesc("highload_blocklog_segments", "Segment files of the log.", blocklogLabels, nil)
	blocklogKeys        = prometheus.NewDesc("highload_blocklog_keys", "Keys in the log's index.", blocklogLabels, nil)
	blocklogDisk        = prometheus.NewDesc("highload_blocklog_disk_bytes", "Size of the log's segment files.", blocklogLabels, nil)
	blocklogLive        = prometheus.NewDesc("highload_blocklog_live_bytes", "Bytes of the records the index points at.", blocklogLabels, nil)
	blocklogGarbage     = prometheus.NewDesc("highload_blocklog_garbage_bytes", "Bytes of overwritten and deleted records, tombstones and commit records.", blocklogLabels, nil)
	blocklogGroups      = prometheus.NewDesc("highload_blocklog_group_commits_total", "Group commits (one write call each).", blocklogLabels, nil)
	blocklogGrouped     = prometheus.NewDesc("highload_blocklog_grouped_records_total", "Records written by group commits.", blocklogLabels, nil)
	blocklogSyncs       = prometheus.NewDesc("highload_blocklog_fsyncs_total", "fsyncs of the active segment.", blocklogLabels, nil)
	blocklogSyncTime    = prometheus.NewDesc("highload_blocklog_fsync_seconds_total", "Time spent flushing group commits of the active segment.", blocklogLabels, nil)
	blocklogInPlace     = prometheus.NewDesc("highload_blocklog_inplace_groups_total", "Group commits written into the active segment's zero-filled, synced tail.", blocklogLabels, nil)
	blocklogCompactions = prometheus.NewDesc("highload_blocklog_compactions_total", "Segments rewritten or removed by compaction.", blocklogLabels, nil)
	blocklogReclaimed   = prometheus.NewDesc("highload_blocklog_compacted_bytes_total", "Bytes compaction freed.", blocklogLabels, nil)
)

// Describe sends the collector's descriptors.
func (blocklogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{blocklogSegments, blocklogKeys, blocklogDisk, blocklogLive, blocklogGarbage,
		blocklogGroups, blocklogGrouped, blocklogSyncs, blocklogSyncTime, blocklogInPlace, blocklogCompactions, blocklogReclaimed} {
		ch <- d
	}
}

// Collect reads each open log's Stats.
func (blocklogCollector) Collect(ch chan<- prometheus.Metric) {
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	for _, b := range blocklogStats() {
		s := b.Stats
		ch <- prometheus.MustNewConstMetric(blocklogSegments, g, float64(s.Segments), b.Path)
		ch <- prometheus.MustNewConstMetric(blocklogKeys, g, float64(s.Keys), b.Path)
		ch <- prometheus.MustNewConstMetric(blocklogDisk, g, float64(s.DiskBytes), b.Path)
		ch <- prometheus.MustNewConstMetric(blocklogLive, g, float64(s.LiveBytes), b.Path)
		ch <- prometheus.MustNewConstMetric(blocklogGarbage, g, float64(s.GarbageBytes), b.Path)
		ch <- prometheus.MustNewConstMetric(blocklogGroups, c, float64(s.Groups), b.Path)
		ch <- prometheus.MustNewConstMetric(blocklogGrouped, c, float64(s.GroupedOps), b.Path)
		ch <- prometheus.MustNewConstMetric(blocklogSyncs, c, float64(s.Syncs), b.Path)
		ch <- prometheus.MustNewConstMetric(blocklogSyncTime, c, s.SyncTime.Seconds(), b.Path)
		ch <- prometheus.MustNewConstMetric(blocklogInPlace, c, float64(s.InPlaceGroups), b.Path)
		ch <- prometheus.MustNewConstMetric(blocklogCompactions, c, float64(s.Compactions), b.Path)
		ch <- prometheus.MustNewConstMetric(blocklogReclaimed, c, float64(s.CompactedBytes), b.Path)
	}
}
