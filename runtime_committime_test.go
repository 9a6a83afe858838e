package runnel

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordHandler keeps the records logged, with their attributes.
type recordHandler struct {
	mu   sync.Mutex
	recs []map[string]any
	msgs []string
}

func (h *recordHandler) Enabled(_ context.Context, l slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]any{}
	r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.Any(); return true })
	h.mu.Lock()
	h.recs, h.msgs = append(h.recs, attrs), append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// The commit timer sums each step and the commit requests' round trips
// when Debug is enabled, and does nothing (no client hook) otherwise.
func TestCommitTimer(t *testing.T) {
	if ct := newCommitTimer(slog.New(slog.DiscardHandler)); ct.hook() != nil || ct.on {
		t.Fatal("commit timer on with Debug disabled")
	}
	h := &recordHandler{}
	log := slog.New(h)
	ct := newCommitTimer(log)
	hook, ok := ct.hook().(kgo.HookBrokerE2E)
	if !ok {
		t.Fatal("no request hook with Debug enabled")
	}
	for range 2 {
		ct.start()
		ct.mark(stepFlushTasks)
		ct.mark(stepFlushProducer)
		hook.OnBrokerE2E(kgo.BrokerMetadata{}, 26, kgo.BrokerE2E{TimeToWrite: time.Millisecond, ReadWait: 2 * time.Millisecond})
		hook.OnBrokerE2E(kgo.BrokerMetadata{}, 0, kgo.BrokerE2E{TimeToWrite: time.Second}) // a produce: not a commit request
		ct.mark(stepEnd)
		ct.done(log)
	}
	ct.report(log)
	if len(h.msgs) != 3 || h.msgs[0] != "stream: commit" || h.msgs[2] != "stream: commit time" {
		t.Fatalf("logged %q", h.msgs)
	}
	sum := h.recs[2]
	if sum["commits"] != int64(2) || sum["end_txn_n"] != int64(2) || sum["end_txn"] != 6*time.Millisecond {
		t.Fatalf("commit time %v", sum)
	}
	if _, ok := sum["request"]; ok {
		t.Fatalf("a produce counted as a commit request: %v", sum)
	}
	for _, k := range []string{"flush_tasks", "flush_producer", "end", "after", "commit", "loop", "commit_share"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("commit time without %s: %v", k, sum)
		}
	}
}
