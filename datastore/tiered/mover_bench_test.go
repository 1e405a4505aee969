package tiered

import (
	"context"
	"fmt"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	flatfs "github.com/ipfs/go-ds-flatfs"
)

// BenchmarkMoverDemote demotes about 1,000 16 KiB blocks from a flatfs
// sync=true tier to another (Settle, no rate limit), in batches of 32 keys
// (the mover) and of one key (as before batching). It reports blocks/s.
//
//	go test -run '^$' -bench MoverDemote -benchtime 1x -count 3 ./datastore/tiered/
func BenchmarkMoverDemote(b *testing.B) {
	for _, batch := range []int{32, 1} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			old := moveBatchKeys
			moveBatchKeys = batch
			defer func() { moveBatchKeys = old }()
			ctx := context.Background()
			for range b.N {
				b.StopTimer()
				open := func(dir string) ds.Datastore {
					f, err := flatfs.CreateOrOpen(dir, flatfs.NextToLast(2), true)
					if err != nil {
						b.Fatal(err)
					}
					return f
				}
				d, err := Open(ctx, Options{
					Tiers: []Tier{{Name: "fast", Child: open(b.TempDir()), Capacity: 4 << 20},
						{Name: "slow", Child: open(b.TempDir())}},
					MoverInterval: time.Hour, CompressThreshold: -1,
				})
				if err != nil {
					b.Fatal(err)
				}
				for i := range 1200 {
					if err := d.Put(ctx, ds.NewKey(fmt.Sprintf("/CIQ%052d", i)), randBytes(16<<10)); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				t0 := time.Now()
				if err := d.Settle(ctx); err != nil {
					b.Fatal(err)
				}
				el := time.Since(t0)
				b.StopTimer()
				n := d.demotions.Load()
				if n < 500 {
					b.Fatalf("%d demotions", n)
				}
				b.ReportMetric(float64(n)/el.Seconds(), "blocks/s")
				d.Close()
			}
		})
	}
}
