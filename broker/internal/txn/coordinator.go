package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/coordinator"
	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

// Marker asks for one transaction marker: a COMMIT or ABORT control
// batch for a producer in one partition.
type Marker struct {
	TopicPartition
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
	// TV2 is set when the transaction ended under transaction.version 2
	// (EndTxn v5, KIP-890 part 2): the marker's epoch was bumped past the
	// one the transaction's data was written at, and the partition
	// refuses it while the producer has a transaction open at that epoch
	// or above — a delayed marker of an earlier transaction.
	TV2 bool
}

// Config configures a Coordinator. Field comments give the default and
// the Kafka broker property each corresponds to.
type Config struct {
	// Partitions is the partition count of __transaction_state, which
	// places transactional ids (transaction.state.log.num.partitions).
	// Required.
	Partitions int32
	// MaxTimeout bounds the transaction timeout a producer may ask for
	// (transaction.max.timeout.ms). Default 15 minutes.
	MaxTimeout time.Duration
	// IDExpiration is how long an idle transactional id is kept
	// (transactional.id.expiration.ms). Default 7 days.
	IDExpiration time.Duration
	// AbortTimedOutCheckInterval is how often transactions are checked for
	// their timeout (transaction.abort.timed.out.transaction.cleanup.interval.ms).
	// Default 10s.
	AbortTimedOutCheckInterval time.Duration
	// AllocateProducerIDs reserves n producer ids, unique for the
	// cluster's life, and returns the first. Required.
	AllocateProducerIDs func(ctx context.Context, n int64) (int64, error)
	// WriteMarker writes a marker and returns once it is durable. It is
	// retried until it succeeds; a partition that no longer exists must
	// succeed. Required.
	WriteMarker func(ctx context.Context, m Marker) error
	// PartitionExists reports whether a topic partition exists; others
	// cannot join a transaction. Default: all do.
	PartitionExists func(topic string, partition int32) bool
	// Clock is the time source. Default coordinator.RealClock(nil).
	Clock coordinator.Clock
	// Logger receives the coordinator's log. Default: discard.
	Logger *slog.Logger
}

func (c *Config) ensureDefaults() {
	if c.MaxTimeout == 0 {
		c.MaxTimeout = 15 * time.Minute
	}
	if c.IDExpiration == 0 {
		c.IDExpiration = 7 * 24 * time.Hour
	}
	if c.AbortTimedOutCheckInterval == 0 {
		c.AbortTimedOutCheckInterval = 10 * time.Second
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

// idBlockSize is how many producer ids a broker reserves at a time, as
// Kafka's brokers do.
const idBlockSize = 1000

// PartitionFor is the __transaction_state partition that holds a
// transactional id, placed as Kafka places it (coordinator.PartitionFor).
func PartitionFor(id string, n int32) int32 { return coordinator.PartitionFor(id, n) }

// Coordinator is the transaction coordinator of one broker.
type Coordinator struct {
	cfg   Config
	clock coordinator.Clock
	log   *slog.Logger
	rt    *coordinator.Runtime[*shard]

	idMu sync.Mutex // guards the following; held across an allocation
	// nextID..idEnd is the unused part of the reserved producer id block.
	nextID, idEnd int64

	checkMu   sync.Mutex // guards stopCheck
	stopCheck func() bool
}

// New returns a coordinator that leads no partition yet; add them with
// Load.
func New(cfg Config) (*Coordinator, error) {
	cfg.ensureDefaults()
	switch {
	case cfg.Partitions < 1:
		return nil, fmt.Errorf("txn: %d transaction state partitions; need at least 1", cfg.Partitions)
	case cfg.AllocateProducerIDs == nil || cfg.WriteMarker == nil:
		return nil, errors.New("txn: AllocateProducerIDs and WriteMarker are required")
	case cfg.MaxTimeout < time.Millisecond:
		return nil, fmt.Errorf("txn: max timeout %v must be at least 1ms", cfg.MaxTimeout)
	}
	c := &Coordinator{cfg: cfg, clock: cfg.Clock, log: cfg.Logger}
	c.rt = coordinator.New(coordinator.Config[*shard]{
		Topic:      "__transaction_state",
		Partitions: cfg.Partitions,
		NewState:   c.newShard,
		Clock:      cfg.Clock,
		Logger:     cfg.Logger,
	})
	c.scheduleCheck()
	return c, nil
}

// scheduleCheck arms the next pass that aborts timed-out transactions and
// expires idle ids.
func (c *Coordinator) scheduleCheck() {
	c.checkMu.Lock()
	defer c.checkMu.Unlock()
	c.stopCheck = c.rt.AfterFunc(c.cfg.AbortTimedOutCheckInterval, func() {
		c.AbortTimedOut()
		c.ExpireIDs()
		c.scheduleCheck()
	})
}

// Close stops the coordinator and waits for its goroutines. Transactions
// whose markers are not all written stay prepared; the next load finishes
// them.
func (c *Coordinator) Close() {
	c.checkMu.Lock()
	if c.stopCheck != nil {
		c.stopCheck()
	}
	c.checkMu.Unlock()
	c.rt.Close()
}

// Load makes this broker the coordinator of the transactional ids in
// partition index of __transaction_state, at the partition's leader epoch
// (the coordinator epoch markers carry). The partition is replayed in the
// background; its ids answer COORDINATOR_LOAD_IN_PROGRESS until then, and
// prepared transactions are completed after.
func (c *Coordinator) Load(index int32, p coordinator.Partition, epoch int32) {
	c.rt.Load(index, p, epoch)
}

// Unload stops coordinating the transactional ids in partition index:
// they answer NOT_COORDINATOR, and marker writes in progress stop; the
// transactions they were completing stay prepared for the next load.
func (c *Coordinator) Unload(index int32) { c.rt.Unload(index) }

// WaitLoaded blocks until every partition loaded so far has been
// replayed, or ctx ends.
func (c *Coordinator) WaitLoaded(ctx context.Context) error { return c.rt.WaitLoaded(ctx) }

// shardList returns every shard loaded or loading; a caller locks each
// and checks ServingLocked.
func (c *Coordinator) shardList() []*shard {
	var out []*shard
	for _, s := range c.rt.Shards() {
		out = append(out, s.State())
	}
	return out
}

// lookup finds the shard of a transactional id and locks it, or returns
// the Kafka error that sends the client elsewhere; then nothing is locked.
func (c *Coordinator) lookup(id string) (*shard, int16) {
	s, code := c.rt.LookupKey(id)
	if code != 0 {
		return nil, code
	}
	return s.State(), 0
}

// allocateID hands out one producer id from the reserved block,
// reserving another when it runs out.
func (c *Coordinator) allocateID(ctx context.Context) (int64, error) {
	c.idMu.Lock()
	defer c.idMu.Unlock()
	if c.nextID >= c.idEnd {
		first, err := c.cfg.AllocateProducerIDs(ctx, idBlockSize)
		if err != nil {
			return -1, err
		}
		c.nextID, c.idEnd = first, first+idBlockSize
	}
	id := c.nextID
	c.nextID++
	return id, nil
}

// AbortTimedOut aborts every ongoing transaction older than its timeout,
// bumping its producer's epoch so the producer is fenced, as Kafka does.
// It runs every check interval by itself; tests call it directly.
func (c *Coordinator) AbortTimedOut() {
	now := c.clock.Now()
	for _, s := range c.shardList() {
		s.Lock()
		if s.ServingLocked() {
			for _, m := range s.txns {
				if m.state == Ongoing && now.Sub(m.start) > m.timeout {
					c.log.Info("aborting timed-out transaction", "transactional_id", m.id, "producer_id", m.pid, "epoch", m.epoch, "age", now.Sub(m.start))
					s.fenceAndAbortLocked(m)
				}
			}
		}
		s.Unlock()
	}
}

// ExpireIDs removes transactional ids idle for longer than IDExpiration
// (by the time their state was last stored) with no transaction open or
// completing — Empty, CompleteCommit or CompleteAbort, as in Kafka —
// writing a tombstone for each to __transaction_state, so a reload
// forgets them too. An id whose tombstone cannot be appended is kept
// and tried again on the next pass. It runs every check interval by
// itself; tests call it directly.
func (c *Coordinator) ExpireIDs() {
	now := c.clock.Now()
	for _, s := range c.shardList() {
		s.Lock()
		if s.ServingLocked() {
			var (
				ids  []string
				recs []recordbatch.Record
			)
			for id, m := range s.txns {
				idle := m.state == Empty || m.state == CompleteCommit || m.state == CompleteAbort
				if idle && now.Sub(m.updated) > c.cfg.IDExpiration {
					ids = append(ids, id)
					recs = append(recs, recordbatch.Record{Key: txnKey(id)})
				}
			}
			if len(recs) > 0 {
				if _, err := s.appendLocked(recs); err == nil {
					for _, id := range ids {
						delete(s.txns, id)
					}
					c.log.Info("expired transactional ids", "partition", s.Index(), "ids", len(recs))
				}
			}
		}
		s.Unlock()
	}
}

// shard is one __transaction_state partition's transactional ids: the
// coordinator.State of the transaction coordinator.
type shard struct {
	*coordinator.Shard[*shard]
	c *Coordinator

	// txns is guarded by the shard lock. It fills as the shard loads;
	// requests see it once loaded.
	txns map[string]*txnMeta
}

func (c *Coordinator) newShard(cs *coordinator.Shard[*shard]) *shard {
	return &shard{Shard: cs, c: c, txns: make(map[string]*txnMeta)}
}

// appendLocked writes records. The in-memory change the caller makes goes
// with it: later requests see it at once, and answers wait for the
// returned function.
//
// REQUIRES: s locked.
func (s *shard) appendLocked(recs []recordbatch.Record) (func(context.Context) error, error) {
	return s.AppendLocked(recs, 0, recordbatch.NoProducer)
}

// storeLocked persists m as it is now.
//
// REQUIRES: s locked.
func (s *shard) storeLocked(m *txnMeta) (func(context.Context) error, error) {
	m.updated = s.c.clock.Now()
	return s.appendLocked([]recordbatch.Record{{Key: txnKey(m.id), Value: txnValue(m)}})
}

// Replay folds one batch into txns (coordinator.State). Control batches
// are not the coordinator's: none is written to __transaction_state.
//
// REQUIRES: s locked.
func (s *shard) Replay(h recordbatch.Header, recs []recordbatch.Record) {
	if h.Control() {
		return
	}
	for _, r := range recs {
		if err := applyRecord(r, s.txns); err != nil {
			s.c.log.Warn("skipping __transaction_state record", "partition", s.Index(), "err", err)
		}
	}
}

// Loaded finishes the transactions that were prepared when the log was
// written (coordinator.State).
//
// REQUIRES: s locked.
func (s *shard) Loaded(error) {
	for _, m := range s.txns {
		if m.state.preparing() {
			s.c.log.Info("completing prepared transaction", "transactional_id", m.id, "state", m.state)
			s.completeLocked(m, nil)
		}
	}
	if len(s.txns) > 0 {
		s.c.log.Info("loaded transactional ids", "partition", s.Index(), "ids", len(s.txns))
	}
}

// Unloaded releases the requests waiting for a transaction to complete
// (coordinator.State): its decision is durable, and the next coordinator
// of the partition completes it, as a load here does. Their retries find
// NOT_COORDINATOR.
//
// REQUIRES: s locked.
func (s *shard) Unloaded() {
	for _, m := range s.txns {
		if m.done != nil {
			close(m.done)
			m.done = nil
		}
	}
	s.txns = make(map[string]*txnMeta)
}

func applyRecord(r recordbatch.Record, txns map[string]*txnMeta) error {
	if len(r.Key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", ErrCorrupt, len(r.Key))
	}
	if v := int16(r.Key[0])<<8 | int16(r.Key[1]); v != 0 {
		return nil // not a transaction record (none exist yet)
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(r.Key); err != nil {
		return fmt.Errorf("%w: key: %v", ErrCorrupt, err)
	}
	if r.Value == nil {
		delete(txns, k.TransactionalID)
		return nil
	}
	m, err := decodeValue(k.TransactionalID, r.Value)
	if err != nil {
		return err
	}
	txns[k.TransactionalID] = m
	return nil
}
