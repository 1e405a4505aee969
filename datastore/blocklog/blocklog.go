package blocklog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
	logging "github.com/ipfs/go-log/v2"
)

var log = logging.Logger("highload/blocklog")

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("blocklog: datastore closed")

// Option defaults and bounds.
const (
	DefaultSegmentSize     = 256 << 20
	MinSegmentSize         = 1 << 20
	MaxSegmentSize         = 1 << 30
	DefaultCompactRatio    = 0.5
	DefaultCompactRate     = 32 << 20
	DefaultCompactInterval = 30 * time.Second
	DefaultMaxGroupBytes   = 16 << 20
	// MinPreallocMaxGroup is the smallest positive PreallocMaxGroup.
	MinPreallocMaxGroup = 4 << 10
)

// Options configure a store. The zero value of each field means its default.
type Options struct {
	// Sync makes every group commit fsync the segment before its writers
	// return. Without it a write is acknowledged once write(2) returned (the
	// kernel has it), as flatfs with sync=false; segments are still fsynced
	// when sealed and on Sync and Close.
	Sync bool
	// NoPreallocate turns off zero-filling the active segment ahead of the
	// writes when Sync is set (see prealloc.go). Filling makes each group's
	// flush cheaper on filesystems that overwrite in place (ext4, XFS); on
	// copy-on-write ones (btrfs, ZFS) it only doubles the bytes written.
	NoPreallocate bool
	// PreallocMaxGroup, if positive, pauses the zero-filled tail while the
	// recent mean group commit (a moving average) is at least this many
	// bytes; 0 (the default) never pauses it. A small group's flush is
	// dominated by the metadata an append must commit, which the tail
	// saves; a large group's flush by its own data, where the zeros double
	// the bytes written. Whether the appends' journal commits then cost
	// more than the zeros depends on the disk and on what else writes to
	// the filesystem: see docs/blocklog.md.
	PreallocMaxGroup int
	// SegmentSize is the size at which the active segment is sealed
	// (default 256 MiB, 1 MiB to 1 GiB).
	SegmentSize int64
	// MaxGroupBytes bounds one group commit's bytes (default 16 MiB); a
	// group holds at least one write, however large.
	MaxGroupBytes int
	// CompactRatio is the garbage fraction of a sealed segment above which
	// it is rewritten (default 0.5, in (0, 1]).
	CompactRatio float64
	// CompactRate bounds the bytes per second compaction reads (default
	// 32 MiB/s).
	CompactRate int64
	// CompactInterval is how often the compactor looks for work (default
	// 30 s). A negative value disables background compaction (Compact can
	// still be called).
	CompactInterval time.Duration
}

// CheckOptions fills o's zero fields with their defaults and checks every
// field, naming the first one out of range.
func CheckOptions(o *Options) error { return o.fill() }

func (o *Options) fill() error {
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentSize < MinSegmentSize || o.SegmentSize > MaxSegmentSize {
		return fmt.Errorf("blocklog: SegmentSize %d out of range [%d, %d]", o.SegmentSize, MinSegmentSize, MaxSegmentSize)
	}
	if o.MaxGroupBytes == 0 {
		o.MaxGroupBytes = int(min(DefaultMaxGroupBytes, o.SegmentSize/4))
	}
	if o.MaxGroupBytes < 64<<10 || int64(o.MaxGroupBytes) > o.SegmentSize {
		return fmt.Errorf("blocklog: MaxGroupBytes %d out of range [65536, SegmentSize %d]", o.MaxGroupBytes, o.SegmentSize)
	}
	if o.PreallocMaxGroup < 0 || (o.PreallocMaxGroup > 0 && o.PreallocMaxGroup < MinPreallocMaxGroup) {
		return fmt.Errorf("blocklog: PreallocMaxGroup %d out of range: 0 (never pause) or at least %d", o.PreallocMaxGroup, MinPreallocMaxGroup)
	}
	if o.CompactRatio == 0 {
		o.CompactRatio = DefaultCompactRatio
	}
	if !(o.CompactRatio > 0 && o.CompactRatio <= 1) {
		return fmt.Errorf("blocklog: CompactRatio %v out of range (0, 1]", o.CompactRatio)
	}
	if o.CompactRate == 0 {
		o.CompactRate = DefaultCompactRate
	}
	if o.CompactRate < 1<<20 {
		return fmt.Errorf("blocklog: CompactRate %d below the minimum 1 MiB/s", o.CompactRate)
	}
	if o.CompactInterval == 0 {
		o.CompactInterval = DefaultCompactInterval
	}
	return nil
}

// syncParallel is how many group fsyncs may run at once with Options.Sync.
// 4 until 2026-11-28: with 32 writers of 16 KiB (a `pin add` of small
// blocks) 2 made groups of 2.9-3.4 records instead of 2.0-2.2, a third
// fewer fdatasyncs, and the fetch 12% faster; 8 writers of 1-256 KiB (W6)
// did the same at 2 and at 4 (docs/blocklog.md, "Group commit at
// sync=true, fourth pass").
const syncParallel = 2

// entry locates a key's newest put: the record starts at off in segment seg
// and its value is vlen bytes.
type entry struct {
	seg  uint32
	off  uint32
	vlen uint32
}

// IndexBytesPerBlock is the stated bound on the index's memory per block,
// excluding the key bytes themselves: a Go swiss-table slot of a 16-byte
// string header and a 12-byte entry (32 bytes with alignment) plus a control
// byte, at the load factor Go's tables keep (7/16 to 7/8, lower just after a
// split), and the tables' directory: 38 to 96 bytes. A Kubo block key ("/"
// + base32 of a 34-byte multihash, 56 bytes) adds a 64-byte allocation, so
// a block costs at most 160 bytes; TestIndexMemoryAt1M measures ~148 at one
// million blocks.
const IndexBytesPerBlock = 96

// segment is one log file.
type segment struct {
	id   uint32
	gen  uint64
	path string
	f    *os.File
	size atomic.Int64 // bytes in the file (header included)
	// live and tomb are the bytes of the records the index points at and of
	// the tombstones; guarded by Datastore.mu.
	live, tomb int64
	refs       atomic.Int32 // 1 for the store, plus one per reader
	unlink     atomic.Bool  // remove the file when the last ref goes

	// The active segment's zero-filled tail (Options.Sync; see prealloc.go),
	// guarded by zmu. reserved is the end of the last group the committer
	// wrote or is writing: nothing below it is ever zero-filled. zeroed is
	// how far the file holds written zeros (or records), durable how far
	// those are fdatasynced, so that a group written below durable changes
	// neither the file's size nor its block map. sealed stops the filling.
	zmu                       sync.Mutex
	reserved, zeroed, durable int64
	sealed, zeroFailed        bool

	// hint holds the hint entries (hint.go) of every record in this
	// segment, while hintLive: those recovery replayed (the active segment
	// found at Open) and those the committer wrote since. writeHint uses
	// them at seal instead of reading the segment back. Only the active
	// segment keeps them, and only up to maxHintBuffer. Written by recovery
	// and then the committer; read by the hint writer once sealed.
	hint     []byte
	hintLive bool
}

func (s *segment) acquire() { s.refs.Add(1) }

func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.f.Close()
		if s.unlink.Load() {
			os.Remove(s.path)
		}
	}
}

func segName(id uint32) string  { return fmt.Sprintf("%08d.log", id) }
func hintName(id uint32) string { return fmt.Sprintf("%08d.hint", id) }

// Datastore is the log store. It implements ds.Batching and
// ds.PersistentDatastore; it is safe for concurrent use.
type Datastore struct {
	dir  string
	opts Options
	lock *os.File

	mu     sync.RWMutex
	index  map[string]entry
	segs   map[uint32]*segment
	active *segment // written by the committer only; swapped under mu
	// unsynced maps each key whose latest put is written but whose group's
	// fsync has not returned yet to that group (Options.Sync only), so
	// that Has can wait for it (see Has).
	unsynced map[string]*group
	// syncGate, when set (tests), runs before each group's fsync.
	syncGate func()

	cmu    sync.Mutex
	cur    *group
	queue  []*group // full groups waiting for the committer, oldest first
	closed bool
	kick   chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
	broken atomic.Pointer[error] // a write failure that could not be undone

	syncSem chan struct{} // bounds concurrent group fsyncs (Options.Sync)
	zkick   chan struct{} // wakes the preallocator (Options.Sync)
	// groupAvg is the moving average of the group commits' bytes (written
	// by the committer only); the preallocator extends the zero-filled
	// tail only while it is below Options.PreallocMaxGroup.
	groupAvg atomic.Int64

	compactMu  sync.Mutex // one compaction at a time
	compactNow chan struct{}

	st counters
}

// Open opens (creating if needed) the store in dir, recovering the log.
func Open(dir string, opts Options) (*Datastore, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("blocklog: empty path")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blocklog: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	d := &Datastore{
		dir: dir, opts: opts, lock: lock,
		index: make(map[string]entry), segs: make(map[uint32]*segment), unsynced: make(map[string]*group),
		cur: newGroup(), kick: make(chan struct{}, 1), stop: make(chan struct{}),
		compactNow: make(chan struct{}, 1), syncSem: make(chan struct{}, syncParallel),
		zkick: make(chan struct{}, 1),
	}
	t0 := time.Now()
	if err := d.recover(); err != nil {
		d.closeFiles()
		return nil, err
	}
	d.st.openTime.Store(int64(time.Since(t0)))
	log.Infow("opened", "dir", dir, "segments", len(d.segs), "keys", len(d.index), "took", time.Since(t0))
	d.wg.Add(2)
	go d.committer()
	go d.compactor()
	if d.preallocating() {
		d.wg.Add(1)
		go d.preallocator()
		d.kickPrealloc()
	}
	return d, nil
}

func (d *Datastore) closeFiles() {
	for _, s := range d.segs {
		s.release()
	}
	d.segs = nil
	if d.lock != nil {
		d.lock.Close()
	}
}

func (d *Datastore) checkKey(key ds.Key) (string, error) {
	k := key.String()
	if len(k) > MaxKeyLen {
		return "", fmt.Errorf("blocklog: key of %d bytes above the maximum %d", len(k), MaxKeyLen)
	}
	return k, nil
}

// Put stores value under key; it returns once the group holding the write
// reached the kernel (and the disk, with Options.Sync).
func (d *Datastore) Put(_ context.Context, key ds.Key, value []byte) error {
	k, err := d.checkKey(key)
	if err != nil {
		return err
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("blocklog: value of %d bytes above the maximum %d", len(value), MaxValueLen)
	}
	return d.submit([]op{{kind: kindPut, key: k, val: value}})
}

// Delete writes a tombstone for key; deleting a missing key is not an error
// and writes nothing.
func (d *Datastore) Delete(_ context.Context, key ds.Key) error {
	k, err := d.checkKey(key)
	if err != nil {
		return err
	}
	d.mu.RLock()
	_, ok := d.index[k]
	d.mu.RUnlock()
	if !ok {
		return nil
	}
	return d.submit([]op{{kind: kindDelete, key: k}})
}

// Get reads key's value, checking the record's checksum.
func (d *Datastore) Get(_ context.Context, key ds.Key) ([]byte, error) {
	k := key.String()
	d.mu.RLock()
	e, ok := d.index[k]
	if !ok {
		d.mu.RUnlock()
		return nil, ds.ErrNotFound
	}
	// The ref keeps the file open: a compaction that replaces or removes
	// the segment meanwhile leaves this descriptor on the old inode, which
	// still holds the record at e.off.
	s := d.segs[e.seg]
	s.acquire()
	d.mu.RUnlock()
	defer s.release()
	n := recordLen(len(k), int(e.vlen))
	buf := make([]byte, n)
	if _, err := s.f.ReadAt(buf, int64(e.off)); err != nil {
		return nil, fmt.Errorf("blocklog: read %s at %d: %w", s.path, e.off, err)
	}
	return checkRecord(buf, k, s, e.off)
}

// Has reports whether key is stored, from the index alone. With
// Options.Sync, a key whose put is written but not yet fsynced is
// reported only once the fsync returns: a caller that skips its own put
// because the key is there (boxo's blockstore does) must not be answered
// before the other put is durable.
func (d *Datastore) Has(ctx context.Context, key ds.Key) (bool, error) {
	k := key.String()
	d.mu.RLock()
	_, ok := d.index[k]
	g := d.unsynced[k]
	d.mu.RUnlock()
	if ok && g != nil {
		select {
		case <-g.done:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		if g.err != nil {
			return false, g.err
		}
	}
	return ok, nil
}

// GetSize returns the value's length from the index, without reading it.
func (d *Datastore) GetSize(_ context.Context, key ds.Key) (int, error) {
	d.mu.RLock()
	e, ok := d.index[key.String()]
	d.mu.RUnlock()
	if !ok {
		return -1, ds.ErrNotFound
	}
	return int(e.vlen), nil
}

// Sync makes every acknowledged write durable on disk: it fsyncs the active
// segment (sealed segments were fsynced when sealed). With Options.Sync it
// has nothing to do.
func (d *Datastore) Sync(_ context.Context, _ ds.Key) error {
	if d.opts.Sync {
		return nil
	}
	return d.submitSync()
}

// DiskUsage is the total size of the segment files, the active segment's
// zero-filled tail (Options.Sync) included.
func (d *Datastore) DiskUsage(context.Context) (uint64, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var n int64
	for _, s := range d.segs {
		n += s.size.Load()
	}
	if a := d.active; a != nil {
		a.zmu.Lock()
		n += max(a.zeroed-a.size.Load(), 0)
		a.zmu.Unlock()
	}
	return uint64(n), nil
}

// LiveUsage is the bytes of the records the index points at: DiskUsage
// without the garbage compaction reclaims. A tiered store sizes its tier by
// it (tiered.LiveUsage), so demoting a block frees room at once.
func (d *Datastore) LiveUsage(context.Context) (uint64, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var n int64
	for _, s := range d.segs {
		n += s.live
	}
	return uint64(max(n, 0)), nil
}

// Close waits for pending writes, fsyncs the active segment and closes the
// files. Later calls return nil.
func (d *Datastore) Close() error {
	d.cmu.Lock()
	if d.closed {
		d.cmu.Unlock()
		return nil
	}
	d.closed = true
	d.cmu.Unlock()
	close(d.stop)
	d.wg.Wait()
	var err error
	d.mu.Lock()
	if d.active != nil {
		if e := d.active.f.Sync(); e != nil {
			err = fmt.Errorf("blocklog: close: fsync %s: %w", d.active.path, e)
		}
	}
	d.closeFiles()
	d.mu.Unlock()
	return err
}

var (
	_ ds.Batching            = (*Datastore)(nil)
	_ ds.PersistentDatastore = (*Datastore)(nil)
)

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (d *Datastore) path(name string) string { return filepath.Join(d.dir, name) }
