package blocklog

import (
	"fmt"
	"os"
	"time"
)

// op is one write of a group.
type op struct {
	kind byte
	key  string
	val  []byte
	off  int // record start within the group's buffer
}

// group is what one commit writes: the records of every write that arrived
// while the previous group was being written.
type group struct {
	buf  []byte
	ops  []op
	sync bool // an explicit Sync asked for an fsync
	done chan struct{}
	err  error
}

func newGroup() *group { return &group{done: make(chan struct{})} }

// submit encodes ops into the current group, wakes the committer and waits
// for the group's commit. More than one op is a batch: transaction records
// and a commit record, so it is all-or-nothing after a crash.
func (d *Datastore) submit(ops []op) error {
	if p := d.broken.Load(); p != nil {
		return *p
	}
	d.cmu.Lock()
	if d.closed {
		d.cmu.Unlock()
		return ErrClosed
	}
	g := d.cur
	tx := len(ops) > 1
	for _, o := range ops {
		o.off = len(g.buf)
		kind := o.kind
		if tx {
			kind += kindTxPut - kindPut // put->txput, delete->txdel
		}
		g.buf = appendRecord(g.buf, kind, o.key, o.val)
		o.kind = kind
		o.val = nil // not kept past the encoding
		g.ops = append(g.ops, o)
	}
	if tx {
		var cnt [4]byte
		cnt[0], cnt[1], cnt[2], cnt[3] = byte(len(ops)), byte(len(ops)>>8), byte(len(ops)>>16), byte(len(ops)>>24)
		g.ops = append(g.ops, op{kind: kindCommit, off: len(g.buf)})
		g.buf = appendRecord(g.buf, kindCommit, "", cnt[:])
	}
	full := len(g.buf) >= d.opts.MaxGroupBytes
	if full {
		// Start a new group for later writers; the committer takes groups
		// in order from the queue.
		d.queue = append(d.queue, g)
		d.cur = newGroup()
	}
	d.cmu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	<-g.done
	return g.err
}

// submitSync asks the committer for an fsync of the active segment after
// every write queued so far.
func (d *Datastore) submitSync() error {
	d.cmu.Lock()
	if d.closed {
		d.cmu.Unlock()
		return ErrClosed
	}
	g := d.cur
	g.sync = true
	d.cmu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	<-g.done
	return g.err
}

// committer writes groups one after another until Close.
func (d *Datastore) committer() {
	defer d.wg.Done()
	for {
		stopping := false
		select {
		case <-d.kick:
		case <-d.stop:
			stopping = true
		}
		for {
			d.cmu.Lock()
			var g *group
			if len(d.queue) > 0 {
				g = d.queue[0]
				d.queue = d.queue[1:]
			} else if len(d.cur.ops) > 0 || d.cur.sync {
				g = d.cur
				d.cur = newGroup()
			}
			d.cmu.Unlock()
			if g == nil {
				break
			}
			g.err = d.commit(g)
			close(g.done)
		}
		if stopping {
			return
		}
	}
}

// commit writes one group to the active segment, fsyncs it if asked, then
// applies the group to the index.
func (d *Datastore) commit(g *group) error {
	if p := d.broken.Load(); p != nil {
		return *p
	}
	if len(g.buf) > 0 {
		a := d.active
		if sz := a.size.Load(); sz > segHeaderSize && sz+int64(len(g.buf)) > d.opts.SegmentSize {
			if err := d.rotate(); err != nil {
				return err
			}
			a = d.active
		}
		base := a.size.Load()
		if base+int64(len(g.buf)) > 1<<32-1 {
			return fmt.Errorf("blocklog: a group of %d bytes does not fit a segment", len(g.buf))
		}
		if _, err := a.f.WriteAt(g.buf, base); err != nil {
			// Undo a partial write so the next group does not follow torn
			// bytes; if that fails too, refuse further writes.
			if terr := a.f.Truncate(base); terr != nil {
				e := fmt.Errorf("blocklog: write %s failed (%v) and could not be undone: %w", a.path, err, terr)
				d.broken.Store(&e)
				return e
			}
			return fmt.Errorf("blocklog: write %s: %w", a.path, err)
		}
		if d.opts.Sync {
			if err := a.f.Sync(); err != nil {
				e := fmt.Errorf("blocklog: fsync %s: %w", a.path, err)
				d.broken.Store(&e)
				return e
			}
			d.st.syncs.Add(1)
		}
		a.size.Store(base + int64(len(g.buf)))
		d.apply(a, uint32(base), g.ops, g.buf)
		d.st.groups.Add(1)
		d.st.groupOps.Add(uint64(len(g.ops)))
		d.st.groupBytes.Add(uint64(len(g.buf)))
		for {
			m := d.st.maxGroupOps.Load()
			if uint64(len(g.ops)) <= m || d.st.maxGroupOps.CompareAndSwap(m, uint64(len(g.ops))) {
				break
			}
		}
	}
	if g.sync && !d.opts.Sync {
		if err := d.active.f.Sync(); err != nil {
			return fmt.Errorf("blocklog: fsync %s: %w", d.active.path, err)
		}
		d.st.syncs.Add(1)
	}
	return nil
}

// apply updates the index and the segments' live bytes for ops written at
// base in segment a, under one lock, so a batch appears at once.
func (d *Datastore) apply(a *segment, base uint32, ops []op, buf []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, o := range ops {
		end := len(buf)
		if i+1 < len(ops) {
			end = ops[i+1].off
		}
		n := end - o.off
		switch o.kind {
		case kindPut, kindTxPut:
			d.dropOld(o.key)
			d.index[o.key] = entry{seg: a.id, off: base + uint32(o.off), vlen: uint32(n - recHeaderSize - len(o.key))}
			a.live += int64(n)
		case kindDelete, kindTxDel:
			d.dropOld(o.key)
			delete(d.index, o.key)
			a.tomb += int64(n)
		}
	}
}

// dropOld subtracts key's current record from its segment's live bytes.
func (d *Datastore) dropOld(key string) {
	if e, ok := d.index[key]; ok {
		if s := d.segs[e.seg]; s != nil {
			s.live -= int64(recordLen(len(key), int(e.vlen)))
		}
	}
}

// rotate seals the active segment (fsync, hint file in the background) and
// starts the next one.
func (d *Datastore) rotate() error {
	old := d.active
	if err := old.f.Sync(); err != nil {
		return fmt.Errorf("blocklog: seal %s: fsync: %w", old.path, err)
	}
	s, err := d.createSegment(old.id + 1)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.segs[s.id] = s
	d.active = s
	d.mu.Unlock()
	old.acquire()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer old.release()
		if err := writeHint(d.dir, old); err != nil {
			log.Warnw("hint file not written; the next open scans the segment", "segment", old.path, "err", err)
		}
	}()
	return nil
}

// createSegment creates segment id with a fresh header and syncs the
// directory.
func (d *Datastore) createSegment(id uint32) (*segment, error) {
	p := d.path(segName(id))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blocklog: create segment: %w", err)
	}
	gen := uint64(time.Now().UnixNano())
	if _, err := f.WriteAt(segHeader(gen), 0); err != nil {
		f.Close()
		os.Remove(p)
		return nil, fmt.Errorf("blocklog: create segment %s: %w", p, err)
	}
	if err := syncDir(d.dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("blocklog: create segment %s: sync directory: %w", p, err)
	}
	s := &segment{id: id, gen: gen, path: p, f: f}
	s.size.Store(segHeaderSize)
	s.refs.Store(1)
	return s, nil
}
