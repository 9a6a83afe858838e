package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Clock is the coordinator's time source and timer factory. Tests inject a
// manual one; the broker uses RealClock.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f on its own goroutine after d, unless the
	// returned stop function is called first.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// RealClock is a Clock whose timers are the runtime's and whose Now is
// now (time.Now when nil).
func RealClock(now func() time.Time) Clock {
	if now == nil {
		now = time.Now
	}
	return realClock{now}
}

type realClock struct{ now func() time.Time }

func (c realClock) Now() time.Time { return c.now() }
func (c realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Partition is one partition of __consumer_offsets that this broker leads.
type Partition interface {
	// Append appends one batch and returns a function that blocks until
	// the batch is durable (as an acks=all produce), or ctx ends.
	Append(batch []byte) (wait func(context.Context) error, err error)
	// Read returns whole batches from the one holding offset, below the
	// high watermark: at least one batch when any is there, about
	// maxBytes otherwise; nothing at the end.
	Read(offset int64, maxBytes int32) ([]byte, error)
	StartOffset() int64
	HighWatermark() int64
}

// Config configures a Coordinator. Field comments give the default and the
// Kafka broker property each corresponds to.
type Config struct {
	// Partitions is the partition count of __consumer_offsets, which
	// places groups (offsets.topic.num.partitions). Required.
	Partitions int32
	// InitialRebalanceDelay holds an empty group's first rebalance open
	// for more members (group.initial.rebalance.delay.ms). Zero is none.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (group.min.session.timeout.ms, default 6s;
	// group.max.session.timeout.ms, default 30 minutes).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// MaxSize bounds a group's members (group.max.size). Default
	// unlimited.
	MaxSize int
	// OffsetsRetention is how long the offsets of an empty group live
	// (offsets.retention.minutes). Default 7 days.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is how often expired offsets are
	// removed (offsets.retention.check.interval.ms). Default 10 minutes.
	OffsetsRetentionCheckInterval time.Duration
	// MaxMetadataBytes bounds an offset's metadata string
	// (offset.metadata.max.bytes). Default 4096.
	MaxMetadataBytes int
	// PartitionExists reports whether a topic partition exists; commits
	// to others fail with UNKNOWN_TOPIC_OR_PARTITION. Default: all do.
	PartitionExists func(topic string, partition int32) bool
	// Clock is the time source. Default RealClock(time.Now).
	Clock Clock
	// Logger receives the coordinator's log. Default: discard.
	Logger *slog.Logger
}

func (c *Config) ensureDefaults() {
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = 6 * time.Second
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	if c.MaxSize <= 0 {
		c.MaxSize = math.MaxInt32
	}
	if c.OffsetsRetention == 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.OffsetsRetentionCheckInterval == 0 {
		c.OffsetsRetentionCheckInterval = 10 * time.Minute
	}
	if c.MaxMetadataBytes == 0 {
		c.MaxMetadataBytes = 4096
	}
	if c.PartitionExists == nil {
		c.PartitionExists = func(string, int32) bool { return true }
	}
	if c.Clock == nil {
		c.Clock = RealClock(nil)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// PartitionFor is the __consumer_offsets partition that holds group, as
// Kafka computes it: Java's String.hashCode over UTF-16 code units, made
// non-negative with Utils.abs (x & 0x7fffffff), modulo n.
func PartitionFor(group string, n int32) int32 {
	var h int32
	for _, r := range group {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			h = 31*h + r1
			h = 31*h + r2
			continue
		}
		h = 31*h + r
	}
	return (h & 0x7fffffff) % n
}

// Coordinator is the group coordinator of one broker.
type Coordinator struct {
	cfg   Config
	clock Clock
	log   *slog.Logger

	mu sync.Mutex // guards the following; never held while taking a shard's
	// shards are the __consumer_offsets partitions this broker leads.
	shards     map[int32]*shard
	closed     bool
	stopExpiry func() bool

	wg sync.WaitGroup // loaders and running timer callbacks
}

// New returns a coordinator that leads no partition yet; add them with
// AddPartition.
func New(cfg Config) (*Coordinator, error) {
	cfg.ensureDefaults()
	if cfg.Partitions < 1 {
		return nil, fmt.Errorf("group: %d offsets topic partitions; need at least 1", cfg.Partitions)
	}
	if cfg.MinSessionTimeout > cfg.MaxSessionTimeout {
		return nil, fmt.Errorf("group: min session timeout %v above max %v", cfg.MinSessionTimeout, cfg.MaxSessionTimeout)
	}
	c := &Coordinator{cfg: cfg, clock: cfg.Clock, log: cfg.Logger, shards: make(map[int32]*shard)}
	c.mu.Lock()
	c.scheduleExpiryLocked()
	c.mu.Unlock()
	return c, nil
}

// afterFunc arms a timer whose callback is counted in c.wg and does not
// run once the coordinator is closed.
func (c *Coordinator) afterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.afterFuncLocked(d, f)
}

// REQUIRES: c.mu held.
func (c *Coordinator) afterFuncLocked(d time.Duration, f func()) func() bool {
	if c.closed {
		return func() bool { return false }
	}
	return c.clock.AfterFunc(d, func() {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		c.wg.Add(1)
		c.mu.Unlock()
		defer c.wg.Done()
		f()
	})
}

// REQUIRES: c.mu held.
func (c *Coordinator) scheduleExpiryLocked() {
	c.stopExpiry = c.afterFuncLocked(c.cfg.OffsetsRetentionCheckInterval, func() {
		c.ExpireOffsets()
		c.mu.Lock()
		c.scheduleExpiryLocked()
		c.mu.Unlock()
	})
}

// AddPartition makes this broker the coordinator of the groups in
// partition index of __consumer_offsets. The partition is replayed in the
// background; its groups answer COORDINATOR_LOAD_IN_PROGRESS until then.
func (c *Coordinator) AddPartition(index int32, p Partition) {
	s := &shard{c: c, index: index, part: p, groups: make(map[string]*group), pending: make(map[int64]pendingOffsets)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.shards[index] = s
	c.wg.Add(1)
	go func() { defer c.wg.Done(); s.load() }()
}

// WaitLoaded blocks until every partition added so far is loaded, or ctx
// ends.
func (c *Coordinator) WaitLoaded(ctx context.Context) error {
	for _, s := range c.shardList() {
		select {
		case <-s.loadedCh():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (c *Coordinator) shardList() []*shard {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*shard, 0, len(c.shards))
	for _, s := range c.shards {
		out = append(out, s)
	}
	return out
}

// Close stops every timer and waits for loaders and timer callbacks.
// Requests still waiting on a group return when their context ends.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.stopExpiry()
	shards := make([]*shard, 0, len(c.shards))
	for _, s := range c.shards {
		shards = append(shards, s)
	}
	c.mu.Unlock()
	for _, s := range shards {
		s.mu.Lock()
		for _, g := range s.groups {
			g.stopTimersLocked()
		}
		s.mu.Unlock()
	}
	c.wg.Wait()
}

// lookup finds the shard of a group and locks it. It returns a Kafka error
// code instead when the group's coordinator is elsewhere or not ready;
// then nothing is locked.
func (c *Coordinator) lookup(groupID string) (*shard, int16) {
	idx := PartitionFor(groupID, c.cfg.Partitions)
	c.mu.Lock()
	s, closed := c.shards[idx], c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return nil, kerr.CoordinatorNotAvailable.Code
	case s == nil:
		return nil, kerr.NotCoordinator.Code
	}
	s.mu.Lock()
	if !s.loaded {
		s.mu.Unlock()
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	return s, 0
}

// shard is one __consumer_offsets partition's groups.
type shard struct {
	c     *Coordinator
	index int32
	part  Partition

	mu sync.Mutex // guards the following
	// loaded is set once the partition is replayed; until then groups is
	// empty and every request is refused.
	loaded bool
	done   chan struct{} // closed when loaded; made lazily
	groups map[string]*group
	// pending holds transactional offset commits until their marker:
	// producer id, then group, then partition. They are invisible to
	// OffsetFetch until committed (UNSTABLE_OFFSET_COMMIT under
	// RequireStable).
	pending map[int64]pendingOffsets
}

func (s *shard) loadedCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
		if s.loaded {
			close(s.done)
		}
	}
	return s.done
}

// appendLocked writes records to the partition. The in-memory change the
// caller makes goes with it.
//
// REQUIRES: s.mu held.
func (s *shard) appendLocked(recs []kv) (func(context.Context) error, error) {
	if len(recs) == 0 {
		return func(context.Context) error { return nil }, nil
	}
	wait, err := s.part.Append(encodeBatch(recs, s.c.clock.Now()))
	if err != nil {
		s.c.log.Error("append to __consumer_offsets", "partition", s.index, "err", err)
		return nil, err
	}
	return wait, nil
}

// errLoadStopped ends a load when the coordinator closes.
var errLoadStopped = errors.New("group: load stopped")

// load replays the partition into groups and marks the shard loaded.
func (s *shard) load() {
	start := s.c.clock.Now()
	offsets := make(map[string]map[topicPartition]offset)
	metas := make(map[string]*kmsg.GroupMetadataValue)
	pending := make(map[int64]pendingOffsets)
	err := s.replay(offsets, metas, pending)
	if errors.Is(err, errLoadStopped) {
		return
	}
	if err != nil {
		// Serve what was read rather than nothing: a bad tail loses the
		// writes in it, as a truncated log would.
		s.c.log.Error("load __consumer_offsets", "partition", s.index, "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.c.clock.Now()
	for id, m := range metas {
		g := s.newGroupLocked(id)
		g.restoreLocked(m, now)
	}
	for id, offs := range offsets {
		g := s.groups[id]
		if g == nil {
			g = s.newGroupLocked(id)
		}
		g.offsets = offs
	}
	s.pending = pending
	s.loaded = true
	if s.done != nil {
		close(s.done)
	}
	if len(s.groups) > 0 {
		s.c.log.Info("loaded groups", "partition", s.index, "groups", len(s.groups), "took", now.Sub(start))
	}
}

func (s *shard) replay(offsets map[string]map[topicPartition]offset, metas map[string]*kmsg.GroupMetadataValue, pending map[int64]pendingOffsets) error {
	off := s.part.StartOffset()
	hw := s.part.HighWatermark()
	for off < hw {
		s.c.mu.Lock()
		closed := s.c.closed
		s.c.mu.Unlock()
		if closed {
			return errLoadStopped
		}
		data, err := s.part.Read(off, 1<<20)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return nil
		}
		batches, err := decodeBatches(data)
		for _, b := range batches {
			off = b.next
			if b.control {
				pending[b.pid].complete(b.commit, offsets)
				delete(pending, b.pid)
				continue
			}
			dst := offsets
			if b.transactional {
				// Offsets of an open transaction: held until its
				// marker, or pending still when there is none yet.
				if pending[b.pid] == nil {
					pending[b.pid] = make(pendingOffsets)
				}
				dst = pending[b.pid]
			}
			for _, r := range b.records {
				if err := applyRecord(r, dst, metas); err != nil {
					s.c.log.Warn("skipping __consumer_offsets record", "partition", s.index, "err", err)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// applyRecord folds one record into the replay state.
func applyRecord(r kv, offsets map[string]map[topicPartition]offset, metas map[string]*kmsg.GroupMetadataValue) error {
	if len(r.key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", ErrCorrupt, len(r.key))
	}
	switch version := int16(r.key[0])<<8 | int16(r.key[1]); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.key); err != nil {
			return fmt.Errorf("%w: offset key: %v", ErrCorrupt, err)
		}
		tp := topicPartition{k.Topic, k.Partition}
		if r.value == nil {
			delete(offsets[k.Group], tp)
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.value); err != nil {
			return fmt.Errorf("%w: offset value: %v", ErrCorrupt, err)
		}
		if offsets[k.Group] == nil {
			offsets[k.Group] = make(map[topicPartition]offset)
		}
		epoch := v.LeaderEpoch
		if v.Version < 3 {
			epoch = -1
		}
		offsets[k.Group][tp] = offset{offset: v.Offset, leaderEpoch: epoch, metadata: v.Metadata, commitTime: time.UnixMilli(v.CommitTimestamp)}
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(r.key); err != nil {
			return fmt.Errorf("%w: group key: %v", ErrCorrupt, err)
		}
		if r.value == nil {
			delete(metas, k.Group)
			delete(offsets, k.Group)
			return nil
		}
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(r.value); err != nil {
			return fmt.Errorf("%w: group value: %v", ErrCorrupt, err)
		}
		metas[k.Group] = v
	default:
		// Records of the consumer protocol (KIP-848) and share groups:
		// not ours to read.
	}
	return nil
}

// waitFor returns a function that waits for the first value on ch, or
// returns def when ctx ends first. An answer already there wins over a
// done ctx, so a caller may poll with a cancelled context.
func waitFor[T any](ch <-chan T, def func() T) func(context.Context) T {
	return func(ctx context.Context) T {
		select {
		case v := <-ch:
			return v
		default:
		}
		select {
		case v := <-ch:
			return v
		case <-ctx.Done():
			return def()
		}
	}
}

// ready returns a fixed answer as a wait function.
func ready[T any](v T) func(context.Context) T {
	return func(context.Context) T { return v }
}

// durable waits for a write, bounded as a produce request is; a failure
// is COORDINATOR_NOT_AVAILABLE, which sends the client to find the
// coordinator again.
func durable(ctx context.Context, wait func(context.Context) error) int16 {
	if wait == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := wait(ctx); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}
