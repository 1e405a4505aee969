package blocklog

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"
)

// With Options.Sync every group commit ends in a flush of the active
// segment. A flush after an append must also commit the file's new size and
// the blocks just allocated for it: on ext4 a journal commit, a second
// device write and cache flush behind the data's. Databases avoid that in
// their write-ahead logs by writing into space that is already allocated
// and zeroed, and flushing with fdatasync, which then has only data to
// write. The preallocator does the same: it keeps the active segment filled
// with written zeros (not fallocate's unwritten extents, whose conversion
// is again a metadata change), fdatasynced, some way ahead of the
// committer's position. A group that lands below that point is made durable
// by an fdatasync that writes its pages and flushes the device cache.
//
// fdatasync is correct wherever the group lands: it flushes whatever
// metadata is needed to read the data back (a new size, new blocks). The
// zero-filled tail only makes it cheaper. What must change is recovery: a
// segment's file may end in zeros past its last record. An all-zero record
// header is never valid (kind 0 does not exist), so a scan stops there; if
// every byte from that point to the end of the file is zero, that is the
// clean end of the log and the zeros stay for later groups. Anything else
// after the last valid record (a torn group, junk) is truncated away as
// before, so no stale record can reappear behind later writes.
//
// Sealing a segment truncates its zero tail first, so sealed segments,
// their hint files and compaction see exact sizes.
//
// The zeros pay most for small groups. A group's flush costs a device
// write of its pages, a cache flush and, when appending, a journal commit;
// for a group of a few KiB the journal commit is most of it, for a group
// of 256 KiB blocks (a bulk fetch) the data is, and the zeros double the
// bytes the disk writes. So, with Options.PreallocMaxGroup set, the
// committer keeps a moving average of its groups' bytes, and while it is
// at or above the limit the tail is not extended: groups use up what is
// already zeroed, then append. When groups get small again the
// preallocator resumes from the committer's position. It is off by
// default: on a filesystem others also write to, an append's journal
// commit waits for their metadata too, and a W1 fetch measured both
// ways (docs/blocklog.md).

// preallocChunk is the size of one zero-filling write.
const preallocChunk = 1 << 20

// preallocAhead is how far ahead of the committer's position the active
// segment is zero-filled: twice the largest group, at least 4 MiB, at most
// the segment. The preallocator is woken when less than half of it is left.
func (d *Datastore) preallocAhead() int64 {
	return min(d.opts.SegmentSize, max(4<<20, 2*int64(d.opts.MaxGroupBytes)))
}

// preallocating reports whether the active segment is zero-filled ahead.
func (d *Datastore) preallocating() bool { return d.opts.Sync && !d.opts.NoPreallocate }

// groupAvgShift sets the moving average's weight: each group moves it by
// 1/16 of its difference from the average.
const groupAvgShift = 4

// noteGroup adds a group of n bytes to the moving average of group sizes.
// Only the committer calls it.
func (d *Datastore) noteGroup(n int64) {
	if !d.preallocating() || d.opts.PreallocMaxGroup <= 0 {
		return
	}
	avg := d.groupAvg.Load()
	d.groupAvg.Store(avg + (n-avg)>>groupAvgShift)
}

// preallocPays reports whether recent groups are small enough for the
// zero-filled tail to be extended (see the package comment above).
func (d *Datastore) preallocPays() bool {
	return d.opts.PreallocMaxGroup <= 0 || d.groupAvg.Load() < int64(d.opts.PreallocMaxGroup)
}

func (d *Datastore) kickPrealloc() {
	if !d.preallocating() {
		return
	}
	select {
	case d.zkick <- struct{}{}:
	default:
	}
}

// preallocator zero-fills the active segment ahead of the committer until
// Close.
func (d *Datastore) preallocator() {
	defer d.wg.Done()
	for {
		select {
		case <-d.stop:
			return
		case <-d.zkick:
		}
		d.mu.RLock()
		s := d.active
		s.acquire()
		d.mu.RUnlock()
		d.zeroAhead(s)
		s.release()
	}
}

// zeroAhead fills s with zeros from where the committer's writes end up to
// preallocAhead beyond them, one chunk per lock hold (the committer
// reserves its next group's bytes under the same lock, so no zero ever
// lands on a record), writing each chunk back before the next
// (writeBack), then fdatasyncs the file. It stops early when recent
// groups are too large for the zeros to pay (preallocPays).
func (d *Datastore) zeroAhead(s *segment) {
	ahead := d.preallocAhead()
	filled := false
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		if !d.preallocPays() {
			break
		}
		s.zmu.Lock()
		if s.sealed || s.zeroFailed {
			s.zmu.Unlock()
			return
		}
		from := max(s.zeroed, s.reserved)
		target := min(d.opts.SegmentSize, s.reserved+ahead)
		if from >= target {
			s.zmu.Unlock()
			break
		}
		to := min(from+preallocChunk, target)
		if err := writeZeros(s, from, to-from); err != nil {
			// A full disk, most likely: give the space back and leave
			// this segment's tail to plain appends.
			s.zeroFailed = true
			terr := s.f.Truncate(from)
			s.zmu.Unlock()
			log.Warnw("zero-filling the active segment failed; its groups append", "segment", s.path, "err", err, "truncate", terr)
			d.st.preallocFailures.Add(1)
			return
		}
		s.zeroed = to
		s.zmu.Unlock()
		// Write the chunk back now, in this goroutine: dirty zeros left in
		// the page cache would be written by the next group's fdatasync
		// (it flushes the whole file), stalling every writer of that group
		// behind megabytes that are not theirs.
		writeBack(s, from, to-from)
		filled = true
		d.st.preallocBytes.Add(uint64(to - from))
	}
	if !filled {
		return
	}
	s.zmu.Lock()
	upTo := s.zeroed
	s.zmu.Unlock()
	if err := fdatasync(s); err != nil {
		log.Warnw("fdatasync of the zero-filled tail failed", "segment", s.path, "err", err)
		return
	}
	s.zmu.Lock()
	s.durable = max(s.durable, min(upTo, s.zeroed))
	s.zmu.Unlock()
}

// reserve records that the committer writes group bytes [base, end) of s
// and reports whether they fall inside the durable zero-filled tail. The
// preallocator is woken when less than half of its lead is left.
func (d *Datastore) reserve(s *segment, base, end int64) (inPlace bool) {
	if !d.preallocating() {
		return false
	}
	s.zmu.Lock()
	s.reserved = max(s.reserved, end)
	inPlace = end <= s.durable
	low := s.zeroed-end < d.preallocAhead()/2 && !s.zeroFailed && !s.sealed && d.preallocPays()
	s.zmu.Unlock()
	if low {
		d.kickPrealloc()
	}
	return inPlace
}

// truncateTo undoes a failed group write by cutting s at base, with the
// zero-filled tail beyond it.
func (s *segment) truncateTo(base int64) error {
	s.zmu.Lock()
	defer s.zmu.Unlock()
	if err := s.f.Truncate(base); err != nil {
		return err
	}
	s.reserved = base
	s.zeroed = min(s.zeroed, base)
	s.durable = min(s.durable, base)
	return nil
}

// seal stops zero-filling s and cuts its zero tail, so that the sealed file
// ends at its last record. The caller fsyncs it.
func (s *segment) seal() error {
	s.zmu.Lock()
	defer s.zmu.Unlock()
	s.sealed = true
	size := s.size.Load()
	if s.zeroed > size {
		if err := s.f.Truncate(size); err != nil {
			return fmt.Errorf("blocklog: seal %s: cut the zero-filled tail: %w", s.path, err)
		}
		s.zeroed, s.durable = size, min(s.durable, size)
	}
	return nil
}

// writeZeros writes n zeros (at most preallocChunk) at off in s from
// iovecs that all point at one shared zero page, so the preallocator holds
// no buffer of its own.
func writeZeros(s *segment, off, n int64) error {
	var iov [preallocChunk / len(zeroPage)][]byte
	k := 0
	for left := n; left > 0; k++ {
		l := min(left, int64(len(zeroPage)))
		iov[k] = zeroPage[:l]
		left -= l
	}
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	_, err = vecFull(rc, unix.Pwritev, iov[:k], off, io.ErrShortWrite)
	return err
}

// writeBack starts and waits for the write-back of bytes [off, off+n) of
// s (sync_file_range: data only, no metadata, no device cache flush). An
// error is only logged: the preallocator's fdatasync still covers them.
func writeBack(s *segment, off, n int64) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return
	}
	var serr error
	_ = rc.Control(func(fd uintptr) {
		serr = unix.SyncFileRange(int(fd), off, n,
			unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	})
	if serr != nil {
		log.Debugw("sync_file_range of the zero-filled tail failed", "segment", s.path, "err", serr)
	}
}

// fdatasync flushes s's data and the metadata needed to read it back.
func fdatasync(s *segment) error {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if cerr := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); cerr != nil {
		return cerr
	}
	return serr
}

// zeroTail reports whether every byte of f from off to size is zero.
func zeroTail(f io.ReaderAt, off, size int64) (bool, error) {
	buf := make([]byte, min(size-off, zeroTailChunk))
	for off < size {
		n := min(int64(len(buf)), size-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return false, err
		}
		if !isZero(buf[:n]) {
			return false, nil
		}
		off += n
	}
	return true, nil
}

// zeroTailChunk is the read size of zeroTail's check.
const zeroTailChunk = 64 << 10

// zeroPage is a page of zeros, never written: the source of the
// preallocator's writes and isZero's reference.
var zeroPage [4096]byte

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroPage))
		if !bytes.Equal(b[:n], zeroPage[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// syncTimed fdatasyncs s for a group commit and counts it.
func (d *Datastore) syncTimed(s *segment) error {
	if d.syncGate != nil {
		d.syncGate()
	}
	t0 := time.Now()
	err := fdatasync(s)
	d.st.syncNanos.Add(uint64(time.Since(t0)))
	return err
}
