package blocklog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// compactor runs a compaction pass every Options.CompactInterval.
func (d *Datastore) compactor() {
	defer d.wg.Done()
	if d.opts.CompactInterval < 0 {
		<-d.stop
		return
	}
	t := time.NewTicker(d.opts.CompactInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		if _, err := d.Compact(context.Background()); err != nil && !errors.Is(err, errStopping) {
			log.Warnw("compaction failed", "err", err)
		}
	}
}

var errStopping = errors.New("blocklog: compaction stopped by Close")

// Compact rewrites, one after another, every sealed segment whose garbage
// (overwritten and deleted records, and tombstones that no older segment
// needs) is at least Options.CompactRatio of its size. It returns the
// number of segments rewritten or removed.
func (d *Datastore) Compact(ctx context.Context) (int, error) {
	d.compactMu.Lock()
	defer d.compactMu.Unlock()
	done := 0
	skip := map[uint32]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		s := d.pickVictim(skip)
		if s == nil {
			return done, nil
		}
		skip[s.id] = true
		err := d.compactSegment(s)
		s.release()
		if err != nil {
			if !errors.Is(err, errStopping) {
				d.st.compactFailures.Add(1)
			}
			return done, err
		}
		done++
	}
}

// pickVictim returns (acquired) the sealed segment with the highest
// reclaimable fraction at or above the threshold, or nil.
func (d *Datastore) pickVictim(skip map[uint32]bool) *segment {
	d.mu.RLock()
	defer d.mu.RUnlock()
	minID := d.active.id
	for id := range d.segs {
		minID = min(minID, id)
	}
	var best *segment
	bestRatio := 0.0
	for id, s := range d.segs {
		if id == d.active.id || skip[id] {
			continue
		}
		body := s.size.Load() - segHeaderSize
		if body <= 0 {
			continue
		}
		reclaim := body - s.live
		if id != minID {
			reclaim -= s.tomb // an older segment may hold what they delete
		}
		if r := float64(reclaim) / float64(body); reclaim > 0 && r >= d.opts.CompactRatio && r > bestRatio {
			best, bestRatio = s, r
		}
	}
	if best != nil {
		best.acquire()
	}
	return best
}

type moved struct {
	key            string
	oldOff, newOff uint32
	n              int64
}

// compactSegment rewrites sealed segment s with its live records (and the
// tombstones an older segment may still need) into a temporary file,
// fsyncs it and renames it over s, so the segment keeps its place in the
// log's order and a crash leaves either the old or the new file. Then the
// index moves to the new offsets, under one lock.
func (d *Datastore) compactSegment(s *segment) error {
	d.mu.RLock()
	oldest := true
	for id := range d.segs {
		if id < s.id {
			oldest = false
		}
	}
	d.mu.RUnlock()
	size := s.size.Load()
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("blocklog: compact %s: %w", s.path, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	gen := uint64(time.Now().UnixNano())
	w := bufio.NewWriterSize(f, 1<<20)
	w.Write(segHeader(gen))
	pos := int64(segHeaderSize)
	var copied []moved
	var keptTomb int64
	var enc []byte
	start, read := time.Now(), int64(0)
	end, bad, err := scanSegment(s.f, size, func(off int64, r record) error {
		read += int64(r.size)
		if ahead := time.Duration(float64(read)/float64(d.opts.CompactRate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			select {
			case <-d.stop:
				return errStopping
			case <-time.After(ahead):
			}
		}
		var kind byte
		switch r.kind {
		case kindPut, kindTxPut:
			d.mu.RLock()
			e, ok := d.index[string(r.key)]
			d.mu.RUnlock()
			if !ok || e.seg != s.id || int64(e.off) != off {
				return nil
			}
			kind = kindPut
		case kindDelete, kindTxDel:
			if oldest {
				return nil
			}
			kind = kindDelete
		default:
			return nil
		}
		enc = appendRecord(enc[:0], kind, string(r.key), r.val)
		if _, err := w.Write(enc); err != nil {
			return err
		}
		if kind == kindPut {
			copied = append(copied, moved{key: string(r.key), oldOff: uint32(off), newOff: uint32(pos), n: int64(len(enc))})
		} else {
			keptTomb += int64(len(enc))
		}
		pos += int64(len(enc))
		return nil
	})
	if err != nil {
		return fail(fmt.Errorf("blocklog: compact %s: %w", s.path, err))
	}
	if bad != nil || end != size {
		return fail(fmt.Errorf("blocklog: compact %s: sealed segment damaged at offset %d: %v", s.path, end, bad))
	}
	if err := w.Flush(); err != nil {
		return fail(fmt.Errorf("blocklog: compact %s: %w", s.path, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("blocklog: compact %s: fsync: %w", s.path, err))
	}
	hint := d.path(hintName(s.id))
	if len(copied) == 0 && keptTomb == 0 {
		// Nothing left: remove the segment. Readers still holding it keep
		// their descriptor; the file goes with the last of them.
		f.Close()
		os.Remove(tmp)
		os.Remove(hint)
		d.mu.Lock()
		delete(d.segs, s.id)
		d.mu.Unlock()
		s.unlink.Store(true)
		s.release()
		d.st.compactions.Add(1)
		d.st.compactReclaimed.Add(uint64(size))
		log.Debugw("compacted away", "segment", s.path, "bytes", size)
		return syncDir(d.dir)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fail(fmt.Errorf("blocklog: compact %s: rename: %w", s.path, err))
	}
	os.Remove(hint) // stale now (its generation no longer matches)
	if err := syncDir(d.dir); err != nil {
		log.Warnw("directory fsync after compaction failed", "dir", d.dir, "err", err)
	}
	ns := &segment{id: s.id, gen: gen, path: s.path, f: f}
	ns.size.Store(pos)
	ns.refs.Store(1)
	d.mu.Lock()
	for _, m := range copied {
		if e, ok := d.index[m.key]; ok && e.seg == s.id && e.off == m.oldOff {
			e.off = m.newOff
			d.index[m.key] = e
			ns.live += m.n
		}
	}
	ns.tomb = keptTomb
	d.segs[s.id] = ns
	d.mu.Unlock()
	s.release() // the store's ref to the old file
	d.st.compactions.Add(1)
	d.st.compactReclaimed.Add(uint64(size - pos))
	log.Debugw("compacted", "segment", s.path, "from", size, "to", pos)
	if err := writeHint(d.dir, ns); err != nil {
		log.Warnw("hint file not written", "segment", ns.path, "err", err)
	}
	return nil
}
