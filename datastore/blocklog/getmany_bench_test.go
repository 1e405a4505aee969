package blocklog

import (
	"math/rand/v2"
	"testing"

	ds "github.com/ipfs/go-datastore"
	"golang.org/x/sys/unix"
)

// BenchmarkReadMany reads 8,192 16 KiB blocks (128 MiB, written by 8
// concurrent writers as a fetch would), one Get per key against GetMany in
// chunks of 256 keys. "random" asks for the keys in a random order, "dag"
// in the order they were written (a DAG read back as it was fetched), in
// chunks whose keys are shuffled. "cold" first drops the log's pages from
// the page cache (posix_fadvise on its own files only).
//
//	go test -run '^$' -bench ReadMany -benchtime 3x ./datastore/blocklog/
func BenchmarkReadMany(b *testing.B) {
	dir := b.TempDir()
	d, err := Open(dir, Options{CompactInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	const n = 8192
	keys := make([]ds.Key, n)
	for i := range keys {
		keys[i] = key(i)
	}
	v := val(1, 16<<10)
	done := make(chan struct{})
	for w := range 8 {
		go func() {
			for i := w; i < n; i += 8 {
				if err := d.Put(ctx, keys[i], v); err != nil {
					b.Error(err)
				}
			}
			done <- struct{}{}
		}()
	}
	for range 8 {
		<-done
	}
	d.Sync(ctx, ds.NewKey("/"))
	random := append([]ds.Key(nil), keys...)
	rand.Shuffle(n, func(a, c int) { random[a], random[c] = random[c], random[a] })
	dag := append([]ds.Key(nil), keys...)
	for i := 0; i < n; i += 256 {
		c := dag[i : i+256]
		rand.Shuffle(len(c), func(a, b int) { c[a], c[b] = c[b], c[a] })
	}
	drop := func() {
		d.mu.RLock()
		defer d.mu.RUnlock()
		for _, s := range d.segs {
			unix.Fadvise(int(s.f.Fd()), 0, 0, unix.FADV_DONTNEED)
		}
	}
	for _, cache := range []string{"cold", "warm"} {
		for _, mode := range []string{"random/get", "random/getmany", "dag/get", "dag/getmany"} {
			order := random
			if mode[:3] == "dag" {
				order = dag
			}
			b.Run(cache+"/"+mode, func(b *testing.B) {
				for range b.N {
					if cache == "cold" {
						b.StopTimer()
						drop()
						b.StartTimer()
					}
					got := 0
					if mode[len(mode)-4:] == "/get" {
						for _, k := range order {
							if _, err := d.Get(ctx, k); err == nil {
								got++
							}
						}
					} else {
						for i := 0; i < n; i += 256 {
							d.GetMany(ctx, order[i:i+256], func(_ int, _ []byte, err error) {
								if err == nil {
									got++
								}
							})
						}
					}
					if got != n {
						b.Fatalf("read %d of %d", got, n)
					}
				}
				b.SetBytes(n * 16 << 10)
			})
		}
	}
}
