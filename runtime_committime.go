package runnel

// This file times a worker's commits step by step, for the Debug log: where
// the wall time of a commit goes (the tasks' flush, the producer's flush,
// the transaction's end, the positions and the next Begin), and the client
// requests the end is made of. It costs nothing per record: the loop reads
// the clock a few times per commit, and only when Debug is enabled.

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// commitStep names a step of commit, in order.
type commitStep int

const (
	stepFlushTasks    commitStep = iota // the tasks' caches and processors
	stepFlushProducer                   // every produce answered
	stepEnd                             // offsets and the transaction's end (or the group commit)
	stepAfter                           // positions in Pebble, rollback, Begin
	numCommitSteps
)

var commitStepNames = [numCommitSteps]string{"flush_tasks", "flush_producer", "end", "after"}

// commitRequestKeys are the client requests a commit is made of, timed
// from the client's write to its read of the answer.
var commitRequestKeys = []int16{
	8,  // OffsetCommit (at-least-once)
	12, // Heartbeat: the session forces one before EndTxn
	25, // AddOffsetsToTxn
	26, // EndTxn
	28, // TxnOffsetCommit
}

// commitTimer sums the time of a worker's commits by step. The zero value
// (or a timer made with Debug disabled) does nothing.
type commitTimer struct {
	on    bool
	since time.Time // when the worker started: the loop's time

	// Loop goroutine only.
	commits int
	begun   time.Time // the commit in progress, or the last step's end
	last    time.Time
	step    [numCommitSteps]time.Duration
	total   [numCommitSteps]time.Duration

	mu sync.Mutex // guards the following; the client's hook runs on its goroutines
	// reqs sums the round trips of the commitRequestKeys, by key.
	reqs map[int16]requestTime
}

// requestTime is the count and summed round-trip time of a request kind.
type requestTime struct {
	n int
	d time.Duration
}

// newCommitTimer returns a timer that works when log has Debug enabled.
func newCommitTimer(log *slog.Logger) *commitTimer {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return &commitTimer{}
	}
	return &commitTimer{on: true, since: time.Now(), reqs: map[int16]requestTime{}}
}

// hook is the client hook that times the commit requests; nil when off.
func (t *commitTimer) hook() kgo.Hook {
	if !t.on {
		return nil
	}
	return commitRequestHook{t}
}

type commitRequestHook struct{ t *commitTimer }

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (h commitRequestHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	for _, k := range commitRequestKeys {
		if k == key {
			h.t.mu.Lock()
			rt := h.t.reqs[key]
			rt.n++
			rt.d += e2e.DurationE2E()
			h.t.reqs[key] = rt
			h.t.mu.Unlock()
			return
		}
	}
}

// start marks the beginning of a commit.
func (t *commitTimer) start() {
	if !t.on {
		return
	}
	t.begun = time.Now()
	t.last = t.begun
	t.step = [numCommitSteps]time.Duration{}
}

// mark ends step s of the commit in progress.
func (t *commitTimer) mark(s commitStep) {
	if !t.on {
		return
	}
	now := time.Now()
	t.step[s] += now.Sub(t.last)
	t.last = now
}

// done ends the commit in progress, logging its steps.
func (t *commitTimer) done(log *slog.Logger) {
	if !t.on {
		return
	}
	t.mark(stepAfter)
	t.commits++
	attrs := make([]any, 0, 2*numCommitSteps+2)
	attrs = append(attrs, "total", t.last.Sub(t.begun))
	for s, d := range t.step {
		t.total[s] += d
		attrs = append(attrs, commitStepNames[s], d)
	}
	log.Debug("stream: commit", attrs...)
}

// report logs the sums of every commit since the worker started, and the
// share of the loop's time they took.
func (t *commitTimer) report(log *slog.Logger) {
	if !t.on || t.commits == 0 {
		return
	}
	loop := time.Since(t.since)
	var sum time.Duration
	attrs := []any{"commits", t.commits, "loop", loop}
	for s, d := range t.total {
		sum += d
		attrs = append(attrs, commitStepNames[s], d)
	}
	attrs = append(attrs, "commit", sum, "commit_share", float64(sum)/float64(loop))
	t.mu.Lock()
	for _, k := range commitRequestKeys {
		if rt, ok := t.reqs[k]; ok {
			attrs = append(attrs, requestName(k), rt.d, requestName(k)+"_n", rt.n)
		}
	}
	t.mu.Unlock()
	log.Debug("stream: commit time", attrs...)
}

func requestName(key int16) string {
	switch key {
	case 8:
		return "offset_commit"
	case 12:
		return "heartbeat"
	case 25:
		return "add_offsets_to_txn"
	case 26:
		return "end_txn"
	case 28:
		return "txn_offset_commit"
	}
	return "request"
}
