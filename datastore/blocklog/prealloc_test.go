package blocklog

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// waitPrealloc polls until the active segment has a zero-filled, synced
// tail of at least n bytes beyond its last record.
func waitPrealloc(t *testing.T, d *Datastore, n int64) {
	t.Helper()
	for i := 0; ; i++ {
		a := d.active
		a.zmu.Lock()
		ok := a.durable-a.size.Load() >= n
		a.zmu.Unlock()
		if ok {
			return
		}
		if i == 1000 {
			t.Fatalf("active segment not zero-filled ahead: %+v", d.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPreallocZeroTailIsCleanEnd: with Sync the active segment is filled
// with zeros ahead of the writes, later groups are written into that tail,
// and a reopen takes the zeros after the last record as the log's end:
// nothing is truncated, every write is there, and writing goes on.
func TestPreallocZeroTailIsCleanEnd(t *testing.T) {
	dir := t.TempDir()
	o := Options{Sync: true, SegmentSize: 8 << 20}
	d := open(t, dir, o)
	waitPrealloc(t, d, 1<<20)
	for i := range 50 {
		if err := d.Put(ctx, key(i), val(i, 3000)); err != nil {
			t.Fatal(err)
		}
	}
	st := d.Stats()
	if st.InPlaceGroups == 0 || st.PreallocatedBytes == 0 || st.ZeroFilledBytes == 0 {
		t.Fatalf("no group written into the zero-filled tail: %+v", st)
	}
	logical := d.active.size.Load()
	d.Close()
	fi, err := os.Stat(filepath.Join(dir, segName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= logical {
		t.Fatalf("segment file %d bytes, records end at %d: no zero tail", fi.Size(), logical)
	}
	for _, sync := range []bool{true, false} {
		d = open(t, dir, Options{Sync: sync, SegmentSize: 8 << 20})
		if st := d.Stats(); st.TruncatedBytes != 0 || st.DiskBytes != logical {
			t.Fatalf("reopen (sync=%v): truncated %d bytes, disk bytes %d, want 0 and %d", sync, st.TruncatedBytes, st.DiskBytes, logical)
		}
		for i := range 50 {
			mustGet(t, d, key(i), val(i, 3000))
		}
		// The next write lands right after the last record, in the zeros.
		n := 100
		if !sync {
			n = 101
		}
		if err := d.Put(ctx, key(n), val(n, 500)); err != nil {
			t.Fatal(err)
		}
		logical = d.active.size.Load()
		d.Close()
	}
	d = open(t, dir, o)
	defer d.Close()
	for i := range 50 {
		mustGet(t, d, key(i), val(i, 3000))
	}
	mustGet(t, d, key(100), val(100, 500))
	mustGet(t, d, key(101), val(101, 500))
	if d.Stats().TruncatedBytes != 0 {
		t.Fatal("a clean zero tail was truncated")
	}
}

// TestPreallocTornTail: a group that reached the zero-filled tail only in
// part. Whatever landed (a record cut short, a later record whose
// predecessor's bytes are still zeros) is not acknowledged; recovery ends
// the log at the last whole record and truncates the rest, so a stale
// record can never reappear behind later writes of the same length.
func TestPreallocTornTail(t *testing.T) {
	dir := t.TempDir()
	o := Options{Sync: true, SegmentSize: 8 << 20}
	d := open(t, dir, o)
	waitPrealloc(t, d, 1<<20)
	for i := range 10 {
		d.Put(ctx, key(i), val(i, 1000))
	}
	end := d.active.size.Load()
	d.Close()
	seg := filepath.Join(dir, segName(1))
	fi, _ := os.Stat(seg)
	full := fi.Size()
	orig, _ := os.ReadFile(seg)
	rec := appendRecord(nil, kindPut, key(50).String(), val(50, 1000))
	write := func(b []byte, off int64) func() error {
		return func() error {
			f, err := os.OpenFile(seg, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt(b, off)
			return err
		}
	}
	for _, c := range []struct {
		name   string
		mutate func() error
	}{
		// The header and the first half of the value landed, the rest is
		// still zeros: a checksum mismatch.
		{"record cut short", write(rec[:len(rec)/2], end)},
		// The group's first record never landed (zeros), its second did.
		{"second record without the first", write(rec, end+int64(len(rec)))},
		// A single stray byte far into the zeros.
		{"junk in the zeros", write([]byte{1}, full-100)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(seg, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := c.mutate(); err != nil {
				t.Fatal(err)
			}
			d := open(t, dir, o)
			if st := d.Stats(); st.TruncatedBytes != uint64(full-end) {
				t.Fatalf("truncated %d bytes, want the %d after the last record", st.TruncatedBytes, full-end)
			}
			if has, _ := d.Has(ctx, key(50)); has {
				t.Fatal("an unacknowledged record is visible")
			}
			for i := range 10 {
				mustGet(t, d, key(i), val(i, 1000))
			}
			// A write of the same length as the torn record lands where it
			// began; after it the file must hold nothing from before.
			if err := d.Put(ctx, key(51), val(51, 1000)); err != nil {
				t.Fatal(err)
			}
			d.Close()
			d = open(t, dir, o)
			defer d.Close()
			if has, _ := d.Has(ctx, key(50)); has {
				t.Fatal("a stale record reappeared behind a later write")
			}
			mustGet(t, d, key(51), val(51, 1000))
		})
	}
}

// TestPreallocSealedSegmentsExact: sealing cuts the zero-filled tail, so a
// sealed segment ends at its last record and its hint file is used.
func TestPreallocSealedSegmentsExact(t *testing.T) {
	dir := t.TempDir()
	o := Options{Sync: true, SegmentSize: 1 << 20}
	d := open(t, dir, o)
	for i := range 300 {
		if err := d.Put(ctx, key(i), val(i, 8000)); err != nil {
			t.Fatal(err)
		}
	}
	sizes := map[string]int64{}
	d.mu.RLock()
	for _, s := range d.segs {
		if s != d.active {
			sizes[s.path] = s.size.Load()
		}
	}
	d.mu.RUnlock()
	d.Close()
	if len(sizes) < 2 {
		t.Fatalf("%d sealed segments", len(sizes))
	}
	for p, n := range sizes {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != n {
			t.Fatalf("sealed %s is %d bytes, its records end at %d", p, fi.Size(), n)
		}
	}
	d = open(t, dir, o)
	defer d.Close()
	for i := range 300 {
		mustGet(t, d, key(i), val(i, 8000))
	}
}

// TestPreallocOff: NoPreallocate (and sync=false) write no zeros.
func TestPreallocOff(t *testing.T) {
	for _, o := range []Options{{Sync: true, NoPreallocate: true}, {}} {
		dir := t.TempDir()
		d := open(t, dir, o)
		for i := range 20 {
			d.Put(ctx, key(i), val(i, 2000))
		}
		st := d.Stats()
		d.Close()
		fi, _ := os.Stat(filepath.Join(dir, segName(1)))
		if st.ZeroFilledBytes != 0 || st.InPlaceGroups != 0 || fi.Size() != st.DiskBytes {
			t.Fatalf("%+v: zero-filled %d, in place %d, file %d bytes for %d", o, st.ZeroFilledBytes, st.InPlaceGroups, fi.Size(), st.DiskBytes)
		}
	}
}

// TestPreallocPausesForLargeGroups: while recent groups are at least
// PreallocMaxGroup, the zero-filled tail is not extended (at most the chunk
// being written when the average crossed the limit): large groups use up
// the zeros already there, then append, across a segment rotation. Small
// groups bring the average down and the filling resumes. Every write reads
// back after a reopen, with nothing truncated.
func TestPreallocPausesForLargeGroups(t *testing.T) {
	dir := t.TempDir()
	o := Options{Sync: true, SegmentSize: 8 << 20, MaxGroupBytes: 1 << 20, PreallocMaxGroup: 64 << 10}
	d := open(t, dir, o)
	waitPrealloc(t, d, 1<<20)
	if st := d.Stats(); st.ZeroFill != "on" || st.PreallocMaxGroup != 64<<10 {
		t.Fatalf("zero fill %q (limit %d) before any write, want on (65536)", st.ZeroFill, st.PreallocMaxGroup)
	}
	sizes := map[int]int{}
	put := func(i, n int) {
		t.Helper()
		if err := d.Put(ctx, key(i), val(i, n)); err != nil {
			t.Fatal(err)
		}
		sizes[i] = n
	}
	// One 256 KiB put per group: the average passes 64 KiB after a few.
	i := 0
	for ; d.Stats().ZeroFill != "paused"; i++ {
		if i == 50 {
			t.Fatalf("zero fill still on after 50 groups of 256 KiB: %+v", d.Stats())
		}
		put(i, 256<<10)
	}
	z0 := d.Stats().ZeroFilledBytes
	for range 48 { // 12 MiB: past the 4 MiB lead and into a second segment
		put(i, 256<<10)
		i++
	}
	st := d.Stats()
	if grown := st.ZeroFilledBytes - z0; grown > preallocChunk {
		t.Fatalf("paused, yet %d more bytes of zeros were written", grown)
	}
	if st.Segments < 2 || st.ZeroFill != "paused" || st.RecentGroupBytes < 64<<10 {
		t.Fatalf("after 12 MiB of large groups: %d segments, zero fill %q, recent groups %d", st.Segments, st.ZeroFill, st.RecentGroupBytes)
	}
	a := d.active
	a.zmu.Lock()
	zeroed, size := a.zeroed, a.size.Load()
	a.zmu.Unlock()
	if size <= zeroed {
		t.Fatalf("active segment: records end at %d, zeros at %d: the large groups did not append", size, zeroed)
	}
	// Small groups: the average falls below the limit and the tail grows
	// again.
	for n := 0; d.Stats().ZeroFill != "on"; n++ {
		if n == 200 {
			t.Fatalf("zero fill not back on after 200 small groups: %+v", d.Stats())
		}
		put(i, 2000)
		i++
	}
	put(i, 2000) // a group after the switch wakes the preallocator
	waitPrealloc(t, d, 1<<20)
	if d.Stats().ZeroFilledBytes <= st.ZeroFilledBytes {
		t.Fatal("zero fill back on, but no zeros written")
	}
	d.Close()
	d = open(t, dir, o)
	defer d.Close()
	for k, n := range sizes {
		mustGet(t, d, key(k), val(k, n))
	}
	if st := d.Stats(); st.TruncatedBytes != 0 || st.Keys != len(sizes) {
		t.Fatalf("reopen: truncated %d bytes, %d keys, want 0 and %d", st.TruncatedBytes, st.Keys, len(sizes))
	}
}

// TestWriteZeros: the preallocator's writes from the shared zero page
// cover exactly the range asked for, whole pages or not.
func TestWriteZeros(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "z"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, 3*preallocChunk)
	for i := range junk {
		junk[i] = 0xa5
	}
	if _, err := f.WriteAt(junk, 0); err != nil {
		t.Fatal(err)
	}
	s := &segment{f: f}
	for _, r := range [][2]int64{{100, 9000}, {8192, 4096}, {20000, 1}, {preallocChunk + 3, preallocChunk}} {
		if err := writeZeros(s, r[0], r[1]); err != nil {
			t.Fatal(err)
		}
		for i := r[0]; i < r[0]+r[1]; i++ {
			junk[i] = 0
		}
	}
	got := make([]byte, len(junk)+10)
	n, _ := f.ReadAt(got, 0)
	if n != len(junk) {
		t.Fatalf("file is %d bytes, want %d", n, len(junk))
	}
	for i := range junk {
		if got[i] != junk[i] {
			t.Fatalf("byte %d is %#x, want %#x", i, got[i], junk[i])
		}
	}
}

// TestPreallocNeverPausedByDefault: without PreallocMaxGroup large groups
// keep the zero-filled tail growing ahead of them.
func TestPreallocNeverPausedByDefault(t *testing.T) {
	d := open(t, t.TempDir(), Options{Sync: true, SegmentSize: 16 << 20, MaxGroupBytes: 1 << 20})
	defer d.Close()
	waitPrealloc(t, d, 1<<20)
	z0 := d.Stats().ZeroFilledBytes
	for i := range 24 { // 6 MiB: past the 4 MiB lead
		if err := d.Put(ctx, key(i), val(i, 256<<10)); err != nil {
			t.Fatal(err)
		}
	}
	waitPrealloc(t, d, 1<<20)
	if st := d.Stats(); st.ZeroFill != "on" || st.ZeroFilledBytes <= z0 || st.PreallocMaxGroup != 0 {
		t.Fatalf("after 6 MiB of 256 KiB groups: zero fill %q, zeros %d -> %d, limit %d", st.ZeroFill, z0, st.ZeroFilledBytes, st.PreallocMaxGroup)
	}
}
