package tiered

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
)

// BenchmarkMemoryHit: parallel Gets of 4 KiB blocks that are all in the
// memory tier (the hot part of W6's Zipf reads), with the default coarse
// clock and with time.Now read on every Get.
//
//	go test -run '^$' -bench MemoryHit -count 5 ./datastore/tiered/
func BenchmarkMemoryHit(b *testing.B) {
	for _, c := range []struct {
		name  string
		clock func() time.Time
	}{{"coarse-clock", nil}, {"time.Now", time.Now}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			d, err := Open(ctx, Options{MemoryCapacity: 256 << 20, Tiers: []Tier{{Name: "m", Child: memChild()}},
				MoverInterval: time.Hour, MemoryAdmitReads: 1, Clock: c.clock})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			keys := make([]ds.Key, 4096)
			for i := range keys {
				keys[i] = ds.NewKey(fmt.Sprintf("/CIQ%052d", i))
				d.Put(ctx, keys[i], make([]byte, 4096))
				d.Get(ctx, keys[i])
			}
			var n atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(n.Add(1)) * 997
				for pb.Next() {
					if _, err := d.Get(ctx, keys[i%len(keys)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			if h, _ := d.mem.hits.Load(), 0; h == 0 {
				b.Fatal("no memory-tier hits")
			}
		})
	}
}
