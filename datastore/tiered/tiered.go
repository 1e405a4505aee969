package tiered

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
)

// Errors. Messages start with the package name.
var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("tiered: datastore closed")
	// ErrCorrupt wraps a value whose frame does not decode.
	ErrCorrupt = errors.New("tiered: corrupt value frame")
	// ErrNoTiers is returned by New without a durable tier.
	ErrNoTiers = errors.New("tiered: at least one durable tier is required")
)

// Tier is one durable tier handed to New.
type Tier struct {
	// Name labels the tier in stats and metrics ("fast", "slow", a path).
	Name string
	// Child holds the tier's blocks. Close closes it.
	Child ds.Datastore
	// Capacity is the tier's size in bytes; the mover demotes blocks when
	// the child's usage passes HighWatermark of it. 0 means unbounded.
	Capacity uint64
}

// Options configure a Datastore. The zero value of each tunable takes its
// default.
type Options struct {
	// MemoryCapacity is the read cache's byte budget; 0 means no memory tier.
	MemoryCapacity uint64
	// Tiers are the durable tiers, fastest first. Writes land in Tiers[0].
	Tiers []Tier
	// CompressThreshold: values of at least this many bytes are compressed
	// with zstd when it saves 10% or more. Default 32 KiB; negative turns
	// compression off.
	CompressThreshold int
	// HighWatermark and LowWatermark are fractions of a tier's capacity: past
	// the high one the mover demotes the coldest blocks until usage is under
	// the low one. Defaults 0.90 and 0.80.
	HighWatermark, LowWatermark float64
	// MoverRate bounds the bytes the mover copies per second. Default 32 MiB/s.
	MoverRate uint64
	// MoverInterval is how often the mover checks watermarks and promotions.
	// Default 5s.
	MoverInterval time.Duration
	// PromoteHits is how many reads (decayed) a block in a slower tier needs
	// before the mover promotes it. Default 4.
	PromoteHits int
	// MemoryAdmitReads is how many reads (decayed, like PromoteHits) a block
	// needs before a read that missed the memory tier caches it, plus one
	// per 64 KiB of the block's size (see admitReads). Default 2:
	// a block read once (a bulk fetch, a one-off export) never enters the
	// cache, so it neither pushes hot blocks out nor makes the heap grow;
	// every cached value is fresh memory, which costs page faults to fill.
	// 1 caches on the first read.
	MemoryAdmitReads int
	// DecayPeriod: every DecayPeriod all access counts are halved. Default 10m.
	DecayPeriod time.Duration
	// MaxBatchBytes bounds one group commit. Default 64 MiB.
	MaxBatchBytes int
	// CommitConcurrency is the number of group commits each durable tier
	// runs at once. Default 8: up to 8 concurrent writers each commit alone
	// (flatfs sync=true keeps its parallel fsyncs, which its batches do not
	// beat); beyond that, puts that queue while commits run share a batch.
	CommitConcurrency int
	// Verify, if set, checks a value against its key (for blocks: the
	// multihash). At open it decides which copy of a key found in two tiers
	// survives; see Open.
	Verify func(key ds.Key, value []byte) bool
	// Clock returns the time; tests inject one. Default time.Now, read
	// by reads through a clock ticking every coarseTick (see now).
	Clock func() time.Time

	coarseClock bool // Clock is the default: reads use the coarse clock
}

func (o *Options) withDefaults() (Options, error) {
	c := *o
	if len(c.Tiers) == 0 {
		return c, ErrNoTiers
	}
	if len(c.Tiers) > 15 {
		return c, fmt.Errorf("tiered: at most 15 durable tiers, got %d", len(c.Tiers))
	}
	for i, t := range c.Tiers {
		if t.Child == nil {
			return c, fmt.Errorf("tiered: tier %d (%q) has no child datastore", i, t.Name)
		}
		if t.Name == "" {
			c.Tiers[i].Name = fmt.Sprintf("tier%d", i)
		}
	}
	if c.CompressThreshold == 0 {
		c.CompressThreshold = 32 << 10
	}
	if c.HighWatermark == 0 {
		c.HighWatermark = 0.90
	}
	if c.LowWatermark == 0 {
		c.LowWatermark = 0.80
	}
	if c.HighWatermark <= 0 || c.HighWatermark > 1 || c.LowWatermark <= 0 || c.LowWatermark >= c.HighWatermark {
		return c, fmt.Errorf("tiered: watermarks must satisfy 0 < low < high <= 1, got low %v high %v", c.LowWatermark, c.HighWatermark)
	}
	if c.MoverRate == 0 {
		c.MoverRate = 32 << 20
	}
	if c.MoverInterval <= 0 {
		c.MoverInterval = 5 * time.Second
	}
	if c.PromoteHits <= 0 {
		c.PromoteHits = 4
	}
	if c.MemoryAdmitReads <= 0 {
		c.MemoryAdmitReads = 2
	}
	if c.DecayPeriod <= 0 {
		c.DecayPeriod = 10 * time.Minute
	}
	if c.CommitConcurrency <= 0 {
		c.CommitConcurrency = 8
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 64 << 20
	}
	if c.Clock == nil {
		c.Clock = time.Now
		c.coarseClock = true
	}
	return c, nil
}

// Datastore is the tiered store. It implements ds.Batching and
// ds.PersistentDatastore over its tiers:
//
//   - Get looks in the memory tier, then asks the location index which
//     durable tier holds the key and reads it there; a key the index does
//     not know is ds.ErrNotFound without touching any tier.
//   - Put writes to the tier that already holds the key, else to the first
//     durable tier, through that tier's group committer; it returns once the
//     child batch holding it has committed.
//   - Delete of a missing key is not an error.
//   - Query lists every durable tier and yields each key once.
//
// Values returned by Get may be shared with the memory tier: do not modify
// them.
type Datastore struct {
	opts    Options
	mem     *memTier // nil without a memory tier
	tiers   []*durable
	idx     *index
	codec   *codec
	stripes [256]sync.Mutex // per-key write locks, by hash; lock order: ascending stripe
	opened  time.Time

	promote     chan ds.Key
	promoteDrop atomic.Uint64
	absent      atomic.Uint64
	promotions  atomic.Uint64
	demotions   atomic.Uint64
	compressed  atomic.Uint64
	savedBytes  atomic.Uint64
	resolved    atomic.Uint64 // keys found in two tiers at open
	seconds     atomic.Uint32 // seconds since opened, kept by tickClock

	live     sync.RWMutex // read-held by every call; Close takes it to wait for them
	closed   atomic.Bool
	closeCh  chan struct{}
	wg       sync.WaitGroup
	closeErr error
	closeMu  sync.Mutex
}

// durable is one durable tier and its group committer.
type durable struct {
	Tier
	n       int
	commits chan *commitReq
	hits    atomic.Uint64
	tracked atomic.Int64 // bytes written minus deleted, for children without DiskUsage
	// reportsUsage: the child is a PersistentDatastore whose DiskUsage was
	// non-zero at open (a wrapped in-memory map reports 0 and is tracked).
	reportsUsage bool
	batches      atomic.Uint64
	batched      atomic.Uint64
	promoted     atomic.Uint64 // blocks moved into this tier from a slower one
	demoted      atomic.Uint64 // blocks moved out of this tier to a slower one
}

var (
	_ ds.Batching            = (*Datastore)(nil)
	_ ds.PersistentDatastore = (*Datastore)(nil)
)

// Open builds the store over opts.Tiers, rebuilds the location index from
// the children's key listings, and starts the group committers and the
// mover.
//
// A key found in two tiers (a move interrupted by a crash, between the copy
// and the delete) is resolved so that one copy survives: the faster copy is
// kept if it equals the slower one or, when they differ, if opts.Verify
// accepts it; otherwise the slower copy is kept. The other copy is deleted.
// Rationale: a move copies, syncs, and only then deletes, so a complete copy
// exists in both places; when they differ one of them is damaged, and the
// verifier (content addressing) is the judge. Without a verifier the slower
// copy, which was either the source of a promotion or the synced
// destination of a demotion, is kept.
func Open(ctx context.Context, opts Options) (*Datastore, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Datastore{
		opts:    o,
		idx:     newIndex(),
		codec:   newCodec(o.CompressThreshold),
		opened:  o.Clock(),
		promote: make(chan ds.Key, 4096),
		closeCh: make(chan struct{}),
	}
	if o.MemoryCapacity > 0 {
		d.mem = newMemTier(o.MemoryCapacity)
	}
	for i, t := range o.Tiers {
		d.tiers = append(d.tiers, &durable{Tier: t, n: i, commits: make(chan *commitReq, 1024)})
	}
	if err := d.rebuild(ctx); err != nil {
		return nil, err
	}
	for _, t := range d.tiers {
		for range o.CommitConcurrency {
			d.wg.Add(1)
			go d.committer(t)
		}
	}
	d.wg.Add(1)
	go d.moverLoop()
	if o.coarseClock {
		d.wg.Add(1)
		go d.tickClock()
	}
	return d, nil
}

// coarseTick is how often the coarse clock is advanced.
const coarseTick = 250 * time.Millisecond

// now is the time in whole seconds since the store opened, for the index's
// access times. Every read calls it; with the default clock it is an
// atomic load of a value tickClock advances, since time.Now costs a
// quarter of a memory-tier hit's CPU on a VM whose clock source is
// kvm-clock (BenchmarkMemoryHit's profile).
func (d *Datastore) now() uint32 {
	if d.opts.coarseClock {
		return d.seconds.Load()
	}
	return uint32(d.opts.Clock().Sub(d.opened) / time.Second)
}

// tickClock advances the coarse clock until Close.
func (d *Datastore) tickClock() {
	defer d.wg.Done()
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	for {
		select {
		case <-d.closeCh:
			return
		case now := <-t.C:
			d.seconds.Store(uint32(now.Sub(d.opened) / time.Second))
		}
	}
}

func (d *Datastore) stripe(h uint64) *sync.Mutex { return &d.stripes[h&0xff] }

// Get returns the value of key, or ds.ErrNotFound.
func (d *Datastore) Get(ctx context.Context, key ds.Key) ([]byte, error) {
	if !d.enter() {
		return nil, ErrClosed
	}
	defer d.leave()
	ks := key.String()
	h := hashKey(key)
	if d.mem != nil {
		if v, ok := d.mem.cache.GetIfPresent(ks); ok {
			d.mem.hits.Add(1)
			d.idx.touch(h, d.now())
			return v, nil
		}
	}
	stored, t, err := d.getStored(ctx, key, h)
	if err != nil {
		return nil, err
	}
	return d.finishGet(key, ks, h, stored, t)
}

// finishGet decodes stored bytes read from tier t for a read that missed
// the memory tier, and does the read's bookkeeping: the miss, the access
// count, admission to the memory tier, and a promotion when the block is
// hot in a slower tier.
func (d *Datastore) finishGet(key ds.Key, ks string, h uint64, stored []byte, t *durable) ([]byte, error) {
	if d.mem != nil {
		// A miss counts only for a stored key: no data cache can serve a
		// read of a key that is not stored (the index answers those).
		d.mem.misses.Add(1)
	}
	v, err := d.codec.decode(stored)
	if err != nil {
		return nil, fmt.Errorf("tiered: get %s from tier %s: %w", key, t.Name, err)
	}
	state := uint8(stateRaw)
	if _, framed := parseHeader(stored); framed {
		state = stateFramed
	}
	if e, ok := d.idx.get(h); ok && e.state() != state {
		d.idx.setState(h, state)
	}
	e, ok := d.idx.touch(h, d.now())
	if d.mem != nil && ok && int(e.freq()) >= d.admitReads(len(v)) {
		d.mem.add(ks, v)
	} else if d.mem != nil {
		d.mem.deferred.Add(1)
	}
	// Queue a promotion when the block's count reaches PromoteHits, and
	// again every 4×PromoteHits reads if it is still here (the faster tier
	// may have had no room), not on every read.
	if ok && t.n > 0 &&
		(int(e.freq()) == d.opts.PromoteHits || int(e.freq())%(4*d.opts.PromoteHits) == 0) {
		select {
		case d.promote <- key:
		default:
			d.promoteDrop.Add(1)
		}
	}
	return v, nil
}

// admitSizeStep: a value needs one more read before the memory tier caches
// it for each admitSizeStep bytes of its size.
const admitSizeStep = 64 << 10

// admitReads is how many (decayed) reads a value of n bytes needs before a
// memory-tier miss caches it: MemoryAdmitReads, plus one per 64 KiB. A
// large block costs more to cache (fresh heap pages to fill) and saves less
// per hit (its read is mostly a copy the page cache serves), so it must
// prove itself hotter: 2 reads at 16 KiB, 6 at 256 KiB.
func (d *Datastore) admitReads(n int) int {
	return d.opts.MemoryAdmitReads + n/admitSizeStep
}

// getStored reads the stored bytes of key from the tier the index names. A
// miss there (a move just finished, or a hash collision) re-reads the
// index, then probes every tier.
func (d *Datastore) getStored(ctx context.Context, key ds.Key, h uint64) ([]byte, *durable, error) {
	e, ok := d.idx.get(h)
	if !ok {
		d.absent.Add(1)
		return nil, nil, ds.ErrNotFound
	}
	t := d.tiers[e.tier()]
	v, err := t.Child.Get(ctx, key)
	if err == nil {
		t.hits.Add(1)
		return v, t, nil
	}
	if !errors.Is(err, ds.ErrNotFound) {
		return nil, nil, fmt.Errorf("tiered: get %s from tier %s: %w", key, t.Name, err)
	}
	for _, t := range d.tiers {
		v, err := t.Child.Get(ctx, key)
		if err == nil {
			t.hits.Add(1)
			return v, t, nil
		}
		if !errors.Is(err, ds.ErrNotFound) {
			return nil, nil, fmt.Errorf("tiered: get %s from tier %s: %w", key, t.Name, err)
		}
	}
	d.absent.Add(1)
	return nil, nil, ds.ErrNotFound
}

// Has reports whether key is stored. It reads only the index.
func (d *Datastore) Has(_ context.Context, key ds.Key) (bool, error) {
	if !d.enter() {
		return false, ErrClosed
	}
	defer d.leave()
	_, ok := d.idx.get(hashKey(key))
	return ok, nil
}

// GetSize returns the size of key's value, or -1 and ds.ErrNotFound. It
// never decompresses: a compressed value's size is in its frame header.
func (d *Datastore) GetSize(ctx context.Context, key ds.Key) (int, error) {
	if !d.enter() {
		return -1, ErrClosed
	}
	defer d.leave()
	if d.mem != nil {
		if v, ok := d.mem.cache.GetIfPresent(key.String()); ok {
			return len(v), nil
		}
	}
	h := hashKey(key)
	e, ok := d.idx.get(h)
	if !ok {
		return -1, ds.ErrNotFound
	}
	if e.state() == stateRaw {
		t := d.tiers[e.tier()]
		n, err := t.Child.GetSize(ctx, key)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, ds.ErrNotFound) {
			return -1, fmt.Errorf("tiered: size of %s in tier %s: %w", key, t.Name, err)
		}
	}
	stored, _, err := d.getStored(ctx, key, h)
	if err != nil {
		return -1, err
	}
	if hd, ok := parseHeader(stored); ok {
		d.idx.setState(h, stateFramed)
		return hd.rawSize, nil
	}
	d.idx.setState(h, stateRaw)
	return len(stored), nil
}

// Put stores value under key and returns once the child batch holding it
// has committed. A key already stored is rewritten in its tier; a new key
// goes to the first durable tier, or to the next one if that tier's write
// fails (a full disk), and the errors are joined if every tier fails.
func (d *Datastore) Put(ctx context.Context, key ds.Key, value []byte) error {
	if !d.enter() {
		return ErrClosed
	}
	defer d.leave()
	stored, framed := d.encode(value)
	h := hashKey(key)
	mu := d.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	return d.putLocked(ctx, []kv{{key: key, h: h, stored: stored, framed: framed}})
}

func (d *Datastore) encode(v []byte) ([]byte, bool) {
	stored, framed := d.codec.encode(v)
	if framed && len(stored) < len(v) {
		d.compressed.Add(1)
		d.savedBytes.Add(uint64(len(v) - len(stored)))
	}
	return stored, framed
}

// putLocked writes kvs (their stripes locked by the caller): keys already
// stored go to their tier, new keys to the first tier that accepts them.
func (d *Datastore) putLocked(ctx context.Context, kvs []kv) error {
	byTier := map[int][]kv{}
	var fresh []kv
	for _, p := range kvs {
		if e, ok := d.idx.get(p.h); ok {
			byTier[e.tier()] = append(byTier[e.tier()], p)
		} else {
			fresh = append(fresh, p)
		}
	}
	var errs []error
	for ti, group := range byTier {
		if err := d.submit(ctx, d.tiers[ti], group); err != nil {
			errs = append(errs, err)
			continue
		}
		d.placed(ti, group)
	}
	if len(fresh) > 0 {
		var tierErrs []error
		ok := false
		for _, t := range d.tiers {
			err := d.submit(ctx, t, fresh)
			if err == nil {
				d.placed(t.n, fresh)
				ok = true
				break
			}
			tierErrs = append(tierErrs, err)
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				break
			}
		}
		if !ok {
			errs = append(errs, tierErrs...)
		} else if len(tierErrs) > 0 {
			// Written to a later tier; a failed batch may have left some
			// keys in an earlier one. Remove them so each key has one home.
			for _, p := range fresh {
				for _, t := range d.tiers {
					if e, _ := d.idx.get(p.h); t.n != e.tier() {
						_ = t.Child.Delete(ctx, p.key)
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (d *Datastore) placed(tier int, kvs []kv) {
	for _, p := range kvs {
		state := uint8(stateRaw)
		if p.framed {
			state = stateFramed
		}
		d.idx.place(p.h, tier, state)
		d.tiers[tier].tracked.Add(int64(len(p.stored)))
		if d.mem != nil {
			d.mem.remove(p.key.String())
		}
	}
}

// Delete removes key from its tier and the memory tier.
func (d *Datastore) Delete(ctx context.Context, key ds.Key) error {
	if !d.enter() {
		return ErrClosed
	}
	defer d.leave()
	h := hashKey(key)
	mu := d.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	return d.deleteLocked(ctx, key, h)
}

func (d *Datastore) deleteLocked(ctx context.Context, key ds.Key, h uint64) error {
	if d.mem != nil {
		d.mem.remove(key.String())
	}
	e, ok := d.idx.get(h)
	if !ok {
		return nil
	}
	t := d.tiers[e.tier()]
	if !t.reportsUsage {
		if n, err := t.Child.GetSize(ctx, key); err == nil {
			t.tracked.Add(-int64(n))
		}
	}
	if err := t.Child.Delete(ctx, key); err != nil && !errors.Is(err, ds.ErrNotFound) {
		return fmt.Errorf("tiered: delete %s from tier %s: %w", key, t.Name, err)
	}
	d.idx.remove(h)
	return nil
}

// Sync syncs every durable tier.
func (d *Datastore) Sync(ctx context.Context, prefix ds.Key) error {
	if !d.enter() {
		return ErrClosed
	}
	defer d.leave()
	var errs []error
	for _, t := range d.tiers {
		if err := t.Child.Sync(ctx, prefix); err != nil {
			errs = append(errs, fmt.Errorf("tiered: sync tier %s: %w", t.Name, err))
		}
	}
	return errors.Join(errs...)
}

// DiskUsage sums the durable children's disk usage; a child that does not
// report one counts the bytes written to it through this store.
func (d *Datastore) DiskUsage(ctx context.Context) (uint64, error) {
	if !d.enter() {
		return 0, ErrClosed
	}
	defer d.leave()
	var sum uint64
	for _, t := range d.tiers {
		n, err := t.diskUsed(ctx)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// LiveUsage is implemented by a child whose DiskUsage counts space it
// reclaims by itself, such as an append-only log's deleted records. The
// tier's usage is then its live bytes: otherwise each block the mover
// demotes would leave the usage unchanged until a compaction, and the mover
// would keep demoting, down to an empty tier.
type LiveUsage interface {
	// LiveUsage returns the bytes the child would occupy without garbage.
	LiveUsage(ctx context.Context) (uint64, error)
}

// used is the tier's usage against its capacity: the child's live bytes if
// it reports them, else its size on disk.
func (t *durable) used(ctx context.Context) (uint64, error) {
	if p, ok := t.Child.(LiveUsage); ok {
		n, err := p.LiveUsage(ctx)
		if err != nil {
			return 0, fmt.Errorf("tiered: live usage of tier %s: %w", t.Name, err)
		}
		return n, nil
	}
	return t.diskUsed(ctx)
}

// diskUsed is the tier's size on disk, garbage included: what DiskUsage
// (`ipfs repo stat`) reports.
func (t *durable) diskUsed(ctx context.Context) (uint64, error) {
	if p, ok := t.Child.(ds.PersistentDatastore); ok && t.reportsUsage {
		n, err := p.DiskUsage(ctx)
		if err != nil {
			return 0, fmt.Errorf("tiered: disk usage of tier %s: %w", t.Name, err)
		}
		return n, nil
	}
	return uint64(max(t.tracked.Load(), 0)), nil
}

// Close stops the mover, flushes the group committers, and closes the
// children. It is safe to call more than once.
func (d *Datastore) Close() error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed.Load() {
		return d.closeErr
	}
	d.live.Lock() // waits for calls in flight
	d.closed.Store(true)
	d.live.Unlock()
	close(d.closeCh)
	d.wg.Wait()
	var errs []error
	for _, t := range d.tiers {
		if err := t.Child.Sync(context.Background(), ds.NewKey("/")); err != nil {
			errs = append(errs, fmt.Errorf("tiered: sync tier %s: %w", t.Name, err))
		}
		if err := t.Child.Close(); err != nil {
			errs = append(errs, fmt.Errorf("tiered: close tier %s: %w", t.Name, err))
		}
	}
	d.closeErr = errors.Join(errs...)
	return d.closeErr
}

// lockStripes locks the stripes of kvs in ascending order and returns the
// unlock function.
func (d *Datastore) lockStripes(hs []uint64) func() {
	idx := make([]int, 0, len(hs))
	seen := [256]bool{}
	for _, h := range hs {
		if i := int(h & 0xff); !seen[i] {
			seen[i] = true
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	for _, i := range idx {
		d.stripes[i].Lock()
	}
	return func() {
		for _, i := range idx {
			d.stripes[i].Unlock()
		}
	}
}

// enter admits a call unless the store is closed; leave ends it.
func (d *Datastore) enter() bool {
	d.live.RLock()
	if d.closed.Load() {
		d.live.RUnlock()
		return false
	}
	return true
}

func (d *Datastore) leave() { d.live.RUnlock() }
