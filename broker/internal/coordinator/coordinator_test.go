package coordinator

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/goleak"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memPartition is an in-memory partition; reads block while gate is set
// and not closed, and say so on reading when that is set.
type memPartition struct {
	mu      sync.Mutex
	batches [][]byte
	gate    chan struct{}
	reading chan struct{}
}

func (p *memPartition) Append(batch []byte) (func(context.Context) error, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := slices.Clone(batch)
	binary.BigEndian.PutUint64(b, uint64(p.endLocked()))
	p.batches = append(p.batches, b)
	return func(context.Context) error { return nil }, nil
}

func (p *memPartition) endLocked() int64 {
	if len(p.batches) == 0 {
		return 0
	}
	h, _ := recordbatch.ParseHeader(p.batches[len(p.batches)-1])
	return h.LastOffset() + 1
}

func (p *memPartition) Read(offset int64, _ int32) ([]byte, error) {
	p.mu.Lock()
	gate, reading := p.gate, p.reading
	p.mu.Unlock()
	if reading != nil {
		reading <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, b := range p.batches {
		if h, _ := recordbatch.ParseHeader(b); h.LastOffset() >= offset {
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

// kvState is a State that keeps the last value of every key.
type kvState struct {
	sh       *Shard[*kvState]
	kv       map[string]string
	loaded   int
	loadErr  error
	unloaded int
}

func (s *kvState) Replay(_ recordbatch.Header, recs []recordbatch.Record) {
	for _, r := range recs {
		s.kv[string(r.Key)] = string(r.Value)
	}
}
func (s *kvState) Loaded(err error) { s.loaded++; s.loadErr = err }
func (s *kvState) Unloaded()        { s.unloaded++ }

// heldClock is a Clock whose timers run only when the test fires them.
type heldClock struct {
	mu     sync.Mutex
	timers []func()
}

func (*heldClock) Now() time.Time { return time.Unix(1_700_000_000, 0) }

func (c *heldClock) AfterFunc(_ time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = append(c.timers, f)
	return func() bool { return false }
}

// fire runs every timer armed so far.
func (c *heldClock) fire() {
	c.mu.Lock()
	ts := c.timers
	c.timers = nil
	c.mu.Unlock()
	for _, f := range ts {
		f()
	}
}

func newRuntime(t *testing.T) *Runtime[*kvState] {
	r := New(Config[*kvState]{
		Topic:      "__test",
		Partitions: 2,
		Clock:      &heldClock{},
		NewState:   func(sh *Shard[*kvState]) *kvState { return &kvState{sh: sh, kv: make(map[string]string)} },
	})
	t.Cleanup(r.Close)
	return r
}

// wantCode checks an error code; a nil want is no error.
func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if got != 0 && want == nil || want != nil && got != want.Code {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func waitLoaded(t *testing.T, r *Runtime[*kvState]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, r *Runtime[*kvState], index int32, k, v string) {
	t.Helper()
	sh, code := r.Lookup(index)
	wantCode(t, "lookup to write", code, nil)
	defer sh.Unlock()
	if _, err := sh.AppendLocked([]recordbatch.Record{{Key: []byte(k), Value: []byte(v)}}, 0, recordbatch.NoProducer); err != nil {
		t.Fatal(err)
	}
	sh.State().kv[k] = v
}

// A shard answers NOT_COORDINATOR before it is loaded,
// COORDINATOR_LOAD_IN_PROGRESS while it replays, serves what it replayed
// once loaded, answers NOT_COORDINATOR again once unloaded, and replays
// afresh — with what it wrote while serving — when loaded again.
func TestLoadServeUnloadReload(t *testing.T) {
	r := newRuntime(t)
	p := &memPartition{}
	p.Append(recordbatch.Encode([]recordbatch.Record{{Key: []byte("a"), Value: []byte("1")}}, time.Now(), 0, recordbatch.NoProducer))

	_, code := r.Lookup(0)
	wantCode(t, "before load", code, kerr.NotCoordinator)

	p.gate = make(chan struct{})
	r.Load(0, p, 7)
	_, code = r.Lookup(0)
	wantCode(t, "loading", code, kerr.CoordinatorLoadInProgress)
	_, code = r.Lookup(1)
	wantCode(t, "other partition", code, kerr.NotCoordinator)
	close(p.gate)
	waitLoaded(t, r)

	sh, code := r.Lookup(0)
	wantCode(t, "loaded", code, nil)
	st := sh.State()
	if st.kv["a"] != "1" || st.loaded != 1 || sh.Epoch() != 7 || sh.Index() != 0 || !sh.ServingLocked() {
		t.Fatalf("loaded state %+v, epoch %d", st, sh.Epoch())
	}
	sh.Unlock()
	put(t, r, 0, "b", "2")

	// A timer of the shard armed before the unload never runs after it.
	fired := 0
	sh.AfterFunc(time.Second, func() { fired++ })
	r.Unload(0)
	r.Clock().(*heldClock).fire()
	_, code = r.Lookup(0)
	wantCode(t, "unloaded", code, kerr.NotCoordinator)
	sh.Lock()
	if st.unloaded != 1 || sh.ServingLocked() {
		t.Fatalf("unloaded %d times, serving %v", st.unloaded, sh.ServingLocked())
	}
	sh.Unlock()
	r.Unload(0) // a second unload does nothing
	if st.unloaded != 1 {
		t.Fatalf("unloaded %d times", st.unloaded)
	}

	r.Load(0, p, 8)
	waitLoaded(t, r)
	sh, code = r.Lookup(0)
	wantCode(t, "reloaded", code, nil)
	if got := sh.State(); got == st || got.kv["a"] != "1" || got.kv["b"] != "2" || sh.Epoch() != 8 {
		t.Fatalf("reloaded state %+v (same as before: %v), epoch %d", got, got == st, sh.Epoch())
	}
	sh.Unlock()
	if fired != 0 {
		t.Fatal("the unloaded shard's timer ran")
	}
	// A timer of the loaded shard does run.
	sh.AfterFunc(time.Second, func() { fired++ })
	r.Clock().(*heldClock).fire()
	if fired != 1 {
		t.Fatalf("the loaded shard's timer ran %d times", fired)
	}
}

// Unloading a shard while it replays stops the replay: it never serves,
// Loaded and Unloaded are not called, and WaitLoaded does not wait for
// it.
func TestUnloadWhileLoading(t *testing.T) {
	r := newRuntime(t)
	p := &memPartition{gate: make(chan struct{}), reading: make(chan struct{}, 1)}
	p.Append(recordbatch.Encode([]recordbatch.Record{{Key: []byte("a"), Value: []byte("1")}}, time.Now(), 0, recordbatch.NoProducer))
	r.Load(1, p, 0)
	sh := r.Shards()[0]
	<-p.reading // the loader is in Read
	unloaded := make(chan struct{})
	go func() { r.Unload(1); close(unloaded) }()
	// Unload waits for the loader: release it once the unload began.
	<-sh.Context().Done()
	close(p.gate)
	<-unloaded
	waitLoaded(t, r)
	_, code := r.Lookup(1)
	wantCode(t, "unloaded while loading", code, kerr.NotCoordinator)
	sh.Lock()
	defer sh.Unlock()
	if st := sh.State(); st.loaded != 0 || st.unloaded != 0 {
		t.Fatalf("loaded %d, unloaded %d times", st.loaded, st.unloaded)
	}
}

// Loading a partition again at a new epoch replaces the shard.
func TestLoadAgainReplaces(t *testing.T) {
	r := newRuntime(t)
	p := &memPartition{}
	r.Load(0, p, 1)
	waitLoaded(t, r)
	old := r.Shards()[0]
	r.Load(0, p, 2)
	waitLoaded(t, r)
	if got := r.Shards(); len(got) != 1 || got[0] == old || got[0].Epoch() != 2 {
		t.Fatalf("shards after reload: %d", len(got))
	}
	if old.State().unloaded != 1 {
		t.Fatalf("old shard unloaded %d times", old.State().unloaded)
	}
}

// A replay stops at a corrupt batch, and the shard serves what was read.
func TestLoadStopsAtCorruptBatch(t *testing.T) {
	r := newRuntime(t)
	p := &memPartition{}
	p.Append(recordbatch.Encode([]recordbatch.Record{{Key: []byte("a"), Value: []byte("1")}}, time.Now(), 0, recordbatch.NoProducer))
	p.Append(recordbatch.Encode([]recordbatch.Record{{Key: []byte("b"), Value: []byte("2")}}, time.Now(), 0, recordbatch.NoProducer))
	p.batches[1][len(p.batches[1])-1] ^= 0xff // CRC mismatch
	r.Load(0, p, 0)
	waitLoaded(t, r)
	sh, code := r.Lookup(0)
	wantCode(t, "loaded", code, nil)
	defer sh.Unlock()
	if st := sh.State(); st.kv["a"] != "1" || st.kv["b"] != "" || !errors.Is(st.loadErr, recordbatch.ErrCorrupt) {
		t.Fatalf("replayed %v, load error %v", st.kv, st.loadErr)
	}
}

// After Close every lookup is COORDINATOR_NOT_AVAILABLE, Load does
// nothing, and no goroutine is left (TestMain checks).
func TestClose(t *testing.T) {
	r := newRuntime(t)
	r.Load(0, &memPartition{}, 0)
	waitLoaded(t, r)
	st := r.Shards()[0].State()
	ran := make(chan struct{})
	if !r.Go(func() { <-r.Context().Done(); close(ran) }) {
		t.Fatal("Go refused before Close")
	}
	r.Close()
	<-ran
	if st.unloaded != 1 {
		t.Fatalf("unloaded %d times on close", st.unloaded)
	}
	_, code := r.Lookup(0)
	wantCode(t, "closed", code, kerr.CoordinatorNotAvailable)
	r.Load(1, &memPartition{}, 0)
	if len(r.Shards()) != 0 || r.Go(func() {}) {
		t.Fatal("runtime took work after Close")
	}
	r.Close()
}

func TestPartitionForMatchesJava(t *testing.T) {
	// "hello".hashCode() is 99162322; "" is 0; a supplementary
	// character hashes as its two UTF-16 code units.
	for key, want := range map[string]int32{"hello": 99162322 % 50, "": 0, "\U0001F600": int32((0xD83D*31 + 0xDE00) % 50)} {
		if got := PartitionFor(key, 50); got != want {
			t.Errorf("PartitionFor(%q) = %d, want %d", key, got, want)
		}
	}
}

// settlingPartition is a memPartition whose high watermark is held at hw
// (a new leader's, below its log end) until the test raises it; it
// settles by waiting for that.
type settlingPartition struct {
	memPartition
	hwMu   sync.Mutex
	hw     int64
	raised chan struct{} // closed when hw reaches the log end
	// started is closed when the loader first asks the partition
	// anything (to settle, or its high watermark to replay up to).
	started     chan struct{}
	startedOnce sync.Once
}

func newSettlingPartition() *settlingPartition {
	return &settlingPartition{raised: make(chan struct{}), started: make(chan struct{})}
}

func (p *settlingPartition) start() { p.startedOnce.Do(func() { close(p.started) }) }

func (p *settlingPartition) HighWatermark() int64 {
	p.start()
	p.hwMu.Lock()
	defer p.hwMu.Unlock()
	return p.hw
}

// Read returns the batches below the high watermark, as a partition's
// Read does.
func (p *settlingPartition) Read(offset int64, maxBytes int32) ([]byte, error) {
	data, err := p.memPartition.Read(offset, maxBytes)
	hw := p.HighWatermark()
	var out []byte
	for len(data) > 0 {
		h, _, rest, err := recordbatch.Next(data)
		if err != nil {
			return nil, err
		}
		if h.LastOffset() < hw {
			out = append(out, data[:len(data)-len(rest)]...)
		}
		data = rest
	}
	return out, err
}

func (p *settlingPartition) Settle(ctx context.Context) error {
	p.start()
	select {
	case <-p.raised:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *settlingPartition) raise() {
	p.mu.Lock()
	end := p.endLocked()
	p.mu.Unlock()
	p.hwMu.Lock()
	p.hw = end
	p.hwMu.Unlock()
	close(p.raised)
}

// A shard on a partition that settles (a new leader whose high watermark
// is still below records its predecessor acknowledged) answers
// COORDINATOR_LOAD_IN_PROGRESS until the high watermark has caught up,
// then replays everything, the records above the old high watermark
// included. Unloaded while settling, it stops at once.
func TestLoadSettlesFirst(t *testing.T) {
	r := newRuntime(t)
	p := newSettlingPartition()
	p.Append(recordbatch.Encode([]recordbatch.Record{{Key: []byte("a"), Value: []byte("1")}}, time.Now(), 0, recordbatch.NoProducer))
	p.Append(recordbatch.Encode([]recordbatch.Record{{Key: []byte("b"), Value: []byte("2")}}, time.Now(), 0, recordbatch.NoProducer))
	p.hw = 1 // "b" is above the new leader's high watermark

	r.Load(0, p, 3)
	_, code := r.Lookup(0)
	wantCode(t, "settling", code, kerr.CoordinatorLoadInProgress)
	<-p.started
	p.raise()
	waitLoaded(t, r)
	sh, code := r.Lookup(0)
	wantCode(t, "loaded", code, nil)
	if st := sh.State(); st.kv["a"] != "1" || st.kv["b"] != "2" {
		t.Errorf("state after settling: %v, want a=1 b=2", st.kv)
	}
	sh.Unlock()

	// Unloaded while it waits to settle: no load, no Loaded call.
	q := newSettlingPartition()
	r.Load(1, q, 1)
	var st *kvState
	for _, s := range r.Shards() {
		if s.Index() == 1 {
			st = s.State()
		}
	}
	r.Unload(1)
	_, code = r.Lookup(1)
	wantCode(t, "unloaded while settling", code, kerr.NotCoordinator)
	if st.loaded != 0 || st.unloaded != 0 {
		t.Errorf("unloaded while settling: loaded %d, unloaded %d times; want 0, 0", st.loaded, st.unloaded)
	}
}
