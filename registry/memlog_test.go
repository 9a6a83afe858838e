package registry

import (
	"context"
	"sync"
)

// memLog is a Log in memory, for tests that need no broker. Reopen gives
// a reader that starts again from the first record, as a restarted
// registry would.
type memLog struct {
	mu      sync.Mutex // guards the following
	recs    []Record
	changed chan struct{} // closed and replaced on append
	failing error         // Append returns it when set
	// inject, when set, is appended (once) just before the next record:
	// another registry's write that won the race.
	inject *Record
}

func newMemLog() *memLog { return &memLog{changed: make(chan struct{})} }

func (l *memLog) Append(_ context.Context, key, value []byte) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failing != nil {
		return 0, l.failing
	}
	if l.inject != nil {
		l.recs = append(l.recs, Record{Offset: int64(len(l.recs)), Key: l.inject.Key, Value: l.inject.Value})
		l.inject = nil
	}
	off := int64(len(l.recs))
	l.recs = append(l.recs, Record{Offset: off, Key: key, Value: value})
	close(l.changed)
	l.changed = make(chan struct{})
	return off, nil
}

// reader returns a Log view reading from the start.
func (l *memLog) reader() *memReader { return &memReader{l: l} }

type memReader struct {
	l    *memLog
	next int
}

func (r *memReader) Append(ctx context.Context, key, value []byte) (int64, error) {
	return r.l.Append(ctx, key, value)
}

func (r *memReader) Poll(ctx context.Context) ([]Record, error) {
	for {
		r.l.mu.Lock()
		recs, ch := r.l.recs[r.next:], r.l.changed
		r.l.mu.Unlock()
		if len(recs) > 0 {
			r.next += len(recs)
			return recs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (r *memReader) Close() error { return nil }
