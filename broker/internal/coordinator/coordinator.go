// Package coordinator is the runtime the group and transaction
// coordinators share: the table of shards, one per partition of the
// coordinator's internal topic (__consumer_offsets, __transaction_state)
// that this broker leads, and the life of each shard — load, serve,
// unload.
//
// A coordinator keeps its state in a State per shard and asks the Runtime
// for the shard of a key (Lookup). The Runtime answers with the Kafka
// error that sends the client elsewhere while the shard is not served:
//
//	no shard for the partition      NOT_COORDINATOR
//	shard still replaying           COORDINATOR_LOAD_IN_PROGRESS
//	runtime closed                  COORDINATOR_NOT_AVAILABLE
//
// Load(partition) starts serving a partition: the shard replays it from
// its log start offset to its high watermark in the background, handing
// each batch to State.Replay, then calls State.Loaded and serves.
// Unload(partition) stops: the shard leaves the table, its load (if
// running) stops, and State.Unloaded releases what the state holds
// (timers, waiters). A partition whose leadership comes to this broker is
// loaded; one whose leadership goes is unloaded; loading it again replays
// it afresh.
//
// # Concurrency
//
// Runtime.mu guards the shard table; each Shard's mutex guards its State
// (Shard.Lock, and the State's methods named ...Locked). Runtime.mu is
// never held while a shard's is taken. A shard's loader goroutine, its
// timers (Shard.AfterFunc) and the runtime's owned goroutines (Go) are
// counted in the Runtime's wait group and waited for in Close. A timer
// callback or goroutine that takes the shard lock after the shard was
// unloaded must check Shard.ServingLocked before it writes: the shard's
// State may still be reachable from it, but the partition is no longer
// this broker's to write.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

// Clock is a coordinator's time source and timer factory. Tests inject a
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

// Partition is one partition of a coordinator's internal topic that this
// broker leads.
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

// A Settler is a Partition that can wait until everything its log holds
// now is below its high watermark. A broker that has just become a
// partition's leader may hold records its predecessor acknowledged above
// its own high watermark, which moves up only as the followers report;
// a load that stopped at the high watermark would miss them (a committed
// offset, a transaction's decision). A shard whose partition is a
// Settler settles before it replays, answering
// COORDINATOR_LOAD_IN_PROGRESS meanwhile.
type Settler interface {
	// Settle blocks until the high watermark reaches the log end the
	// partition had when Settle was called, or ctx ends.
	Settle(ctx context.Context) error
}

// PartitionFor is the partition of n that holds key, as Kafka places
// groups and transactional ids alike: Java's String.hashCode over UTF-16
// code units, made non-negative with Utils.abs (x & 0x7fffffff), modulo
// n.
func PartitionFor(key string, n int32) int32 {
	var h int32
	for _, r := range key {
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

// A State is a coordinator's state for one partition, kept in a Shard.
// Every method is called with the shard locked.
type State interface {
	// Replay folds one batch read back from the partition into the
	// state while the shard loads. Compressed batches, which a
	// coordinator never writes, are skipped before it.
	Replay(h recordbatch.Header, recs []recordbatch.Record)
	// Loaded is called once the replay ends, before the shard serves.
	// err is why it ended before the high watermark (a corrupt batch,
	// a read error), nil when it reached it: the shard serves what was
	// read either way, as a truncated log would.
	Loaded(err error)
	// Unloaded is called once when a loaded shard stops serving: it
	// stops the state's timers and answers its waiters.
	Unloaded()
}

// Config configures a Runtime.
type Config[S State] struct {
	// Topic names the internal topic, for logs.
	Topic string
	// Partitions is the topic's partition count. Required.
	Partitions int32
	// NewState makes the empty state of a shard about to load.
	// Required.
	NewState func(*Shard[S]) S
	// Clock is the time source. Default RealClock(nil).
	Clock Clock
	// Logger receives the runtime's log. Default: discard.
	Logger *slog.Logger
}

// Runtime is the shard table of one coordinator.
type Runtime[S State] struct {
	cfg   Config[S]
	clock Clock
	log   *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu sync.Mutex // guards the following; never held while taking a shard's
	// shards are the partitions loaded or loading here.
	shards map[int32]*Shard[S]
	closed bool

	wg sync.WaitGroup // loaders, timer callbacks and Go's goroutines
}

// New returns a runtime with no shard; add them with Load.
func New[S State](cfg Config[S]) *Runtime[S] {
	if cfg.Clock == nil {
		cfg.Clock = RealClock(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Runtime[S]{cfg: cfg, clock: cfg.Clock, log: cfg.Logger, shards: make(map[int32]*Shard[S])}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Clock returns the runtime's clock.
func (r *Runtime[S]) Clock() Clock { return r.clock }

// Context is cancelled when the runtime closes.
func (r *Runtime[S]) Context() context.Context { return r.ctx }

// Load makes this broker the coordinator of partition index at leader
// epoch epoch (the coordinator epoch Kafka's transaction markers carry),
// read and written through p. The partition replays in the background;
// its keys answer COORDINATOR_LOAD_IN_PROGRESS until then. A shard
// already there for index is unloaded first. Load does nothing once the
// runtime is closed.
func (r *Runtime[S]) Load(index int32, p Partition, epoch int32) {
	r.Unload(index)
	s := &Shard[S]{r: r, index: index, part: p, epoch: epoch, done: make(chan struct{}), loaderDone: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(r.ctx)
	s.state = r.cfg.NewState(s)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		s.cancel()
		return
	}
	r.shards[index] = s
	r.wg.Add(1)
	go func() { defer r.wg.Done(); s.load() }()
}

// Unload stops serving partition index: its keys answer NOT_COORDINATOR
// from now on. It waits for the shard's load to stop and, when the shard
// was loaded, calls State.Unloaded. Unloading a partition not loaded here
// does nothing.
func (r *Runtime[S]) Unload(index int32) {
	r.mu.Lock()
	s := r.shards[index]
	delete(r.shards, index)
	r.mu.Unlock()
	if s != nil {
		s.unload()
	}
}

// Close unloads every shard and waits for the runtime's goroutines and
// timer callbacks. Requests still waiting on a shard's state return when
// their context ends or the state answers them in Unloaded.
func (r *Runtime[S]) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	shards := r.shards
	r.shards = make(map[int32]*Shard[S])
	r.mu.Unlock()
	r.cancel()
	for _, s := range shards {
		s.unload()
	}
	r.wg.Wait()
}

// Lookup finds the shard of partition index and returns it locked, or
// returns the Kafka error code that sends the client elsewhere; then
// nothing is locked.
func (r *Runtime[S]) Lookup(index int32) (*Shard[S], int16) {
	r.mu.Lock()
	s, closed := r.shards[index], r.closed
	r.mu.Unlock()
	switch {
	case closed:
		return nil, kerr.CoordinatorNotAvailable.Code
	case s == nil:
		return nil, kerr.NotCoordinator.Code
	}
	s.mu.Lock()
	switch s.status {
	case loading:
		s.mu.Unlock()
		return nil, kerr.CoordinatorLoadInProgress.Code
	case unloaded:
		// Unloaded between the table read and the lock.
		s.mu.Unlock()
		return nil, kerr.NotCoordinator.Code
	}
	return s, 0
}

// LookupKey is Lookup of the partition that holds key.
func (r *Runtime[S]) LookupKey(key string) (*Shard[S], int16) {
	return r.Lookup(PartitionFor(key, r.cfg.Partitions))
}

// Shards returns the shards loaded or loading now, in no order.
func (r *Runtime[S]) Shards() []*Shard[S] {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Shard[S], 0, len(r.shards))
	for _, s := range r.shards {
		out = append(out, s)
	}
	return out
}

// WaitLoaded blocks until every shard there now has finished loading (or
// was unloaded), or ctx ends.
func (r *Runtime[S]) WaitLoaded(ctx context.Context) error {
	for _, s := range r.Shards() {
		select {
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Go runs f on a goroutine that Close waits for, unless the runtime is
// closed; it reports whether f was started.
func (r *Runtime[S]) Go(f func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); f() }()
	return true
}

// AfterFunc arms a timer on the runtime's clock whose callback Close
// waits for and which does not run once the runtime is closed.
func (r *Runtime[S]) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	return r.afterFunc(d, nil, f)
}

// afterFunc is AfterFunc that also skips f once shard s (when not nil)
// is unloaded.
func (r *Runtime[S]) afterFunc(d time.Duration, s *Shard[S], f func()) func() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return func() bool { return false }
	}
	return r.clock.AfterFunc(d, func() {
		r.mu.Lock()
		if r.closed || (s != nil && s.ctx.Err() != nil) {
			r.mu.Unlock()
			return
		}
		r.wg.Add(1)
		r.mu.Unlock()
		defer r.wg.Done()
		f()
	})
}

type status int8

const (
	loading status = iota
	loaded
	unloaded
)

// Shard is one partition of the topic and the coordinator's State for
// it. Lookup hands it out locked.
type Shard[S State] struct {
	r     *Runtime[S]
	index int32
	part  Partition
	epoch int32

	ctx    context.Context // cancelled when the shard is unloaded
	cancel context.CancelFunc
	// done is closed when the shard stops loading (loaded, or unloaded
	// first); loaderDone when its loader goroutine ends.
	done, loaderDone chan struct{}

	mu sync.Mutex // guards the following
	// Invariant: status only moves forward, loading → loaded →
	// unloaded, or loading → unloaded.
	status status
	state  S
}

// Lock locks the shard.
func (s *Shard[S]) Lock() { s.mu.Lock() }

// Unlock unlocks the shard.
func (s *Shard[S]) Unlock() { s.mu.Unlock() }

// Index is the shard's partition.
func (s *Shard[S]) Index() int32 { return s.index }

// Partition is where the shard's state is written.
func (s *Shard[S]) Partition() Partition { return s.part }

// Epoch is the partition's leader epoch when the shard was loaded.
func (s *Shard[S]) Epoch() int32 { return s.epoch }

// Context is cancelled when the shard is unloaded or the runtime closes.
func (s *Shard[S]) Context() context.Context { return s.ctx }

// State is the coordinator's state of the shard. It is guarded by the
// shard's lock.
func (s *Shard[S]) State() S { return s.state }

// ServingLocked reports whether the shard is loaded and not unloaded:
// whether its state may be served and written.
//
// REQUIRES: s locked.
func (s *Shard[S]) ServingLocked() bool { return s.status == loaded }

// AfterFunc arms a timer on the runtime's clock whose callback Close
// waits for and which does not run once the shard is unloaded. The
// callback takes the shard lock itself and must check that it is still
// current: it may have fired just before the shard was unloaded.
func (s *Shard[S]) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	return s.r.afterFunc(d, s, f)
}

// AppendLocked writes one batch of recs, stamped now, with the given attributes
// and producer, to the partition. The in-memory change the caller makes
// goes with it: later requests see it at once, and answers wait for the
// returned function.
//
// REQUIRES: s locked.
func (s *Shard[S]) AppendLocked(recs []recordbatch.Record, attrs int16, p recordbatch.Producer) (wait func(context.Context) error, err error) {
	if len(recs) == 0 {
		return func(context.Context) error { return nil }, nil
	}
	wait, err = s.part.Append(recordbatch.Encode(recs, s.r.clock.Now(), attrs, p))
	if err != nil {
		s.r.log.Error("append to "+s.r.cfg.Topic, "partition", s.index, "err", err)
		return nil, err
	}
	return wait, nil
}

// errUnloaded ends a load when the shard is unloaded first.
var errUnloaded = errors.New("coordinator: shard unloaded")

func (s *Shard[S]) load() {
	defer close(s.loaderDone)
	start := s.r.clock.Now()
	err := s.settle()
	if err == nil {
		err = s.replay()
	}
	if errors.Is(err, errUnloaded) || s.ctx.Err() != nil {
		// Unloaded while replaying: unload waits for this goroutine
		// and finds the shard still loading.
		return
	}
	if err != nil {
		s.r.log.Error("load "+s.r.cfg.Topic, "partition", s.index, "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != loading {
		return
	}
	s.state.Loaded(err)
	s.status = loaded
	close(s.done)
	s.r.log.Debug("loaded "+s.r.cfg.Topic, "partition", s.index, "took", s.r.clock.Now().Sub(start))
}

// settle waits for the partition to settle when it can (Settler). An
// error other than the shard's unloading is logged and the load goes on
// with what is below the high watermark, as Loaded allows.
func (s *Shard[S]) settle() error {
	st, ok := s.part.(Settler)
	if !ok {
		return nil
	}
	if err := st.Settle(s.ctx); err != nil {
		if s.ctx.Err() != nil {
			return errUnloaded
		}
		s.r.log.Warn("settle "+s.r.cfg.Topic+" before load", "partition", s.index, "err", err)
	}
	return nil
}

// replay reads the partition from its start to its high watermark when
// the load began and hands each batch to the state.
func (s *Shard[S]) replay() error {
	off := s.part.StartOffset()
	hw := s.part.HighWatermark()
	for off < hw {
		if s.ctx.Err() != nil {
			return errUnloaded
		}
		data, err := s.part.Read(off, 1<<20)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return nil
		}
		for len(data) > 0 {
			h, batch, rest, err := recordbatch.Next(data)
			if err != nil {
				return err
			}
			data = rest
			// Every batch ends past the offset asked for: a log that
			// says otherwise would have the load read forever.
			if next := h.LastOffset() + 1; next > off {
				off = next
			} else {
				return fmt.Errorf("%w: batch ending at %d, reading from %d", recordbatch.ErrCorrupt, h.LastOffset(), off)
			}
			if h.Compression() != 0 {
				continue
			}
			recs, err := recordbatch.DecodeRecords(h, batch)
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.state.Replay(h, recs)
			s.mu.Unlock()
		}
	}
	return nil
}

// unload stops the shard once it left the table: its load, its timers,
// and its state.
func (s *Shard[S]) unload() {
	s.cancel()
	<-s.loaderDone
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.status {
	case loading:
		close(s.done)
	case loaded:
		s.state.Unloaded()
	}
	s.status = unloaded
}
