package group

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/coordinator"
	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

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
	// Clock is the time source. Default coordinator.RealClock(nil).
	Clock coordinator.Clock
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
		c.Clock = coordinator.RealClock(nil)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// PartitionFor is the __consumer_offsets partition that holds group, as
// Kafka places it (coordinator.PartitionFor).
func PartitionFor(group string, n int32) int32 { return coordinator.PartitionFor(group, n) }

// Coordinator is the group coordinator of one broker.
type Coordinator struct {
	cfg   Config
	clock coordinator.Clock
	log   *slog.Logger
	rt    *coordinator.Runtime[*shard]

	expiryMu   sync.Mutex // guards stopExpiry
	stopExpiry func() bool
}

// New returns a coordinator that leads no partition yet; add them with
// Load.
func New(cfg Config) (*Coordinator, error) {
	cfg.ensureDefaults()
	if cfg.Partitions < 1 {
		return nil, fmt.Errorf("group: %d offsets topic partitions; need at least 1", cfg.Partitions)
	}
	if cfg.MinSessionTimeout > cfg.MaxSessionTimeout {
		return nil, fmt.Errorf("group: min session timeout %v above max %v", cfg.MinSessionTimeout, cfg.MaxSessionTimeout)
	}
	c := &Coordinator{cfg: cfg, clock: cfg.Clock, log: cfg.Logger}
	c.rt = coordinator.New(coordinator.Config[*shard]{
		Topic:      "__consumer_offsets",
		Partitions: cfg.Partitions,
		NewState:   c.newShard,
		Clock:      cfg.Clock,
		Logger:     cfg.Logger,
	})
	c.scheduleExpiry()
	return c, nil
}

func (c *Coordinator) scheduleExpiry() {
	c.expiryMu.Lock()
	defer c.expiryMu.Unlock()
	c.stopExpiry = c.rt.AfterFunc(c.cfg.OffsetsRetentionCheckInterval, func() {
		c.ExpireOffsets()
		c.scheduleExpiry()
	})
}

// Load makes this broker the coordinator of the groups in partition index
// of __consumer_offsets. The partition is replayed in the background; its
// groups answer COORDINATOR_LOAD_IN_PROGRESS until then.
func (c *Coordinator) Load(index int32, p coordinator.Partition) { c.rt.Load(index, p, 0) }

// Unload stops coordinating the groups in partition index: they answer
// NOT_COORDINATOR, and members waiting in JoinGroup or SyncGroup are
// answered so.
func (c *Coordinator) Unload(index int32) { c.rt.Unload(index) }

// WaitLoaded blocks until every partition loaded so far has been
// replayed, or ctx ends.
func (c *Coordinator) WaitLoaded(ctx context.Context) error { return c.rt.WaitLoaded(ctx) }

// Close unloads every partition and stops every timer, and waits for
// loaders and timer callbacks.
func (c *Coordinator) Close() {
	c.expiryMu.Lock()
	if c.stopExpiry != nil {
		c.stopExpiry()
	}
	c.expiryMu.Unlock()
	c.rt.Close()
}

// lookup finds the shard of a group and locks it. It returns a Kafka error
// code instead when the group's coordinator is elsewhere or not ready;
// then nothing is locked.
func (c *Coordinator) lookup(groupID string) (*shard, int16) {
	s, code := c.rt.LookupKey(groupID)
	if code != 0 {
		return nil, code
	}
	return s.State(), 0
}

// shardList returns every shard loaded or loading; a caller locks each
// and checks ServingLocked.
func (c *Coordinator) shardList() []*shard {
	var out []*shard
	for _, s := range c.rt.Shards() {
		out = append(out, s.State())
	}
	return out
}

// shard is one __consumer_offsets partition's groups: the
// coordinator.State of the group coordinator.
type shard struct {
	*coordinator.Shard[*shard]
	c *Coordinator

	// Guarded by the shard lock:
	// groups is empty until the shard is loaded.
	groups map[string]*group
	// pending holds transactional offset commits until their marker:
	// producer id, then group, then partition. They are invisible to
	// OffsetFetch until committed (UNSTABLE_OFFSET_COMMIT under
	// RequireStable).
	pending map[int64]pendingOffsets
	// replay is what the load has read; Loaded makes groups of it.
	replay *replayState
}

// replayState is the state a load folds __consumer_offsets into.
type replayState struct {
	offsets map[string]map[topicPartition]offset
	metas   map[string]*kmsg.GroupMetadataValue
	pending map[int64]pendingOffsets
	start   time.Time
}

func (c *Coordinator) newShard(cs *coordinator.Shard[*shard]) *shard {
	return &shard{
		Shard:   cs,
		c:       c,
		groups:  make(map[string]*group),
		pending: make(map[int64]pendingOffsets),
		replay: &replayState{
			offsets: make(map[string]map[topicPartition]offset),
			metas:   make(map[string]*kmsg.GroupMetadataValue),
			pending: make(map[int64]pendingOffsets),
			start:   c.clock.Now(),
		},
	}
}

// appendLocked writes records to the partition. The in-memory change the
// caller makes goes with it.
//
// REQUIRES: s locked.
func (s *shard) appendLocked(recs []recordbatch.Record) (func(context.Context) error, error) {
	return s.AppendLocked(recs, 0, recordbatch.NoProducer)
}

// Replay folds one batch into the replay state (coordinator.State).
//
// REQUIRES: s locked.
func (s *shard) Replay(h recordbatch.Header, recs []recordbatch.Record) {
	r := s.replay
	if h.Control() {
		// A marker: the producer's pending offsets are committed or
		// dropped.
		commit, err := markerCommits(recs)
		if err != nil {
			s.c.log.Warn("skipping __consumer_offsets marker", "partition", s.Index(), "err", err)
			return
		}
		r.pending[h.ProducerID].complete(commit, r.offsets)
		delete(r.pending, h.ProducerID)
		return
	}
	dst := r.offsets
	if h.Transactional() {
		// Offsets of an open transaction: held until its marker, or
		// pending still when there is none yet.
		if r.pending[h.ProducerID] == nil {
			r.pending[h.ProducerID] = make(pendingOffsets)
		}
		dst = r.pending[h.ProducerID]
	}
	for _, rec := range recs {
		if err := applyRecord(rec, dst, r.metas); err != nil {
			s.c.log.Warn("skipping __consumer_offsets record", "partition", s.Index(), "err", err)
		}
	}
}

// Loaded makes groups of what the load read (coordinator.State).
//
// REQUIRES: s locked.
func (s *shard) Loaded(error) {
	r := s.replay
	s.replay = nil
	now := s.c.clock.Now()
	for id, m := range r.metas {
		g := s.newGroupLocked(id)
		g.restoreLocked(m, now)
	}
	for id, offs := range r.offsets {
		g := s.groups[id]
		if g == nil {
			g = s.newGroupLocked(id)
		}
		g.offsets = offs
	}
	s.pending = r.pending
	if len(s.groups) > 0 {
		s.c.log.Info("loaded groups", "partition", s.Index(), "groups", len(s.groups), "took", now.Sub(r.start))
	}
}

// Unloaded stops the groups' timers, answers the members waiting in
// JoinGroup or SyncGroup with NOT_COORDINATOR, and forgets the groups, so
// a timer that fired meanwhile finds its group gone
// (coordinator.State).
//
// REQUIRES: s locked.
func (s *shard) Unloaded() {
	for _, g := range s.groups {
		g.stopTimersLocked()
		for _, m := range g.members {
			if m.join != nil {
				m.join <- joinResult{code: kerr.NotCoordinator.Code, generation: -1}
				m.join = nil
			}
			if m.sync != nil {
				m.sync <- syncResult{code: kerr.NotCoordinator.Code}
				m.sync = nil
			}
		}
	}
	s.groups = make(map[string]*group)
	s.pending = make(map[int64]pendingOffsets)
}

// markerCommits reads a control batch's one record: a ControlRecordKey
// whose type is 1 for COMMIT, 0 for ABORT.
func markerCommits(recs []recordbatch.Record) (bool, error) {
	if len(recs) != 1 {
		return false, fmt.Errorf("%w: control batch of %d records", ErrCorrupt, len(recs))
	}
	var k kmsg.ControlRecordKey
	if err := k.ReadFrom(recs[0].Key); err != nil {
		return false, fmt.Errorf("%w: control record key: %v", ErrCorrupt, err)
	}
	return k.Type == kmsg.ControlRecordKeyTypeCommit, nil
}

// applyRecord folds one record into the replay state.
func applyRecord(r recordbatch.Record, offsets map[string]map[topicPartition]offset, metas map[string]*kmsg.GroupMetadataValue) error {
	if len(r.Key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", ErrCorrupt, len(r.Key))
	}
	switch version := int16(r.Key[0])<<8 | int16(r.Key[1]); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("%w: offset key: %v", ErrCorrupt, err)
		}
		tp := topicPartition{k.Topic, k.Partition}
		if r.Value == nil {
			delete(offsets[k.Group], tp)
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.Value); err != nil {
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
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("%w: group key: %v", ErrCorrupt, err)
		}
		if r.Value == nil {
			delete(metas, k.Group)
			delete(offsets, k.Group)
			return nil
		}
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(r.Value); err != nil {
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
