package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// startNode starts registry node on log with leader naming the leader,
// and counts the forwarded requests it receives.
func startNode(t *testing.T, log *memLog, node int32, leader *atomic.Int32) (*sr.Client, *atomic.Int32) {
	t.Helper()
	return startNodeOn(t, log.reader(), node, leader)
}

// startNodeOn is startNode reading the log through reader.
func startNodeOn(t *testing.T, reader Log, node int32, leader *atomic.Int32) (*sr.Client, *atomic.Int32) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	r, err := New(context.Background(), reader, Config{
		Node: node, URL: url,
		Leader: func(context.Context) (int32, error) { return leader.Load(), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	forwarded := &atomic.Int32{}
	h := r.Handler()
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		if q.Header.Get(forwardedHeader) != "" {
			forwarded.Add(1)
		}
		h.ServeHTTP(w, q)
	})
	srv.Start()
	t.Cleanup(func() { srv.Close(); r.Close() })
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return cl, forwarded
}

// TestForwardWritesToLeader: two registries on one log; writes sent to
// the one that does not lead reach the leader, the follower answers with
// the leader's answer and has the write when it answers; reads are served
// where they are asked; a leader that announced no URL is error 50004.
func TestForwardWritesToLeader(t *testing.T) {
	ctx := context.Background()
	log := newMemLog()
	var leader atomic.Int32
	leader.Store(1)
	cl1, fwd1 := startNode(t, log, 1, &leader)
	cl2, fwd2 := startNode(t, log, 2, &leader)

	s, err := cl2.CreateSchema(ctx, "users-value", avro(userV1))
	if err != nil {
		t.Fatal(err)
	}
	if fwd1.Load() != 1 || fwd2.Load() != 0 {
		t.Fatalf("forwarded to node 1: %d, to node 2: %d; want 1 and 0", fwd1.Load(), fwd2.Load())
	}
	// Read your write on the follower, at once.
	if got, err := cl2.SchemaByID(ctx, s.ID); err != nil || got.Schema != userV1 {
		t.Fatalf("follower right after the write: %+v, %v", got, err)
	}
	// An incompatible schema is refused by the leader, and the follower
	// passes on its 409.
	if res := cl2.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, "users-value"); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	_, err = cl2.CreateSchema(ctx, "users-value", avro(userBad))
	wantCode(t, err, codeIncompatible)
	if fwd1.Load() != 3 {
		t.Fatalf("forwarded to node 1: %d, want 3", fwd1.Load())
	}

	// Leadership moves to node 2: node 1 forwards now.
	leader.Store(2)
	s2, err := cl1.CreateSchema(ctx, "users-value", avro(userV2))
	if err != nil {
		t.Fatal(err)
	}
	if s2.ID == s.ID || s2.Version != 2 || fwd2.Load() != 1 {
		t.Fatalf("after the move: id %d version %d, forwarded to node 2: %d", s2.ID, s2.Version, fwd2.Load())
	}
	if got, err := cl1.SchemaByVersion(ctx, "users-value", 2); err != nil || got.ID != s2.ID {
		t.Fatalf("node 1 right after its forwarded write: %+v, %v", got, err)
	}

	// A leader that serves no registry: writes fail with 50004, reads
	// go on.
	leader.Store(9)
	_, err = cl1.CreateSchema(ctx, "other-value", avro(userV1))
	wantCode(t, err, codeUnknownLeader)
	if _, err := cl1.SchemaByID(ctx, s2.ID); err != nil {
		t.Fatalf("read with no leader: %v", err)
	}
}

// lazyReader hands its registry what the log holds only after that
// registry appended to it: a registry slow to read what the others
// write.
type lazyReader struct {
	*memReader
	appended chan struct{} // one slot
}

func (r *lazyReader) Append(ctx context.Context, key, value []byte) (int64, error) {
	off, err := r.memReader.Append(ctx, key, value)
	select {
	case r.appended <- struct{}{}:
	default:
	}
	return off, err
}

func (r *lazyReader) Poll(ctx context.Context) ([]Record, error) {
	select {
	case <-r.appended:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return r.memReader.Poll(ctx)
}

// TestForwardToLeaderAnnouncedLater: a registry that has not yet read
// the leader's announcement (the leader's registry started after it, as
// brokers of one cluster start together) reads the log to its end before
// it gives up on the leader, and forwards the write (CI saw 50004 from
// the broker registries' concurrent-writes test).
func TestForwardToLeaderAnnouncedLater(t *testing.T) {
	ctx := context.Background()
	log := newMemLog()
	var leader atomic.Int32
	leader.Store(1)
	cl2, _ := startNodeOn(t, &lazyReader{memReader: log.reader(), appended: make(chan struct{}, 1)}, 2, &leader)
	_, fwd1 := startNode(t, log, 1, &leader) // announced after node 2 read the log

	s, err := cl2.CreateSchema(ctx, "late-value", avro(userV1))
	if err != nil {
		t.Fatalf("write through a registry that had not read the leader's announcement: %v", err)
	}
	if fwd1.Load() != 1 {
		t.Fatalf("forwarded to node 1: %d, want 1", fwd1.Load())
	}
	if got, err := cl2.SchemaByID(ctx, s.ID); err != nil || got.Schema != userV1 {
		t.Fatalf("node 2 right after its forwarded write: %+v, %v", got, err)
	}
}
