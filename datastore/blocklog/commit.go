package blocklog

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// op is one write of a group.
type op struct {
	kind byte
	key  string
	val  []byte // the caller's value, written in place (the caller waits)
	off  int    // record start within the group's bytes
	hdr  int    // start of the record's header and key in group.hdrs
}

// group is what one commit writes: the records of every write that arrived
// while the previous group was being written. Record headers and keys are
// encoded into hdrs; values stay in the callers' slices and go to the
// kernel with one pwritev per group, so a value is copied once (into the
// page cache), not twice.
type group struct {
	hdrs []byte
	ops  []op
	size int  // encoded bytes of the group
	sync bool // an explicit Sync asked for an fsync
	done chan struct{}
	err  error
}

func newGroup() *group { return &group{done: make(chan struct{})} }

// add encodes one record's header and key, checksumming the value too.
func (g *group) add(o op) {
	o.off, o.hdr = g.size, len(g.hdrs)
	g.hdrs = appendHeader(g.hdrs, o.kind, o.key, o.val)
	g.ops = append(g.ops, o)
	g.size += recordLen(len(o.key), len(o.val))
}

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
		if tx {
			o.kind += kindTxPut - kindPut // put->txput, delete->txdel
		}
		g.add(o)
	}
	if tx {
		n := len(ops)
		g.add(op{kind: kindCommit, val: []byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}})
	}
	if g.size >= d.opts.MaxGroupBytes {
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
			seg, err := d.commit(g)
			if err != nil || seg == nil {
				g.err = err
				close(g.done)
				continue
			}
			d.syncGroup(g, seg)
		}
		if stopping {
			return
		}
	}
}

// commit writes one group to the active segment, fsyncs it if asked, then
// applies the group to the index.
//
// With Options.Sync, commit does not fsync: it returns the segment written
// and the committer hands the group to syncGroup, so the next group can be
// written while this one's fsync runs.
func (d *Datastore) commit(g *group) (*segment, error) {
	if p := d.broken.Load(); p != nil {
		return nil, *p
	}
	if g.size > 0 {
		a := d.active
		if sz := a.size.Load(); sz > segHeaderSize && sz+int64(g.size) > d.opts.SegmentSize {
			if err := d.rotate(); err != nil {
				return nil, err
			}
			a = d.active
		}
		base := a.size.Load()
		if base+int64(g.size) > 1<<32-1 {
			return nil, fmt.Errorf("blocklog: a group of %d bytes does not fit a segment", g.size)
		}
		if d.reserve(a, base, base+int64(g.size)) {
			d.st.inPlaceGroups.Add(1)
		}
		if err := writeGroup(a.f, g, base); err != nil {
			// Undo a partial write so the next group does not follow torn
			// bytes; if that fails too, refuse further writes.
			if terr := a.truncateTo(base); terr != nil {
				e := fmt.Errorf("blocklog: write %s failed (%v) and could not be undone: %w", a.path, err, terr)
				d.broken.Store(&e)
				return nil, e
			}
			return nil, fmt.Errorf("blocklog: write %s: %w", a.path, err)
		}
		a.noteHint(base, g)
		a.size.Store(base + int64(g.size))
		d.noteGroup(int64(g.size))
		var pending *group
		if d.opts.Sync {
			pending = g
		}
		d.apply(a, uint32(base), g.ops, pending)
		d.st.groups.Add(1)
		d.st.groupOps.Add(uint64(len(g.ops)))
		d.st.groupBytes.Add(uint64(g.size))
		for {
			m := d.st.maxGroupOps.Load()
			if uint64(len(g.ops)) <= m || d.st.maxGroupOps.CompareAndSwap(m, uint64(len(g.ops))) {
				break
			}
		}
		if d.opts.Sync || g.sync {
			return a, nil
		}
	}
	if g.sync {
		// An explicit Sync (the tiered mover calls it after each move):
		// fsynced beside the next groups' writes, not in their way.
		return d.active, nil
	}
	return nil, nil
}

// syncGroup fdatasyncs segment s for group g in its own goroutine, at most
// syncParallel at once, and releases g's writers when it returns. An fsync
// started after a group's write covers it, whatever other fsyncs do; on
// this project's VM disk concurrent fsyncs complete nearly as fast as one,
// so overlapping them multiplies group commits per second.
func (d *Datastore) syncGroup(g *group, s *segment) {
	d.syncSem <- struct{}{}
	s.acquire()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		err := d.syncTimed(s)
		s.release()
		<-d.syncSem
		if err != nil {
			e := fmt.Errorf("blocklog: fsync %s: %w", s.path, err)
			d.broken.Store(&e)
			g.err = e
		} else {
			d.st.syncs.Add(1)
		}
		d.synced(g)
		close(g.done)
	}()
}

// apply updates the index and the segments' live bytes for ops written at
// base in segment a, under one lock, so a batch appears at once. pending,
// when not nil, is the group whose fsync is still to come: its puts are
// marked unsynced until synced clears them.
func (d *Datastore) apply(a *segment, base uint32, ops []op, pending *group) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range ops {
		n := recordLen(len(o.key), len(o.val))
		switch o.kind {
		case kindPut, kindTxPut:
			d.dropOld(o.key)
			d.index[o.key] = entry{seg: a.id, off: base + uint32(o.off), vlen: uint32(len(o.val))}
			a.live += int64(n)
			if pending != nil {
				d.unsynced[o.key] = pending
			}
		case kindDelete, kindTxDel:
			d.dropOld(o.key)
			delete(d.index, o.key)
			delete(d.unsynced, o.key)
			a.tomb += int64(n)
		}
	}
}

// synced clears the unsynced marks g's puts left, once g's fsync returned.
func (d *Datastore) synced(g *group) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range g.ops {
		if d.unsynced[o.key] == g {
			delete(d.unsynced, o.key)
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
	if err := old.seal(); err != nil {
		return err
	}
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
		old.hint = nil
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
	s := &segment{id: id, gen: gen, path: p, f: f, reserved: segHeaderSize, zeroed: segHeaderSize, hintLive: true}
	s.size.Store(segHeaderSize)
	s.refs.Store(1)
	d.kickPrealloc()
	return s, nil
}

// maxIovecs stays under Linux's IOV_MAX (1024).
const maxIovecs = 1020

// writeGroup writes g's records at base: headers and keys from g.hdrs,
// values from the callers' slices, with as few pwritev calls as IOV_MAX
// allows (one for up to 510 records).
func writeGroup(f *os.File, g *group, base int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	iov := make([][]byte, 0, min(2*len(g.ops), maxIovecs))
	off := base
	flush := func() error {
		var err error
		off, err = vecFull(rc, unix.Pwritev, iov, off, io.ErrShortWrite)
		iov = iov[:0]
		return err
	}
	for i, o := range g.ops {
		end := len(g.hdrs)
		if i+1 < len(g.ops) {
			end = g.ops[i+1].hdr
		}
		iov = append(iov, g.hdrs[o.hdr:end])
		if len(o.val) > 0 {
			iov = append(iov, o.val)
		}
		if len(iov) >= maxIovecs-1 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
