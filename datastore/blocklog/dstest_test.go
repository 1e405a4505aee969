package blocklog

import (
	"testing"

	dstest "github.com/ipfs/go-datastore/test"
)

// TestSuite runs go-datastore's conformance suite (queries with prefixes,
// filters, orders, offsets and limits, batches, GetSize, ...) on the log.
func TestSuite(t *testing.T) {
	d := open(t, t.TempDir(), Options{SegmentSize: 1 << 20})
	defer d.Close()
	dstest.SubtestAll(t, d)
}
