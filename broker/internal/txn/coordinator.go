package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/group"
)

// Partition is one partition of __transaction_state that this broker
// leads.
type Partition interface {
	// Append appends one batch and returns a function that blocks until
	// the batch is durable (as an acks=all produce), or ctx ends.
	Append(batch []byte) (wait func(context.Context) error, err error)
	// Read returns whole batches from the one holding offset, below the
	// high watermark; nothing at the end.
	Read(offset int64, maxBytes int32) ([]byte, error)
	StartOffset() int64
	HighWatermark() int64
}

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
	// Now is the clock. Default time.Now.
	Now func() time.Time
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
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// idBlockSize is how many producer ids a broker reserves at a time, as
// Kafka's brokers do.
const idBlockSize = 1000

// PartitionFor is the __transaction_state partition that holds a
// transactional id: Java's String.hashCode, made non-negative, modulo n,
// the placement Kafka uses for groups and transactional ids alike.
func PartitionFor(id string, n int32) int32 { return group.PartitionFor(id, n) }

// Coordinator is the transaction coordinator of one broker.
type Coordinator struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // cancelled by Close; bounds marker writes
	cancel context.CancelFunc

	mu sync.Mutex // guards the following; never held while taking a shard's
	// shards are the __transaction_state partitions this broker leads.
	shards map[int32]*shard
	closed bool

	idMu sync.Mutex // guards the following; held across an allocation
	// nextID..idEnd is the unused part of the reserved producer id block.
	nextID, idEnd int64

	wg sync.WaitGroup // loaders, completions and the timeout loop
}

// New returns a coordinator that leads no partition yet; add them with
// AddPartition.
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
	c := &Coordinator{cfg: cfg, log: cfg.Logger, shards: make(map[int32]*shard)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.timeoutLoop() }()
	return c, nil
}

// Close stops the coordinator and waits for its goroutines. Transactions
// whose markers are not all written stay prepared; the next load finishes
// them.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// go runs f on a goroutine the coordinator waits for, unless it is
// closed.
func (c *Coordinator) goOwned(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); f() }()
}

// AddPartition makes this broker the coordinator of the transactional ids
// in partition index of __transaction_state, at the partition's leader
// epoch (the coordinator epoch markers carry). The partition is replayed
// in the background; its ids answer COORDINATOR_LOAD_IN_PROGRESS until
// then, and prepared transactions are completed after.
func (c *Coordinator) AddPartition(index int32, p Partition, epoch int32) {
	s := &shard{c: c, index: index, part: p, epoch: epoch, txns: make(map[string]*txnMeta)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.shards[index] = s
	c.mu.Unlock()
	c.goOwned(s.load)
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

// lookup finds the shard of a transactional id and locks it, or returns
// the Kafka error that sends the client elsewhere; then nothing is locked.
func (c *Coordinator) lookup(id string) (*shard, int16) {
	idx := PartitionFor(id, c.cfg.Partitions)
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

// timeoutLoop aborts timed-out transactions and expires idle ids every
// check interval.
func (c *Coordinator) timeoutLoop() {
	t := time.NewTicker(c.cfg.AbortTimedOutCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.AbortTimedOut()
			c.ExpireIDs()
		}
	}
}

// AbortTimedOut aborts every ongoing transaction older than its timeout,
// bumping its producer's epoch so the producer is fenced, as Kafka does.
// It runs every check interval by itself; tests call it directly.
func (c *Coordinator) AbortTimedOut() {
	now := c.cfg.Now()
	for _, s := range c.shardList() {
		s.mu.Lock()
		if s.loaded {
			for _, m := range s.txns {
				if m.state == Ongoing && now.Sub(m.start) > m.timeout {
					c.log.Info("aborting timed-out transaction", "transactional_id", m.id, "producer_id", m.pid, "epoch", m.epoch, "age", now.Sub(m.start))
					s.fenceAndAbortLocked(m)
				}
			}
		}
		s.mu.Unlock()
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
	now := c.cfg.Now()
	for _, s := range c.shardList() {
		s.mu.Lock()
		if s.loaded {
			var (
				ids  []string
				recs []record
			)
			for id, m := range s.txns {
				idle := m.state == Empty || m.state == CompleteCommit || m.state == CompleteAbort
				if idle && now.Sub(m.updated) > c.cfg.IDExpiration {
					ids = append(ids, id)
					recs = append(recs, record{key: txnKey(id)})
				}
			}
			if len(recs) > 0 {
				if _, err := s.appendLocked(recs); err == nil {
					for _, id := range ids {
						delete(s.txns, id)
					}
					c.log.Info("expired transactional ids", "partition", s.index, "ids", len(recs))
				}
			}
		}
		s.mu.Unlock()
	}
}

// shard is one __transaction_state partition's transactional ids.
type shard struct {
	c     *Coordinator
	index int32
	part  Partition
	epoch int32 // coordinator epoch

	mu sync.Mutex // guards the following
	// loaded is set once the partition is replayed; until then txns is
	// empty and every request is refused.
	loaded bool
	done   chan struct{} // closed when loaded; made lazily
	txns   map[string]*txnMeta
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

// appendLocked writes records. The in-memory change the caller makes goes
// with it: later requests see it at once, and answers wait for the
// returned function.
//
// REQUIRES: s.mu held.
func (s *shard) appendLocked(recs []record) (func(context.Context) error, error) {
	wait, err := s.part.Append(encodeBatch(recs, s.c.cfg.Now()))
	if err != nil {
		s.c.log.Error("append to __transaction_state", "partition", s.index, "err", err)
		return nil, err
	}
	return wait, nil
}

// storeLocked persists m as it is now.
//
// REQUIRES: s.mu held.
func (s *shard) storeLocked(m *txnMeta) (func(context.Context) error, error) {
	m.updated = s.c.cfg.Now()
	return s.appendLocked([]record{{key: txnKey(m.id), value: txnValue(m)}})
}

var errLoadStopped = errors.New("txn: load stopped")

// load replays the partition, marks the shard loaded, and finishes the
// transactions that were prepared when the log was written.
func (s *shard) load() {
	txns := make(map[string]*txnMeta)
	err := s.replay(txns)
	if errors.Is(err, errLoadStopped) {
		return
	}
	if err != nil {
		s.c.log.Error("load __transaction_state", "partition", s.index, "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txns = txns
	s.loaded = true
	if s.done != nil {
		close(s.done)
	}
	for _, m := range txns {
		if m.state.preparing() {
			s.c.log.Info("completing prepared transaction", "transactional_id", m.id, "state", m.state)
			s.completeLocked(m, nil)
		}
	}
	if len(txns) > 0 {
		s.c.log.Info("loaded transactional ids", "partition", s.index, "ids", len(txns))
	}
}

func (s *shard) replay(txns map[string]*txnMeta) error {
	off := s.part.StartOffset()
	hw := s.part.HighWatermark()
	for off < hw {
		if s.c.ctx.Err() != nil {
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
			for _, r := range b.records {
				if err := applyRecord(r, txns); err != nil {
					s.c.log.Warn("skipping __transaction_state record", "partition", s.index, "err", err)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func applyRecord(r record, txns map[string]*txnMeta) error {
	if len(r.key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", ErrCorrupt, len(r.key))
	}
	if v := int16(r.key[0])<<8 | int16(r.key[1]); v != 0 {
		return nil // not a transaction record (none exist yet)
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(r.key); err != nil {
		return fmt.Errorf("%w: key: %v", ErrCorrupt, err)
	}
	if r.value == nil {
		delete(txns, k.TransactionalID)
		return nil
	}
	m, err := decodeValue(k.TransactionalID, r.value)
	if err != nil {
		return err
	}
	txns[k.TransactionalID] = m
	return nil
}
