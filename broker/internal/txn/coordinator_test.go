package txn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

// memPartition is an in-memory __transaction_state partition: batches are
// durable as soon as they are appended.
type memPartition struct {
	mu      sync.Mutex
	batches [][]byte
}

func (p *memPartition) Append(batch []byte) (func(context.Context) error, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := append([]byte(nil), batch...)
	// The log assigns base offsets: one per record.
	binary.BigEndian.PutUint64(b, uint64(p.endLocked()))
	p.batches = append(p.batches, b)
	return func(context.Context) error { return nil }, nil
}

// endLocked is the offset after the last batch.
//
// REQUIRES: p.mu held.
func (p *memPartition) endLocked() int64 {
	if len(p.batches) == 0 {
		return 0
	}
	h, _ := decodeBatch(p.batches[len(p.batches)-1])
	return h.LastOffset() + 1
}

func (p *memPartition) Read(offset int64, maxBytes int32) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, b := range p.batches {
		if h, _ := decodeBatch(b); h.LastOffset() >= offset {
			out = append(out, b...)
		}
	}
	return out, nil
}

func (p *memPartition) StartOffset() int64 { return 0 }
func (p *memPartition) HighWatermark() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.endLocked()
}

// decodeBatch decodes one whole batch the coordinator wrote.
func decodeBatch(b []byte) (recordbatch.Header, []recordbatch.Record) {
	h, batch, _, err := recordbatch.Next(b)
	if err != nil {
		panic(err)
	}
	recs, err := recordbatch.DecodeRecords(h, batch)
	if err != nil {
		panic(err)
	}
	return h, recs
}

// envClock is the env's clock: its time moves only by advance; its
// timers are real.
type envClock struct{ e *env }

func (c envClock) Now() time.Time {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	return c.e.now
}

func (envClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// env is a coordinator over one in-memory partition, with a clock, an id
// allocator and a marker sink the test controls.
type env struct {
	t     *testing.T
	part  *memPartition
	c     *Coordinator
	mu    sync.Mutex
	now   time.Time
	next  int64
	marks []Marker
	fail  error // WriteMarker fails with this while set
}

func newEnv(t *testing.T, part *memPartition, next int64) *env {
	e := &env{t: t, part: part, now: time.Unix(1_700_000_000, 0), next: next}
	c, err := New(Config{
		Partitions: 1,
		MaxTimeout: time.Minute,
		AllocateProducerIDs: func(_ context.Context, n int64) (int64, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			first := e.next
			e.next += n
			return first, nil
		},
		WriteMarker: func(_ context.Context, m Marker) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.fail != nil {
				return e.fail
			}
			e.marks = append(e.marks, m)
			return nil
		},
		Clock: envClock{e},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	c.Load(0, part, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	e.c = c
	return e
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func (e *env) markers() []Marker {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Marker(nil), e.marks...)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func (e *env) init(id string, pid int64, epoch int16) (int16, int64, int16) {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 5
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = 10_000
	req.ProducerID, req.ProducerEpoch = pid, epoch
	resp := e.c.InitProducerID(ctx(e.t), req)
	return resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch
}

func (e *env) end(id string, pid int64, epoch int16, commit bool, version int16) *kmsg.EndTxnResponse {
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
	return e.c.EndTxn(ctx(e.t), req)
}

func (e *env) add(id string, pid int64, epoch int16, tps ...TopicPartition) int16 {
	code, codes := e.c.AddPartitions(ctx(e.t), id, pid, epoch, kerr.ProducerFenced.Code, tps)
	if codes != nil {
		e.t.Fatalf("per-partition codes %v", codes)
	}
	return code
}

func (e *env) describe(id string) kmsg.DescribeTransactionsResponseTransactionState {
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{id}
	return e.c.DescribeTransactions(req).TransactionStates[0]
}

func must(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
	}
}

var tp0, tp1 = TopicPartition{"t", 0}, TopicPartition{"t", 1}

func TestCommitWritesMarkersAndCompletes(t *testing.T) {
	e := newEnv(t, &memPartition{}, 100)
	code, pid, epoch := e.init("a", -1, -1)
	must(t, "init", code, 0)
	if pid != 100 || epoch != 0 {
		t.Fatalf("init gave %d/%d, want 100/0", pid, epoch)
	}
	must(t, "add", e.add("a", pid, epoch, tp0, tp1), 0)
	if st := e.describe("a"); st.State != "Ongoing" || len(st.Topics) != 1 || len(st.Topics[0].Partitions) != 2 {
		t.Fatalf("described %+v", st)
	}
	must(t, "commit", e.end("a", pid, epoch, true, 4).ErrorCode, 0)
	ms := e.markers()
	if len(ms) != 2 || !ms[0].Commit || ms[0].ProducerID != pid || ms[0].ProducerEpoch != epoch || ms[0].CoordinatorEpoch != 3 {
		t.Fatalf("markers %+v", ms)
	}
	if st := e.describe("a"); st.State != "CompleteCommit" || len(st.Topics) != 0 {
		t.Fatalf("described %+v", st)
	}
	// A retry of the commit succeeds; an abort now is INVALID_TXN_STATE.
	must(t, "commit retry", e.end("a", pid, epoch, true, 4).ErrorCode, 0)
	must(t, "abort after commit", e.end("a", pid, epoch, false, 4).ErrorCode, kerr.InvalidTxnState.Code)
}

func TestNewProducerFencesAndAbortsOld(t *testing.T) {
	e := newEnv(t, &memPartition{}, 0)
	_, pid, epoch := e.init("a", -1, -1)
	must(t, "add", e.add("a", pid, epoch, tp0), 0)
	code, pid2, epoch2 := e.init("a", -1, -1)
	must(t, "second init", code, 0)
	if pid2 != pid || epoch2 != epoch+2 {
		t.Fatalf("second init gave %d/%d, want %d/%d (one bump to fence, one for the new producer)", pid2, epoch2, pid, epoch+2)
	}
	ms := e.markers()
	if len(ms) != 1 || ms[0].Commit || ms[0].ProducerEpoch != epoch+1 {
		t.Fatalf("markers %+v, want one abort at the fencing epoch", ms)
	}
	must(t, "zombie commit", e.end("a", pid, epoch, true, 4).ErrorCode, kerr.ProducerFenced.Code)
	must(t, "zombie add", e.add("a", pid, epoch, tp1), kerr.ProducerFenced.Code)
	must(t, "zombie commit v1", e.end("a", pid, epoch, true, 1).ErrorCode, kerr.InvalidProducerEpoch.Code)
	if err := e.c.VerifyPartition(ctx(t), "a", pid, epoch, "t", 0, true); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("zombie produce verified with %v", err)
	}
	// KIP-360: the zombie re-initialising with what it had is fenced.
	code, _, _ = e.init("a", pid, epoch)
	must(t, "zombie re-init", code, kerr.ProducerFenced.Code)
}

func TestTimedOutTransactionAborted(t *testing.T) {
	e := newEnv(t, &memPartition{}, 0)
	_, pid, epoch := e.init("a", -1, -1)
	must(t, "add", e.add("a", pid, epoch, tp0, tp1), 0)
	e.advance(5 * time.Second)
	e.c.AbortTimedOut()
	if len(e.markers()) != 0 {
		t.Fatal("aborted before its timeout")
	}
	e.advance(6 * time.Second)
	e.c.AbortTimedOut()
	deadline := time.Now().Add(10 * time.Second)
	for e.describe("a").State != "CompleteAbort" {
		if time.Now().After(deadline) {
			t.Fatalf("state %s", e.describe("a").State)
		}
		time.Sleep(time.Millisecond) // polling the completion goroutine
	}
	ms := e.markers()
	if len(ms) != 2 || ms[0].Commit || ms[0].ProducerEpoch != epoch+1 {
		t.Fatalf("markers %+v", ms)
	}
	must(t, "commit after timeout", e.end("a", pid, epoch, true, 4).ErrorCode, kerr.ProducerFenced.Code)
	// The producer recovers with its old epoch (KIP-360).
	code, pid2, epoch2 := e.init("a", pid, epoch)
	must(t, "re-init", code, 0)
	if pid2 != pid || epoch2 != epoch+2 {
		t.Fatalf("re-init gave %d/%d", pid2, epoch2)
	}
}

func TestPreparedTransactionCompletedOnLoad(t *testing.T) {
	part := &memPartition{}
	e := newEnv(t, part, 0)
	_, pid, epoch := e.init("a", -1, -1)
	must(t, "add", e.add("a", pid, epoch, tp0), 0)
	e.mu.Lock()
	e.fail = errors.New("partition away")
	e.mu.Unlock()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = "a", pid, epoch, true
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	e.c.EndTxn(short, req)
	cancel()
	if st := e.describe("a"); st.State != "PrepareCommit" {
		t.Fatalf("state %s", st.State)
	}
	e.c.Close()

	// A new coordinator over the same log writes the markers.
	e2 := newEnv(t, part, 1000)
	deadline := time.Now().Add(10 * time.Second)
	for e2.describe("a").State != "CompleteCommit" {
		if time.Now().After(deadline) {
			t.Fatalf("state %s", e2.describe("a").State)
		}
		time.Sleep(time.Millisecond) // polling the completion goroutine
	}
	if ms := e2.markers(); len(ms) != 1 || !ms[0].Commit || ms[0].ProducerID != pid {
		t.Fatalf("markers %+v", ms)
	}
	// State survived: the next init bumps the same producer id.
	code, pid2, epoch2 := e2.init("a", -1, -1)
	must(t, "init", code, 0)
	if pid2 != pid || epoch2 != epoch+1 {
		t.Fatalf("init after load gave %d/%d", pid2, epoch2)
	}
}

func TestEndTxnV5BumpsEpoch(t *testing.T) {
	e := newEnv(t, &memPartition{}, 0)
	_, pid, epoch := e.init("a", -1, -1)
	must(t, "add", e.add("a", pid, epoch, tp0), 0)
	resp := e.end("a", pid, epoch, true, 5)
	must(t, "commit", resp.ErrorCode, 0)
	if resp.ProducerID != pid || resp.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn v5 returned %d/%d", resp.ProducerID, resp.ProducerEpoch)
	}
	if ms := e.markers(); len(ms) != 1 || ms[0].ProducerEpoch != epoch+1 {
		t.Fatalf("markers %+v: want the bumped epoch", ms)
	}
	// A retry gets the same answer; the old epoch cannot start a
	// transaction (the delayed write of KIP-890).
	if r := e.end("a", pid, epoch, true, 5); r.ErrorCode != 0 || r.ProducerEpoch != epoch+1 {
		t.Fatalf("retry: %v %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch)
	}
	if err := e.c.VerifyPartition(ctx(t), "a", pid, epoch, "t", 0, true); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("old epoch verified: %v", err)
	}
	must(t, "next txn", e.add("a", pid, epoch+1, tp1), 0)
	// An empty abort only bumps.
	must(t, "abort", e.end("a", pid, epoch+1, false, 5).ErrorCode, 0)
	if r := e.end("a", pid, epoch+2, false, 5); r.ErrorCode != 0 || r.ProducerEpoch != epoch+3 {
		t.Fatalf("empty abort: %v %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch)
	}
}

// A TV2 EndTxn prepares at the bumped epoch; when its coordinator dies
// before answering, the producer asks the next one to recover with the
// epoch it holds (the one below). The next coordinator loaded the bump
// from the log and must take that epoch as the producer's own, not
// fence it (CI saw PRODUCER_FENCED after a coordinator kill).
func TestEndTxnV5AnswerLostThenReload(t *testing.T) {
	for _, commit := range []bool{true, false} {
		part := &memPartition{}
		e := newEnv(t, part, 0)
		_, pid, epoch := e.init("a", -1, -1)
		must(t, "add", e.add("a", pid, epoch, tp0), 0)
		e.mu.Lock()
		e.fail = errors.New("partition away")
		e.mu.Unlock()
		short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		req := kmsg.NewPtrEndTxnRequest()
		req.Version = 5
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = "a", pid, epoch, commit
		e.c.EndTxn(short, req) // the answer the producer never gets
		cancel()
		e.c.Close()

		e2 := newEnv(t, part, 1000)
		code, pid2, epoch2 := e2.init("a", pid, epoch)
		must(t, fmt.Sprintf("recovering init after a lost v5 end (commit %v)", commit), code, 0)
		if pid2 != pid || epoch2 <= epoch+1 {
			t.Fatalf("recovering init gave %d/%d, want %d past epoch %d", pid2, epoch2, pid, epoch+1)
		}
		// The decision stood: its markers went out at the bumped epoch.
		if ms := e2.markers(); len(ms) != 1 || ms[0].Commit != commit || ms[0].ProducerEpoch != epoch+1 {
			t.Fatalf("markers after the recovering init: %+v", ms)
		}
		// A producer two epochs behind is still fenced.
		must(t, "init two epochs behind", func() int16 { c, _, _ := e2.init("a", pid, epoch); return c }(), kerr.ProducerFenced.Code)
	}
}

func TestEpochExhaustionMovesToNewProducerID(t *testing.T) {
	e := newEnv(t, &memPartition{}, 0)
	_, pid, _ := e.init("a", -1, -1)
	s, _ := e.c.lookup("a")
	s.txns["a"].epoch = maxEpoch
	s.Unlock()
	code, pid2, epoch2 := e.init("a", pid, maxEpoch)
	must(t, "init", code, 0)
	if pid2 == pid || epoch2 != 0 {
		t.Fatalf("init at the last epoch gave %d/%d", pid2, epoch2)
	}
	// A retry with the exhausted id is recognised.
	code, pid3, _ := e.init("a", pid, maxEpoch)
	must(t, "retry", code, 0)
	if pid3 != pid2 {
		t.Fatalf("retry moved to %d", pid3)
	}
}

func TestInitValidation(t *testing.T) {
	e := newEnv(t, &memPartition{}, 0)
	id := "a"
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = int32((2 * time.Minute).Milliseconds())
	must(t, "timeout above max", e.c.InitProducerID(ctx(t), req).ErrorCode, kerr.InvalidTransactionTimeout.Code)
	req.TransactionTimeoutMillis = 0
	must(t, "zero timeout", e.c.InitProducerID(ctx(t), req).ErrorCode, kerr.InvalidTransactionTimeout.Code)
	// Idempotent producers get distinct ids.
	plain := kmsg.NewPtrInitProducerIDRequest()
	seen := map[int64]bool{}
	for range 5 {
		r := e.c.InitProducerID(ctx(t), plain)
		must(t, "idempotent init", r.ErrorCode, 0)
		if seen[r.ProducerID] || r.ProducerEpoch != 0 {
			t.Fatalf("id %d/%d handed out twice", r.ProducerID, r.ProducerEpoch)
		}
		seen[r.ProducerID] = true
	}
	must(t, "unknown add", e.add("nope", 1, 0, tp0), kerr.InvalidProducerIDMapping.Code)
	must(t, "describe unknown", e.describe("nope").ErrorCode, kerr.TransactionalIDNotFound.Code)
}

func TestListTransactionsFilters(t *testing.T) {
	e := newEnv(t, &memPartition{}, 0)
	_, pa, ea := e.init("a", -1, -1)
	_, pb, _ := e.init("b", -1, -1)
	must(t, "add", e.add("a", pa, ea, tp0), 0)
	list := func(states []string, pids []int64) []string {
		req := kmsg.NewPtrListTransactionsRequest()
		req.StateFilters, req.ProducerIDFilters = states, pids
		var ids []string
		for _, s := range e.c.ListTransactions(req).TransactionStates {
			ids = append(ids, s.TransactionalID+":"+s.TransactionState)
		}
		return ids
	}
	if got := list(nil, nil); len(got) != 2 || got[0] != "a:Ongoing" || got[1] != "b:Empty" {
		t.Fatalf("list %v", got)
	}
	if got := list([]string{"Ongoing"}, nil); len(got) != 1 || got[0] != "a:Ongoing" {
		t.Fatalf("list Ongoing %v", got)
	}
	if got := list(nil, []int64{pb}); len(got) != 1 || got[0] != "b:Empty" {
		t.Fatalf("list by pid %v", got)
	}
	req := kmsg.NewPtrListTransactionsRequest()
	req.StateFilters = []string{"Bogus"}
	if r := e.c.ListTransactions(req); len(r.UnknownStateFilters) != 1 || len(r.TransactionStates) != 0 {
		t.Fatalf("unknown filter: %+v", r)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	m := newMeta("x", 7, time.Minute, time.UnixMilli(1234))
	m.epoch, m.state, m.start, m.tv = 3, Ongoing, time.UnixMilli(1000), 2
	m.parts[tp1], m.parts[tp0], m.parts[TopicPartition{"a", 5}] = struct{}{}, struct{}{}, struct{}{}
	raw := recordbatch.Encode([]recordbatch.Record{{Key: txnKey("x"), Value: txnValue(m)}, {Key: txnKey("y")}}, time.Now(), 0, recordbatch.NoProducer)
	_, recs := decodeBatch(raw)
	txns := map[string]*txnMeta{"y": newMeta("y", 1, time.Second, time.Now())}
	for _, r := range recs {
		if err := applyRecord(r, txns); err != nil {
			t.Fatal(err)
		}
	}
	got := txns["x"]
	if _, ok := txns["y"]; ok || got == nil {
		t.Fatalf("replayed %v", txns)
	}
	if got.pid != 7 || got.epoch != 3 || got.state != Ongoing || got.timeout != time.Minute || !got.start.Equal(m.start) || got.tv != 2 || len(got.parts) != 3 {
		t.Fatalf("replayed %+v", got)
	}
	// Garbage in a record never panics.
	for i := range recs[0].Value {
		bad := recordbatch.Record{Key: recs[0].Key, Value: append([]byte(nil), recs[0].Value...)}
		bad.Value[i] ^= 0xff
		applyRecord(bad, txns)
		bad.Value = bad.Value[:i]
		applyRecord(bad, txns)
	}
}

// A partition unloaded while a commit's markers cannot be written stops
// retrying them, answers NOT_COORDINATOR, and leaves the transaction
// prepared; loaded again, it writes the markers and completes it.
func TestUnloadAndReload(t *testing.T) {
	part := &memPartition{}
	e := newEnv(t, part, 0)
	_, pid, epoch := e.init("a", -1, -1)
	must(t, "add", e.add("a", pid, epoch, tp0, tp1), 0)
	e.mu.Lock()
	e.fail = errors.New("partition leader down")
	e.mu.Unlock()
	ended := make(chan *kmsg.EndTxnResponse, 1)
	go func() { ended <- e.end("a", pid, epoch, true, 4) }()
	waitState(t, e, "a", "PrepareCommit")

	e.c.Unload(0)
	// The decision is durable: the waiting EndTxn succeeds, and the
	// next coordinator of the partition completes it.
	if r := <-ended; r.ErrorCode != 0 {
		t.Fatalf("end: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	must(t, "add after unload", e.add("a", pid, epoch, tp0), kerr.NotCoordinator.Code)
	if d := e.describe("a"); d.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("describe after unload: %v", kerr.ErrorForCode(d.ErrorCode))
	}

	e.mu.Lock()
	e.fail = nil
	e.mu.Unlock()
	e.c.Load(0, part, 4)
	if err := e.c.WaitLoaded(ctx(t)); err != nil {
		t.Fatal(err)
	}
	waitState(t, e, "a", "CompleteCommit")
	var got []Marker
	for _, m := range e.markers() {
		if m.Commit && m.CoordinatorEpoch == 4 {
			got = append(got, m)
		}
	}
	if len(got) != 2 {
		t.Fatalf("markers after reload: %+v", e.markers())
	}
}

// waitState polls until id is in state.
func waitState(t *testing.T, e *env, id, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := e.describe(id)
		if d.ErrorCode == 0 && d.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v %s, want %s", id, kerr.ErrorForCode(d.ErrorCode), d.State, state)
		}
		time.Sleep(time.Millisecond)
	}
}

// The coordinator's timers act only on partitions it serves: once a
// partition is unloaded (its leadership moved to another broker), a
// transaction past its timeout there is neither aborted nor is an idle id
// expired here — the partition's new coordinator does that. Loaded again,
// it is aborted with the new coordinator epoch.
func TestTimersOnlyForLoadedPartitions(t *testing.T) {
	part := &memPartition{}
	e := newEnv(t, part, 0)
	_, pid, epoch := e.init("a", -1, -1)
	must(t, "add", e.add("a", pid, epoch, tp0), 0)
	_, _, _ = e.init("idle", -1, -1)
	batches := func() int {
		part.mu.Lock()
		defer part.mu.Unlock()
		return len(part.batches)
	}
	before := batches()

	e.c.Unload(0)
	e.advance(8 * 24 * time.Hour) // past the timeout and the id expiry
	e.c.AbortTimedOut()
	e.c.ExpireIDs()
	if ms, n := e.markers(), batches(); len(ms) != 0 || n != before {
		t.Fatalf("unloaded partition: %d markers written, %d batches appended", len(ms), n-before)
	}

	e.c.Load(0, part, 4)
	if err := e.c.WaitLoaded(ctx(t)); err != nil {
		t.Fatal(err)
	}
	e.c.AbortTimedOut()
	waitState(t, e, "a", "CompleteAbort")
	if ms := e.markers(); len(ms) != 1 || ms[0].Commit || ms[0].CoordinatorEpoch != 4 {
		t.Fatalf("markers after reload: %+v", ms)
	}
}
