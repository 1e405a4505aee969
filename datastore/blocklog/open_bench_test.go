package blocklog

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// BenchmarkOpen1M measures Open on a log of one million 1 KiB blocks with
// Kubo-sized keys (1.1 GiB in 256 MiB segments): once with the hint files
// the store writes when it seals segments, once with them removed, so Open
// scans every segment. Run it with -benchtime=1x; it reports the open time
// per variant (the page cache is warm: the log was just written).
func BenchmarkOpen1M(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	d, err := Open(dir, Options{CompactInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	v := make([]byte, 1024)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if err := d.Put(ctx, key(i).ChildString("CIQ0123456789012345678901234567890123456789012"), v); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	d.Close()
	for _, variant := range []string{"hints", "scan"} {
		if variant == "scan" {
			hints, _ := filepath.Glob(filepath.Join(dir, "*.hint"))
			for _, h := range hints {
				os.Remove(h)
			}
		}
		b.Run(variant, func(b *testing.B) {
			for range b.N {
				d, err := Open(dir, Options{CompactInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				st := d.Stats()
				if st.Keys != n {
					b.Fatalf("%d keys", st.Keys)
				}
				b.ReportMetric(st.OpenTime.Seconds(), "open-s")
				fmt.Fprintf(os.Stderr, "open (%s): %d keys, %d segments, %.0f MiB, %s\n", variant, st.Keys, st.Segments, float64(st.DiskBytes)/(1<<20), st.OpenTime)
				if variant == "scan" {
					// Do not let the background hint writer recreate the hints
					// for the next iteration.
					d.Close()
					hints, _ := filepath.Glob(filepath.Join(dir, "*.hint"))
					for _, h := range hints {
						os.Remove(h)
					}
					continue
				}
				d.Close()
			}
		})
	}
}
