package meta

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// recordingHandler keeps the records logged through it.
type recordingHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// While a voter is down Raft logs a failed heartbeat every few
// milliseconds: each kind of line reaches the broker's log once every
// raftLogEvery, with the count of those left out, and other kinds are
// not held back by it.
func TestRaftLogLinesOfAKindRateLimited(t *testing.T) {
	h := &recordingHandler{}
	w := newSlogWriter(slog.New(h))
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	heartbeat := func(backoff int) {
		w.Write([]byte(`[ERROR] raft: failed to heartbeat to: peer=127.0.0.1:9093 backoff time=` + time.Duration(backoff).String() + " error=\"connection refused\"\n"))
	}
	for i := range 500 {
		heartbeat(i)
		now = now.Add(10 * time.Millisecond) // 5 s in all
	}
	w.Write([]byte("[ERROR] raft: failed to appendEntries to: peer=127.0.0.1:9093 error=EOF\n"))
	if len(h.recs) != 2 {
		t.Fatalf("%d lines logged in 5 s, want the first heartbeat failure and the first appendEntries failure", len(h.recs))
	}
	now = now.Add(raftLogEvery)
	heartbeat(1)
	if len(h.recs) != 3 {
		t.Fatalf("%d lines logged, want a third after %v", len(h.recs), raftLogEvery)
	}
	var left int64
	h.recs[2].Attrs(func(a slog.Attr) bool {
		if a.Key == "similar_lines_left_out" {
			left = a.Value.Int64()
		}
		return true
	})
	if left != 499 {
		t.Fatalf("similar_lines_left_out=%d, want 499", left)
	}
}
