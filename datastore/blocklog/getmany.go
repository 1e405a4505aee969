package blocklog

import (
	"context"
	"fmt"
	"io"
	"sort"

	ds "github.com/ipfs/go-datastore"
	"golang.org/x/sys/unix"
)

// Reads of many keys. GetMany looks every key up in the index under one
// lock, sorts the records by segment and offset, and reads runs of records
// that lie close together with one preadv each: one buffer per record, so
// no value is copied and none pins another's memory, and gaps of up to
// manyGap bytes between records are read into a scratch buffer rather than
// costing a syscall. Blocks written together (a DAG added or fetched in
// one go) sit next to each other in the log, so reading them back is a
// sequential read of the file, not one random read per block.

const (
	// manyGap is the largest hole between two records that one read spans.
	manyGap = 32 << 10
	// manyRunBytes bounds one read.
	manyRunBytes = 4 << 20
)

type located struct {
	i int // index in the caller's keys
	k string
	e entry
	s *segment
}

// GetMany reads the values of keys and calls fn once per key, with the
// key's position in keys, its value, or ds.ErrNotFound for a key that is
// not stored, or another error for a record that fails its checks. Calls
// come in the order the records lie on disk, not in keys' order, from the
// calling goroutine. Values are fresh slices. The error returned is ctx's
// or an I/O error that ended the reads early (then some keys got no call).
func (d *Datastore) GetMany(ctx context.Context, keys []ds.Key, fn func(i int, value []byte, err error)) error {
	locs := make([]located, 0, len(keys))
	var missing []int
	d.mu.RLock()
	for i, key := range keys {
		k := key.String()
		e, ok := d.index[k]
		if !ok {
			missing = append(missing, i)
			continue
		}
		// The ref keeps the file open across a concurrent compaction (see
		// Get).
		s := d.segs[e.seg]
		s.acquire()
		locs = append(locs, located{i: i, k: k, e: e, s: s})
	}
	d.mu.RUnlock()
	defer func() {
		for _, l := range locs {
			l.s.release()
		}
	}()
	for _, i := range missing {
		fn(i, nil, ds.ErrNotFound)
	}
	sort.Slice(locs, func(a, b int) bool {
		if locs[a].e.seg != locs[b].e.seg {
			return locs[a].e.seg < locs[b].e.seg
		}
		return locs[a].e.off < locs[b].e.off
	})
	var scratch []byte
	for start := 0; start < len(locs); {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A run: records of one segment file (the same descriptor: a
		// compaction may have replaced the segment between two lookups)
		// with gaps of at most manyGap, up to manyRunBytes and IOV_MAX.
		end := start + 1
		runEnd := int64(locs[start].e.off) + int64(recordLen(len(locs[start].k), int(locs[start].e.vlen)))
		iovs := 1
		for end < len(locs) {
			l := locs[end]
			off := int64(l.e.off)
			if l.s != locs[start].s || off < runEnd || off-runEnd > manyGap {
				break
			}
			n := int64(recordLen(len(l.k), int(l.e.vlen)))
			if off+n-int64(locs[start].e.off) > manyRunBytes || iovs+2 > maxIovecs {
				break
			}
			if off > runEnd {
				iovs++
			}
			iovs++
			runEnd = off + n
			end++
		}
		run := locs[start:end]
		bufs := make([][]byte, len(run))
		iov := make([][]byte, 0, iovs)
		pos := int64(run[0].e.off)
		for j, l := range run {
			if gap := int64(l.e.off) - pos; gap > 0 {
				if int64(len(scratch)) < gap {
					scratch = make([]byte, manyGap)
				}
				iov = append(iov, scratch[:gap])
			}
			bufs[j] = make([]byte, recordLen(len(l.k), int(l.e.vlen)))
			iov = append(iov, bufs[j])
			pos = int64(l.e.off) + int64(len(bufs[j]))
		}
		if err := preadvFull(run[0].s, iov, int64(run[0].e.off)); err != nil {
			return fmt.Errorf("blocklog: read %s at %d: %w", run[0].s.path, run[0].e.off, err)
		}
		for j, l := range run {
			v, err := checkRecord(bufs[j], l.k, l.s, l.e.off)
			fn(l.i, v, err)
		}
		start = end
	}
	return nil
}

// checkRecord decodes the record read for key k at off in s and returns its
// value, as Get does.
func checkRecord(buf []byte, k string, s *segment, off uint32) ([]byte, error) {
	rec, err := decodeRecord(buf)
	if err != nil {
		return nil, fmt.Errorf("blocklog: %s at offset %d: %w", s.path, off, err)
	}
	if string(rec.key) != k || (rec.kind != kindPut && rec.kind != kindTxPut) {
		return nil, fmt.Errorf("blocklog: %s at offset %d: index names a record of another key", s.path, off)
	}
	return rec.val[:len(rec.val):len(rec.val)], nil
}

// preadvFull fills iov from s's file at off, resuming short reads.
func preadvFull(s *segment, iov [][]byte, off int64) error {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	_, err = vecFull(rc, unix.Preadv, iov, off, io.ErrUnexpectedEOF)
	return err
}
