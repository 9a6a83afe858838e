// Package registrytest runs Runnel's schema registry in memory, for tests
// of code that registers and looks up schemas (serdes, pipelines) without
// a broker.
package registrytest

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/registry"
)

// Log is a registry.Log kept in memory, read by one reader.
type Log struct {
	mu      sync.Mutex
	recs    []registry.Record
	next    int           // the first record Poll has not returned
	changed chan struct{} // closed and replaced on every Append
}

// NewLog returns an empty Log.
func NewLog() *Log { return &Log{changed: make(chan struct{})} }

// Append adds a record; it is durable at once.
func (l *Log) Append(_ context.Context, key, value []byte) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	off := int64(len(l.recs))
	l.recs = append(l.recs, registry.Record{Offset: off, Key: key, Value: value})
	close(l.changed)
	l.changed = make(chan struct{})
	return off, nil
}

// Poll returns the records appended since the last Poll, waiting for one
// if there are none.
func (l *Log) Poll(ctx context.Context) ([]registry.Record, error) {
	for {
		l.mu.Lock()
		recs, ch := l.recs[l.next:], l.changed
		l.next = len(l.recs)
		l.mu.Unlock()
		if len(recs) > 0 {
			return recs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close does nothing: there is nothing to release.
func (l *Log) Close() error { return nil }

// Client serves a registry on a fresh Log over HTTP for the length of the
// test and returns a client of it.
func Client(tb testing.TB) *sr.Client {
	tb.Helper()
	r, err := registry.New(context.Background(), NewLog(), registry.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	tb.Cleanup(func() { srv.Close(); r.Close() })
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		tb.Fatal(err)
	}
	return cl
}
