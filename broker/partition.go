package broker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/log"
)

// partition is one topic partition this broker holds, as leader or
// follower: its log, its leader epoch, its high watermark, and while it
// leads, its replication state (replicaState, replica_state.go; the
// partition's methods in partition_replication.go are the only way in).
// A partition with one replica leads alone: its high watermark is its own
// durable log end, as on a single node.
type partition struct {
	topic   string
	topicID [16]byte
	index   int32
	log     *log.Log

	// appendMu serialises appends: log.Log accepts one appender at a time,
	// and offsets must be handed out in the order batches are written.
	// It also guards the following.
	appendMu sync.Mutex
	// verifyGuards holds, per producer id, the guard of the KIP-890
	// verification in flight or done for its next transaction here; a
	// marker removes it (see partition_txn.go).
	verifyGuards map[int64]uint64
	guardSeq     uint64

	mu sync.Mutex // guards the following
	// leaderEpoch is the partition leader epoch from metadata, stamped on
	// every batch appended.
	leaderEpoch int32
	// hw is the high watermark: consumers read below it, acks wait for
	// it. On one node it follows the flushed offset when appends are
	// durable (flush.messages=1), and the log end offset otherwise.
	// Invariant: log start offset <= hw <= log end offset.
	hw int64
	// durable is true when acknowledgements wait for an fsync.
	durable bool
	// waiters are woken (non-blocking send) when hw moves.
	waiters map[chan struct{}]struct{}
	// leoWaiters are woken when the durable log end moves (acks=1
	// produces wait for that, not for hw).
	leoWaiters map[chan struct{}]struct{}
	// fetchWaiters, followers' long polls, are woken when the log end
	// moves, durable or not (partition_replication.go, watchLEO).
	fetchWaiters map[chan struct{}]struct{}
	// durableEnd is the offset below which the local log is durable (or
	// written, when the topic does not fsync before acking).
	// Invariant: hw <= durableEnd <= log end offset while leading.
	durableEnd int64
	// leading is set while metadata names this broker the leader at
	// leaderEpoch; appends are refused otherwise.
	leading bool
	// leader is the leader's broker id (-1 when none), for followers.
	leader int32
	// rs is the replication state while leading, nil otherwise.
	rs *replicaState
	// minISR is min.insync.replicas in force for the topic.
	minISR int
	// replicated is set when the partition has more than one replica:
	// only then is its high watermark checkpointed.
	replicated bool
	// hwCheckpointed is the high watermark last written to the
	// checkpoint file, or read from it (partition_replication.go).
	hwCheckpointed int64
	// completing holds transactions whose marker is written but not yet
	// below hw: they keep the LSO at their first offset until it is.
	// Invariant: every entry's marker >= hw (setHW drops the others).
	completing []completingTxn
	// slowAckLogged is when a slow acks=all wait was last logged
	// (replication_metrics.go).
	slowAckLogged time.Time

	// reads follows the connections fetching the partition, for the
	// page cache drop-behind (read_marks.go).
	reads readMarks
	// directWrites says appends bypass the page cache: always with the
	// direct writes' cache (tailCached), else while no connection fetches
	// the partition (Config.DisableDirectWrites). Set at creation.
	directWrites bool
	// tailCached says the broker's direct writes' cache keeps what the
	// partition appends, for its readers: it writes directly even while
	// fetched. Set at creation.
	tailCached bool

	// flushTime observes each group commit of hwLoop; nil: not timed.
	flushTime interface{ Observe(float64) }

	appended chan struct{} // nudges hwLoop; buffered 1
	stop     chan struct{}
	wg       sync.WaitGroup
}

// flushTime, when not nil, observes the seconds each group commit takes.
func newPartition(topic string, id [16]byte, index int32, l *log.Log, epoch int32, durable bool, hw int64, flushTime interface{ Observe(float64) }) *partition {
	p := &partition{
		topic:          topic,
		topicID:        id,
		index:          index,
		log:            l,
		leaderEpoch:    epoch,
		hw:             hw,
		hwCheckpointed: hw,
		durableEnd:     l.EndOffset(),
		leader:         -1,
		minISR:         1,
		durable:        durable,
		waiters:        make(map[chan struct{}]struct{}),
		leoWaiters:     make(map[chan struct{}]struct{}),
		fetchWaiters:   make(map[chan struct{}]struct{}),
		verifyGuards:   make(map[int64]uint64),
		appended:       make(chan struct{}, 1),
		stop:           make(chan struct{}),
		flushTime:      flushTime,
	}
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.hwLoop() }()
	return p
}

// hwLoop advances the high watermark to what the log has made durable,
// or, when acknowledgements come before the fsync (flush.messages above
// 1), to what it has written to its files. One WaitFlushed (WaitWritten)
// covers every append made while the previous one waited: that is the
// group commit.
func (p *partition) hwLoop() {
	for {
		select {
		case <-p.stop:
			return
		case <-p.appended:
		}
		end := p.log.EndOffset()
		p.mu.Lock()
		durable := p.durable
		p.mu.Unlock()
		if durable {
			var t0 time.Time
			if p.flushTime != nil {
				t0 = time.Now()
			}
			err := p.log.WaitFlushed(end)
			if p.flushTime != nil {
				p.flushTime.Observe(time.Since(t0).Seconds())
			}
			if err != nil {
				// The log is broken (sticky write error) or closed;
				// the high watermark stays where it is and producers
				// time out or get the append error.
				continue
			}
		} else if err := p.log.WaitWritten(end); err != nil {
			continue // as above
		}
		p.localDurable(end)
	}
}

func (p *partition) setHW(hw int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setHWLocked(hw)
}

// setHWLocked raises the high watermark to hw (never lowers it) and wakes
// its waiters.
// REQUIRES: p.mu held.
func (p *partition) setHWLocked(hw int64) {
	if hw <= p.hw {
		return
	}
	p.hw = hw
	if len(p.completing) > 0 {
		p.completing = slices.DeleteFunc(p.completing, func(t completingTxn) bool { return t.marker < hw })
	}
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// append writes batches at the current leader epoch and nudges the high
// watermark loop.
func (p *partition) append(batches []byte) (log.AppendResult, error) {
	return p.appendChecked(batches, txnCheck{})
}

// appendChecked is append for a produce whose transactional batches were
// verified with the coordinator (tc; see verifyTxn). Producer checks
// (sequence, epoch, transaction state) happen in the log, under the
// append lock.
func (p *partition) appendChecked(batches []byte, tc txnCheck) (log.AppendResult, error) {
	p.appendMu.Lock()
	p.mu.Lock()
	epoch, leading := p.leaderEpoch, p.leading
	p.mu.Unlock()
	if !leading {
		p.appendMu.Unlock()
		return log.AppendResult{}, errNotLeader
	}
	o := log.AppendOptions{LeaderEpoch: epoch, VerifyTxnStart: tc.verify, VerifiedProducer: -1}
	if tc.guard != 0 && p.verifyGuards[tc.producerID] == tc.guard {
		o.VerifiedProducer = tc.producerID
	}
	p.writeDirect()
	res, err := p.log.AppendWith(batches, o)
	p.appendMu.Unlock()
	if err != nil {
		return res, err
	}
	if !res.Duplicate {
		p.nudge()
		p.wakeFetchers()
	}
	return res, nil
}

// nudge wakes the high watermark loop.
func (p *partition) nudge() {
	select {
	case p.appended <- struct{}{}:
	default:
	}
}

func (p *partition) highWatermark() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hw
}

func (p *partition) epoch() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leaderEpoch
}

// watch registers ch to be signalled when the high watermark moves.
func (p *partition) watch(ch chan struct{}) {
	p.mu.Lock()
	p.waiters[ch] = struct{}{}
	p.mu.Unlock()
}

func (p *partition) unwatch(ch chan struct{}) {
	p.mu.Lock()
	delete(p.waiters, ch)
	p.mu.Unlock()
}

// waitHW blocks until the high watermark reaches off, ctx is done, or the
// partition closes. It reports whether off was reached.
func (p *partition) waitHW(ctx context.Context, off int64) bool {
	ch := make(chan struct{}, 1)
	p.watch(ch)
	defer p.unwatch(ch)
	for {
		if p.highWatermark() >= off {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		case <-p.stop:
			return p.highWatermark() >= off
		}
	}
}

// update applies a new log config (and durability mode).
func (p *partition) update(cfg log.Config) error {
	p.mu.Lock()
	p.durable = cfg.FlushMessages <= 1
	p.mu.Unlock()
	if err := p.log.SetConfig(cfg); err != nil {
		return err
	}
	// A switch to relaxed durability must not leave the high watermark
	// behind; let the loop catch up.
	p.nudge()
	return nil
}

// close stops the high watermark loop, checkpoints the high watermark
// and closes the log.
func (p *partition) close() error {
	close(p.stop)
	p.wg.Wait()
	return errors.Join(p.checkpointHW(), p.log.Close())
}
