package runnel

// This file holds a worker's commits under both guarantees.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commit flushes the tasks and commits their output and the offsets of the
// input they processed (records still queued are not: see inputQueues);
// then it writes the changelog positions the commit covers into Pebble.
// Under exactly-once a failed transaction is aborted: every task is closed,
// its uncommitted store writes rolled back, and the tasks are re-created
// from their committed state, to process again from the committed offsets.
// begin starts the next transaction.
//
// The loop calls commit without taskMu: commit takes it for each step on
// the tasks and makes the client calls that may wait for a group callback
// (Flush, the offset commit, the session's End) without it.
func (r *runner) commit(ctx context.Context, begin bool) error {
	start := time.Now()
	r.ct.start()
	defer r.ct.done(r.log)
	var offsets map[string]map[int32]kgo.EpochOffset
	if err := r.withTasks(func() error {
		offsets = r.processedOffsets()
		return r.flushTasks()
	}); err != nil {
		return err
	}
	r.ct.mark(stepFlushTasks)
	if err := r.flushProduced(ctx); err != nil {
		return err
	}
	r.ct.mark(stepFlushProducer)
	if r.sess == nil {
		if err := r.commitOffsets(ctx, offsets); err != nil {
			return err
		}
		r.ct.mark(stepEnd)
		return r.withTasks(func() error {
			r.committedOffsets(offsets)
			return r.commitPositionsTimed(start)
		})
	}
	if !r.txnWork {
		// Nothing to commit. (An End that commits no offsets also costs
		// 500 ms: the session then holds rebalances back, not knowing
		// the broker has KIP-447.)
		return nil
	}
	if len(offsets) == 0 {
		return r.withTasks(func() error { return r.commitProduced(ctx, begin) })
	}
	try := kgo.TryCommit
	if err := r.takeProduceErr(); errors.As(err, new(*rejectedError)) {
		return err // the deferred close aborts the transaction
	} else if err != nil {
		try = kgo.TryAbort
	}
	if f := r.app.abortCommit; f != nil && f() {
		try = kgo.TryAbort
	}
	// Not under taskMu: the session's revocation hook holds its own lock
	// while it calls onRevoked, which takes taskMu. The session would
	// commit the offsets polled: the hook makes it commit those processed.
	committed, err := r.sess.End(kgo.PreTxnCommitFnContext(ctx, txnOffsets(offsets)), try)
	r.ct.mark(stepEnd)
	if f := r.app.loseEndAnswer; committed && err == nil && f != nil && f() {
		// A lost answer is waited for until the commit's time is out.
		<-ctx.Done()
		committed, err = false, fmt.Errorf("%w: %w", errEndAnswerLost, ctx.Err())
	}
	var settled kadm.OffsetResponses
	if err != nil {
		s, serr := r.settleEnd(ctx, err)
		if serr != nil {
			return serr
		}
		settled = s
	}
	return r.withTasks(func() error { return r.endedTxn(ctx, committed, err, start, begin, offsets, settled) })
}

// commitRevoking is the at-least-once commit of a revocation callback,
// which holds taskMu from start to end: commit's steps, in one piece.
// REQUIRES: r.taskMu held.
func (r *runner) commitRevoking(ctx context.Context) error {
	start := time.Now()
	offsets := r.processedOffsets()
	if err := r.flushTasks(); err != nil {
		return err
	}
	if err := r.flushProduced(ctx); err != nil {
		return err
	}
	if err := r.commitOffsets(ctx, offsets); err != nil {
		return err
	}
	r.committedOffsets(offsets)
	return r.commitPositionsTimed(start)
}

// flushTasks flushes the tasks' caches and processors into their
// batches and the producer. REQUIRES: r.taskMu held.
func (r *runner) flushTasks() error {
	for _, t := range r.tasks {
		if err := t.task.Flush(); err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		if ratio, ok := t.task.CacheHitRatio(); ok {
			t.m.setCacheHitRatio(t.task.ID(), ratio)
		}
	}
	return nil
}

// flushProduced waits for every produce to be answered, then tries alone
// the records the production handler let go. It touches no task.
func (r *runner) flushProduced(ctx context.Context) error {
	if err := r.cl.Flush(ctx); err != nil {
		return fmt.Errorf("stream: flush: %w", err)
	}
	return r.resendSkipped(ctx)
}

// commitOffsets commits offsets (see processedOffsets) under
// at-least-once, unless an output record failed. It touches no task.
func (r *runner) commitOffsets(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	if err := r.takeProduceErr(); err != nil {
		return err
	}
	var cerr error
	r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("stream: commit offsets: %w", cerr)
	}
	return nil
}

// commitPositionsTimed is commitPositions for a commit begun at start,
// counted in the metrics. REQUIRES: r.taskMu held.
func (r *runner) commitPositionsTimed(start time.Time) error {
	if err := r.commitPositions(); err != nil {
		return err
	}
	r.app.metrics.committed(time.Since(start))
	return nil
}

// endedTxn acts on the end of the transaction commit began at start, which
// committed offsets: it commits the tasks' positions, or, if the
// transaction was aborted, rolls the tasks back and rewinds the consumer.
// REQUIRES: r.taskMu held.
func (r *runner) endedTxn(ctx context.Context, committed bool, err error, start time.Time, begin bool, offsets map[string]map[int32]kgo.EpochOffset, settled kadm.OffsetResponses) error {
	if settled != nil {
		r.settledOffsets(settled)
	}
	if committed && err == nil {
		r.committedOffsets(offsets)
		if err := r.commitPositionsTimed(start); err != nil {
			return err
		}
	} else {
		if settled != nil && committedAll(settled, offsets) {
			// The group holds the offsets the transaction committed:
			// it committed, though its end failed. The tasks roll back
			// all the same; their changelogs hold its writes.
			r.app.metrics.committed(time.Since(start))
			r.log.Info("stream: transaction committed, though its end failed; restoring the tasks from their changelogs", "err", err)
		} else {
			r.app.metrics.aborted()
			r.log.Info("stream: transaction aborted; reprocessing from the committed offsets", "err", err)
		}
		r.takeProduceErr()
		if err := r.restartTasks(ctx); err != nil {
			return err
		}
	}
	r.txnWork = false
	if begin {
		if err := r.sess.Begin(); err != nil {
			return fmt.Errorf("stream: begin transaction: %w", err)
		}
	}
	return nil
}

// commitProduced commits a transaction that consumed nothing: output of
// wall-clock punctuation, or of cache flushes, while input stops. The
// producer's transaction is ended directly, with taskMu held, so that no
// revocation can close a task (and hand it to another member) before its
// output is committed; the session's End would stall (see commit).
//
// An End that fails leaves the outcome unknown: the coordinator may have
// decided the commit and then died, or its answer was lost. The producer
// is healed by aborting, and the tasks start again from their changelogs,
// which hold the transaction's writes if it committed; the transaction
// held no input offsets, so where the input stands is the same either
// way.
// REQUIRES: r.taskMu held.
func (r *runner) commitProduced(ctx context.Context, begin bool) error {
	if err := r.takeProduceErr(); err != nil {
		return err // the deferred close aborts the transaction
	}
	r.mu.Lock()
	revoked := r.revokedTxn
	r.mu.Unlock()
	try := kgo.TryCommit
	if revoked {
		try = kgo.TryAbort
	}
	endErr := r.cl.EndTransaction(ctx, try)
	if f := r.app.loseProducedEndAnswer; endErr == nil && !revoked && f != nil && f() {
		<-ctx.Done() // as for commit's lost answers
		endErr = fmt.Errorf("%w: %w", errEndAnswerLost, ctx.Err())
	}
	switch {
	case endErr != nil:
		if err := r.abortAfterFailedEnd(ctx, endErr); err != nil {
			return err
		}
		r.log.Info("stream: a transaction without input failed to end; restoring the tasks from their changelogs", "err", endErr)
		if err := r.restartTasks(ctx); err != nil {
			return err
		}
	case revoked:
		r.app.metrics.aborted()
		if err := r.restartTasks(ctx); err != nil { // their uncommitted writes went with the transaction
			return err
		}
	default:
		if err := r.commitPositions(); err != nil {
			return err
		}
		r.app.metrics.committed(0)
	}
	r.txnWork = false
	if begin {
		if err := r.sess.Begin(); err != nil {
			return fmt.Errorf("stream: begin transaction: %w", err)
		}
	}
	return nil
}

// abortAfterFailedEnd aborts after an End whose outcome is unknown, as
// the client asks: the abort re-initializes the producer id, which waits
// for a decided transaction to complete and fences one still open. It
// tries until settleTimeout passes.
func (r *runner) abortAfterFailedEnd(ctx context.Context, endErr error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	var b backoff
	for {
		err := r.cl.EndTransaction(ctx, kgo.TryAbort)
		if err == nil {
			return nil
		}
		r.log.Debug("stream: abort after a failed end", "err", err)
		if !b.wait(ctx) {
			return fmt.Errorf("stream: transaction outcome unknown (end: %v): abort: %w", endErr, err)
		}
	}
}

// restartTasks closes every task, rolling back what it wrote since the
// last commit, starts the tasks again from their committed state (after
// restoring what their changelogs hold past it), and rewinds the input to
// the committed offsets: the records the tasks had queued come again.
// REQUIRES: r.taskMu held.
//
// ctx is a commit's: its deadline may be spent (an End that timed out is
// what aborted the transaction), so the tasks start under it without its
// deadline, and what they restore has time of its own (see
// restoreEndsTimeout). A commit's context already ignores Close.
func (r *runner) restartTasks(ctx context.Context) error {
	r.closeTasks()
	if err := r.ensureTasks(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	r.rewindInputs()
	return nil
}

func (r *runner) takeProduceErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.produceErr
	r.produceErr = nil
	return err
}

// commitPositions commits every task's batch with its changelog
// positions, then waits for them all to reach the disk with one fsync.
// REQUIRES: r.taskMu held.
func (r *runner) commitPositions() error {
	for _, t := range r.tasks {
		r.mu.Lock()
		pos := t.positions
		t.positions = map[string]int64{}
		r.mu.Unlock()
		if err := t.batch.CommitNoSync(pos); err != nil {
			return fmt.Errorf("stream: task %s: %w", t.task.ID(), err)
		}
	}
	if len(r.tasks) == 0 {
		return nil
	}
	if err := r.db.SyncWAL(); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	return nil
}

// resetRevokedTxn ends the open transaction after a revocation failed it:
// the session would abort its commit anyway. Nothing was processed since it
// began (rebalances wait for commits), so aborting loses nothing and no
// task needs rolling back. The abort rewinds the consumer, so the records
// of the poll just made come again, and those queued too: it reports
// whether it reset, and the caller must then drop them (rewindInputs). It
// touches no task, and is called without taskMu (the session's End may
// wait for a revocation callback).
func (r *runner) resetRevokedTxn(ctx context.Context) (bool, error) {
	r.mu.Lock()
	revoked := r.revokedTxn
	r.revokedTxn = false
	r.mu.Unlock()
	if !revoked || r.sess == nil {
		return false, nil
	}
	if _, err := r.sess.End(ctx, kgo.TryAbort); err != nil {
		return true, fmt.Errorf("stream: end transaction after revocation: %w", err)
	}
	if err := r.sess.Begin(); err != nil {
		return true, fmt.Errorf("stream: begin transaction: %w", err)
	}
	return true, nil
}
