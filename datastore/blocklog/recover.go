package blocklog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// lockDir takes an exclusive flock on dir/LOCK so two processes never
// append to one log.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir+"/LOCK", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blocklog: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("blocklog: %s is in use by another process (flock: %w)", dir, err)
	}
	return f, nil
}

// scanChunk is the read size of a segment scan at open (grown for a larger
// record). It is garbage once the open is done, but the pages it touched
// stay in the process until the Go runtime returns them, so it is kept
// small.
const scanChunk = 1 << 20

// scanSegment reads the records of f from the end of its header up to size,
// calling fn with each valid record and its offset (the record aliases a
// buffer that is reused after fn returns). It stops at the first torn or
// corrupt record: end is that record's offset and bad says why; bad is nil
// if the scan reached size. err is an I/O error or fn's.
func scanSegment(f io.ReaderAt, size int64, fn func(off int64, r record) error) (end int64, bad, err error) {
	back := make([]byte, scanChunk)
	buf := back[:0]
	off := int64(segHeaderSize) // file offset of buf[0]
	readPos := off
	for {
		rec, derr := decodeRecord(buf)
		if derr == errTorn {
			if readPos >= size {
				if len(buf) == 0 {
					return off, nil, nil
				}
				return off, errTorn, nil
			}
			need := scanChunk
			if _, kl, vl, herr := decodeHeader(buf); herr == nil {
				need = max(need, recordLen(kl, vl))
			}
			if need > len(back) {
				nb := make([]byte, need)
				buf = nb[:copy(nb, buf)]
				back = nb
			} else {
				buf = back[:copy(back, buf)]
			}
			want := min(int64(len(back)-len(buf)), size-readPos)
			n, rerr := f.ReadAt(back[len(buf):len(buf)+int(want)], readPos)
			if rerr != nil && !(errors.Is(rerr, io.EOF) && int64(n) == want) {
				if errors.Is(rerr, io.EOF) {
					return off, errTorn, nil // the file is shorter than size
				}
				return off, nil, rerr
			}
			buf = back[:len(buf)+n]
			readPos += int64(n)
			continue
		}
		if derr != nil {
			return off, derr, nil
		}
		if err := fn(off, rec); err != nil {
			return off, nil, err
		}
		buf = buf[rec.size:]
		off += int64(rec.size)
	}
}

// replayer applies one segment's records to the index, holding a batch's
// transaction records until its commit record.
type replayer struct {
	d       *Datastore
	s       *segment
	pending []pending
}

type pending struct {
	off  int64
	kind byte
	key  string
	vlen int
}

var errStrayRecord = errors.New("a record inside an uncommitted batch")

func (r *replayer) record(off int64, kind byte, key []byte, vlen int) error {
	switch kind {
	case kindPut, kindDelete:
		if len(r.pending) > 0 {
			return errStrayRecord
		}
		r.apply(off, kind, string(key), vlen)
	case kindTxPut, kindTxDel:
		r.pending = append(r.pending, pending{off: off, kind: kind - (kindTxPut - kindPut), key: string(key), vlen: vlen})
	case kindCommit:
		for _, p := range r.pending {
			r.apply(p.off, p.kind, p.key, p.vlen)
		}
		r.pending = r.pending[:0]
	}
	return nil
}

func (r *replayer) apply(off int64, kind byte, key string, vlen int) {
	if r.s.hintLive {
		r.s.noteHintEntry(kind, key, vlen, off)
	}
	d, n := r.d, int64(recordLen(len(key), vlen))
	d.dropOld(key)
	if kind == kindPut {
		d.index[key] = entry{seg: r.s.id, off: uint32(off), vlen: uint32(vlen)}
		r.s.live += n
	} else {
		delete(d.index, key)
		r.s.tomb += n
	}
}

// scanInto replays segment s by reading it in full. It returns where the
// valid, committed log ends, and why it ends there if that is before the
// file's end. With noteHint it also collects the hint entries of the
// records it applies in s.hint, as the committer does for the records it
// writes (up to maxHintBuffer).
func (d *Datastore) scanInto(s *segment, size int64, noteHint bool) (end int64, bad error, err error) {
	s.hintLive = noteHint
	r := &replayer{d: d, s: s}
	var commitCheck error
	end, bad, err = scanSegment(s.f, size, func(off int64, rec record) error {
		if rec.kind == kindCommit {
			want := int(rec.val[0]) | int(rec.val[1])<<8 | int(rec.val[2])<<16 | int(rec.val[3])<<24
			if want != len(r.pending) {
				commitCheck = fmt.Errorf("commit record for %d records follows %d at offset %d", want, len(r.pending), off)
				return commitCheck
			}
		}
		if e := r.record(off, rec.kind, rec.key, len(rec.val)); e != nil {
			commitCheck = fmt.Errorf("%w at offset %d", e, off)
			return commitCheck
		}
		return nil
	})
	if commitCheck != nil {
		err = nil
		bad = commitCheck
		if len(r.pending) > 0 {
			end = r.pending[0].off
		}
	}
	if err != nil {
		return 0, nil, err
	}
	if len(r.pending) > 0 {
		// The log ends inside a batch: the batch was never acknowledged.
		end = r.pending[0].off
		if bad == nil {
			bad = errors.New("a batch without its commit record")
		}
	}
	return end, bad, nil
}

// recover opens every segment and rebuilds the index.
func (d *Datastore) recover() error {
	names, err := os.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("blocklog: %w", err)
	}
	var ids []uint32
	hints := map[uint32]bool{}
	for _, e := range names {
		n := e.Name()
		switch {
		case strings.HasSuffix(n, ".tmp"):
			// A compaction or hint write a crash interrupted.
			if err := os.Remove(d.path(n)); err != nil {
				return fmt.Errorf("blocklog: remove leftover %s: %w", n, err)
			}
		case strings.HasSuffix(n, ".log"):
			id, err := strconv.ParseUint(strings.TrimSuffix(n, ".log"), 10, 32)
			if err != nil || id == 0 {
				return fmt.Errorf("blocklog: %s: unexpected file %q in the log directory", d.dir, n)
			}
			ids = append(ids, uint32(id))
		case strings.HasSuffix(n, ".hint"):
			id, err := strconv.ParseUint(strings.TrimSuffix(n, ".hint"), 10, 32)
			if err == nil {
				hints[uint32(id)] = true
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var needHint []*segment
	for i, id := range ids {
		last := i == len(ids)-1
		s, err := d.openSegment(id, last)
		if err != nil {
			return err
		}
		d.segs[id] = s
		if !last {
			if hints[id] {
				ok, err := d.loadHint(s)
				if err != nil {
					log.Warnw("hint file unusable; scanning the segment", "segment", s.path, "err", err)
				}
				if ok {
					continue
				}
			}
			size := s.size.Load()
			end, bad, err := d.scanInto(s, size, false)
			if err != nil {
				return fmt.Errorf("blocklog: read %s: %w", s.path, err)
			}
			if bad != nil {
				// Sealing cuts the zero-filled tail before the next segment
				// exists; should one remain, it holds nothing.
				zero, zerr := zeroTail(s.f, end, size)
				if zerr != nil || !zero {
					return fmt.Errorf("blocklog: sealed segment %s is damaged at offset %d of %d: %v", s.path, end, size, bad)
				}
				log.Warnw("cutting a sealed segment's zero-filled tail", "segment", s.path, "at", end, "zeros", size-end)
				if err := os.Truncate(s.path, end); err != nil {
					return fmt.Errorf("blocklog: truncate %s to %d: %w", s.path, end, err)
				}
				s.size.Store(end)
			}
			needHint = append(needHint, s)
			continue
		}
		size := s.size.Load()
		end, bad, err := d.scanInto(s, size, true)
		if err != nil {
			return fmt.Errorf("blocklog: read %s: %w", s.path, err)
		}
		// The scan noted the hint entries of every committed record up to
		// end (unless they passed maxHintBuffer), so the committer can go
		// on from them.
		s.reserved, s.zeroed = end, end
		if bad != nil || end < size {
			// Zeros from end to the end of the file are the tail the
			// preallocator filled (prealloc.go): the log's clean end.
			if zero, err := zeroTail(s.f, end, size); err != nil {
				return fmt.Errorf("blocklog: read %s: %w", s.path, err)
			} else if zero {
				s.size.Store(end)
				s.zeroed, s.durable = size, size
				d.active = s
				continue
			}
			log.Warnw("truncating the log's torn tail", "segment", s.path, "at", end, "dropped", size-end, "reason", bad)
			if err := s.f.Truncate(end); err != nil {
				return fmt.Errorf("blocklog: truncate %s to %d: %w", s.path, end, err)
			}
			if err := s.f.Sync(); err != nil {
				return fmt.Errorf("blocklog: fsync %s: %w", s.path, err)
			}
			d.st.truncated.Add(uint64(size - end))
			s.size.Store(end)
		}
		d.active = s
	}
	for id := range hints {
		if d.segs[id] == nil || (d.active != nil && id == d.active.id) {
			os.Remove(d.path(hintName(id)))
		}
	}
	if d.active == nil {
		s, err := d.createSegment(1)
		if err != nil {
			return err
		}
		d.segs[1] = s
		d.active = s
	}
	for _, s := range needHint {
		s.acquire()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer s.release()
			if err := writeHint(d.dir, s); err != nil {
				log.Warnw("hint file not written", "segment", s.path, "err", err)
			}
		}()
	}
	return nil
}

// openSegment opens segment id and checks its header. The active segment
// (last) is opened for writing; a header a crash left incomplete is
// rewritten, as the segment holds no record yet.
func (d *Datastore) openSegment(id uint32, last bool) (*segment, error) {
	p := d.path(segName(id))
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(p, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("blocklog: open segment: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blocklog: stat %s: %w", p, err)
	}
	hdr := make([]byte, segHeaderSize)
	n, _ := f.ReadAt(hdr, 0)
	gen, herr := parseSegHeader(hdr[:n])
	if herr != nil {
		if !last || fi.Size() >= segHeaderSize {
			f.Close()
			return nil, fmt.Errorf("blocklog: segment %s: %v", p, herr)
		}
		// A crash between creating the file and writing its header.
		gen = uint64(fi.ModTime().UnixNano()) | 1
		if err := rewriteSegHeader(f, gen); err != nil {
			f.Close()
			return nil, fmt.Errorf("blocklog: rewrite header of %s: %w", p, err)
		}
		if fi, err = f.Stat(); err != nil {
			f.Close()
			return nil, fmt.Errorf("blocklog: stat %s: %w", p, err)
		}
	}
	s := &segment{id: id, gen: gen, path: p, f: f}
	s.size.Store(fi.Size())
	s.refs.Store(1)
	return s, nil
}

// rewriteSegHeader empties f and writes a segment header of generation gen
// at its start: the repair of an active segment whose header a crash cut
// short. An error of either step is returned, so that recovery stops
// rather than append records where the header belongs.
func rewriteSegHeader(f *os.File, gen uint64) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt(segHeader(gen), 0)
	return err
}
