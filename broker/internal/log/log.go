package log

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/log/producer"
)

// Log is one partition's log. See the package documentation for the
// on-disk format and the concurrency rules.
type Log struct {
	dir    string
	now    func() time.Time
	logger *slog.Logger
	cfg    atomic.Pointer[Config]
	// direct makes appends bypass the page cache (direct.go).
	direct atomic.Bool
	// tcache keeps what direct appends write for the tail's readers
	// (tailcache.go); nil for none.
	tcache atomic.Pointer[TailCache]
	// directReads reads what neither cache holds with O_DIRECT
	// (direct_read.go); nil for none.
	directReads atomic.Pointer[DirectReads]
	// ahead is the last direct read-ahead not yet claimed, and aheadWG
	// counts the read-aheads' goroutines (direct_read.go). aheadMu
	// guards starting one against Close, which sets aheadClosed.
	ahead       atomic.Pointer[ahead]
	aheadWG     sync.WaitGroup
	aheadMu     sync.Mutex
	aheadClosed bool

	// cleaning is the compaction state (clean.go).
	cleaning cleanState

	appendMu sync.Mutex // serialises writers; guards the following
	// active is the segment appends go to, the last of segments.
	active *segment
	// producers is the producer state: epochs, recent sequence numbers
	// and open transactions of every producer id that wrote here.
	producers *producer.State
	// pbatches is scratch space for checkProducersLocked: one entry per
	// batch of the append being checked.
	pbatches []producer.Batch

	// firstUnstable mirrors producers.FirstUnstableOffset for readers;
	// written under appendMu.
	firstUnstable atomic.Int64

	flushMu sync.Mutex // serialises fsyncs; guards the following
	// syncedDirGen is the dirGen the last directory fsync covered.
	syncedDirGen int64

	// flushed is the offset below which every record is durable. Written
	// under flushMu, read anywhere.
	// Invariant: flushed <= end.
	flushed atomic.Int64
	// flushes counts flushes performed and flushWaiters the callers queued
	// for flushMu: how group commit is observed.
	flushes      atomic.Int64
	flushWaiters atomic.Int32
	// syncs counts the fdatasyncs of segments the flushes made, where a
	// synchronized write did not make one needless (flushPending).
	syncs atomic.Int64
	// dropMark is the offset below which the flush loop last dropped
	// (or found too little to drop) cached pages (cache.go); written by
	// the flush loop alone. dropPasses counts its passes, for tests.
	dropMark   atomic.Int64
	dropPasses atomic.Int64

	writeMu sync.Mutex // serialises WaitWritten's writes
	// written is the offset below which every record is in the segment
	// files, as WaitWritten last saw (flushed may be past it). Written
	// under writeMu, read anywhere.
	written atomic.Int64

	// readAll is the offset below which every reader has fetched, as
	// the owner says (DropCachedBelow); cacheDropped counts the bytes
	// dropped from the page cache since.
	readAll      atomic.Int64
	cacheDropped atomic.Int64

	mu sync.RWMutex // guards the following, and segment.pub
	// segments are sorted by base offset; the last is the active one.
	// Invariant: never empty while the log is open.
	segments []*segment
	// dirGen counts segment files created, so a flush knows whether the
	// directory needs an fsync.
	dirGen int64
	// maxTsHit caches MaxTimestamp's record lookup.
	maxTsHit maxTsHit
	// epochs is the leader epoch history (epochs.go), written by the
	// holder of appendMu, which may read it without mu.
	epochs []EpochEntry

	// start, end and size are written under mu (by the holder of
	// appendMu) and read without it.
	// Invariant: start <= end.
	start atomic.Int64 // log start offset
	end   atomic.Int64 // log end offset: the next offset to assign
	size  atomic.Int64 // bytes in all segments

	// err is the sticky write error: once set, appends and flushes fail.
	err    atomic.Pointer[error]
	closed atomic.Bool
	// pins are the file regions handed out by ReadRegion (region.go).
	pins pinSet

	kick     chan struct{} // wakes flushLoop; buffered 1
	dropKick chan struct{} // wakes flushLoop to drop pages; buffered 1
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Open opens the log in dir, which must exist, recovering what is there:
// an empty directory makes an empty log at offset 0.
func Open(dir string, cfg Config, opts ...Option) (*Log, error) {
	o := options{now: time.Now, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("log: open: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("log: open: %s is not a directory", dir)
	}
	l := &Log{
		dir:      dir,
		now:      o.now,
		logger:   o.logger,
		kick:     make(chan struct{}, 1),
		dropKick: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	l.cfg.Store(&cfg)
	l.direct.Store(directWritesAtOpen)
	l.tcache.Store(tailCacheAtOpen)
	l.directReads.Store(directReadsAtOpen)
	if err := l.recover(); err != nil {
		for _, s := range l.segments {
			s.f.Close()
		}
		return nil, err
	}
	l.wg.Add(1)
	go func() { defer l.wg.Done(); l.flushLoop() }()
	return l, nil
}

// StartOffset is the log start offset: the first offset a Read may ask
// for.
func (l *Log) StartOffset() int64 { return l.start.Load() }

// EndOffset is the log end offset: the offset the next appended record
// gets.
func (l *Log) EndOffset() int64 { return l.end.Load() }

// Size is the bytes in all segment files.
func (l *Log) Size() int64 { return l.size.Load() }

// Dir is the directory holding the log.
func (l *Log) Dir() string { return l.dir }

// Config returns the configuration in force.
func (l *Log) Config() Config { return *l.cfg.Load() }

// SetConfig replaces the configuration; it applies from the next append,
// flush or retention pass.
func (l *Log) SetConfig(cfg Config) error {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if l.closed.Load() {
		return ErrClosed
	}
	l.cfg.Store(&cfg)
	l.wake()
	return nil
}

// wake nudges the flush loop to look at the unflushed count and config.
func (l *Log) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// fail makes err the sticky error, if there is none yet, and returns the
// sticky error.
func (l *Log) fail(err error) error {
	err = fmt.Errorf("log: write failed, log needs reopening: %w", err)
	if l.err.CompareAndSwap(nil, &err) {
		l.logger.Error("log write failed", "dir", l.dir, "err", err)
	}
	return *l.err.Load()
}

// broken returns the sticky error or nil.
func (l *Log) broken() error {
	if p := l.err.Load(); p != nil {
		return *p
	}
	return nil
}

// publishLocked makes the appender's view of s visible to readers.
// REQUIRES: l.appendMu and l.mu held.
func (l *Log) publishLocked(s *segment) {
	s.pub = s.w
}

// Close flushes unflushed data, writes the active segment's indexes and
// closes the files. Reads in flight fail with ErrClosed. Closing twice is
// a no-op.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Swap(true) {
		return nil
	}
	close(l.stop)
	l.wg.Wait()
	// Regions still being sent must stop before the files can change
	// (a closed log may be truncated in place).
	l.revokeAll()
	l.closeAhead()

	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	var errs []error
	if l.broken() == nil {
		errs = append(errs, l.flushLocked())
		errs = append(errs, l.active.seal())
		l.writeSnapshotLocked()
	}
	l.mu.Lock()
	l.publishLocked(l.active)
	segs := l.segments
	l.mu.Unlock()
	for _, s := range segs {
		s.dropCache()
		if s.dio.f != nil { // a broken log's active segment, not sealed
			s.wmu.Lock()
			s.stopZeroing()
			s.wmu.Unlock()
			s.dio.f.Close()
		}
		if err := s.f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	cerr := l.Close()
	l.cleaning.mu.Lock() // a clean in progress stops once the log is closed
	l.cleaning.mu.Unlock()
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("log: delete: %w", err)
	}
	if cerr != nil && !errors.Is(cerr, ErrClosed) {
		l.logger.Warn("close before delete", "dir", l.dir, "err", cerr)
	}
	return nil
}
