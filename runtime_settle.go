package runnel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// errEndAnswerLost is the failure a test's loseEndAnswer hook gives a
// transaction that committed.
var errEndAnswerLost = errors.New("stream: the transaction's end was answered, but the answer was lost (test hook)")

// settleTimeout bounds how long settleEnd tries to learn a transaction's
// outcome before the worker fails.
const settleTimeout = 30 * time.Second

// settleEnd learns how a transaction whose End failed with endErr ended.
// Its outcome is unknown: the EndTxn may have reached the coordinator,
// which decided the commit and then died, or its answer was lost; the
// next coordinator completes what was decided. Taking it as aborted and
// reading again from the offsets committed before it would process a
// committed transaction's input twice.
//
// Aborting again through the session heals its producer: the client
// re-initializes its producer id, which waits for a decided transaction
// to complete and fences one still open. The group's committed offsets,
// read once no transaction holds them pending (RequireStable), then say
// where the input stands either way; the caller rolls the tasks back to
// their changelogs, which hold the transaction's writes if it committed.
//
// It makes the client calls that may wait for a group callback, so it is
// called without taskMu.
func (r *runner) settleEnd(ctx context.Context, endErr error) (kadm.OffsetResponses, error) {
	// The commit's context may be what ended the End.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	r.log.Info("stream: a transaction's end failed; learning its outcome from the group", "err", endErr)
	var b backoff
	for {
		_, err := r.sess.End(ctx, kgo.TryAbort)
		if err == nil {
			break
		}
		r.log.Debug("stream: abort after a failed end", "err", err)
		if !b.wait(ctx) {
			return nil, fmt.Errorf("stream: transaction outcome unknown (end: %v): abort: %w", endErr, err)
		}
	}
	for {
		offs, err := r.adm.FetchOffsets(kadm.RequireStable(ctx), r.app.opts.ApplicationID)
		if err == nil {
			err = offs.Error()
		}
		if err == nil {
			return offs, nil
		}
		r.log.Debug("stream: fetch committed offsets after a failed end", "err", err)
		if !b.wait(ctx) {
			return nil, fmt.Errorf("stream: transaction outcome unknown (end: %v): fetch committed offsets: %w", endErr, err)
		}
	}
}

// settledOffsets makes the group's committed offsets, as settleEnd read
// them, where the owned partitions stand committed. REQUIRES: r.taskMu
// held.
func (r *runner) settledOffsets(offs kadm.OffsetResponses) {
	for _, k := range r.owned {
		for topic, ps := range r.partitionsOf(k) {
			for _, p := range ps {
				tp := topicPartition{topic, p}
				if o, ok := offs.Lookup(topic, p); ok && o.At >= 0 {
					r.committedAt[tp] = kgo.EpochOffset{Epoch: o.LeaderEpoch, Offset: o.At}
				} else {
					// Nothing committed: the consumer's reset policy
					// says where to start, as at the first assignment.
					delete(r.committedAt, tp)
				}
			}
		}
	}
}

// committedAll reports whether the group's committed offsets are offsets,
// those a transaction committed.
func committedAll(offs kadm.OffsetResponses, offsets map[string]map[int32]kgo.EpochOffset) bool {
	for topic, ps := range offsets {
		for p, o := range ps {
			if got, ok := offs.Lookup(topic, p); !ok || got.At != o.Offset {
				return false
			}
		}
	}
	return true
}
