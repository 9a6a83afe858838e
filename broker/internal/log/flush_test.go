package log

import (
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Callers queued behind a flush share the next one.
func TestWaitFlushedGroupCommit(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	mustAppend(t, l, makeBatch(t, batchSpec{n: 10}))
	if l.flushed.Load() != 0 {
		t.Fatalf("flushed %d before any flush", l.flushed.Load())
	}
	// Hold the flush lock as a flush in progress would, queue callers
	// behind it, then let them go.
	l.flushMu.Lock()
	mustAppend(t, l, makeBatch(t, batchSpec{n: 10}))
	before := l.flushes.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(off int64) {
			defer wg.Done()
			errs <- l.WaitFlushed(off)
		}(int64(1 + i*2))
	}
	waitFor(t, "callers to queue", func() bool { return l.flushWaiters.Load() == 8 })
	l.flushMu.Unlock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := l.flushes.Load() - before; n != 1 {
		t.Fatalf("%d flushes for 8 queued callers, want 1", n)
	}
	if l.flushed.Load() != 20 {
		t.Fatalf("flushed %d, want 20", l.flushed.Load())
	}
	// Already durable: no fsync.
	if err := l.WaitFlushed(20); err != nil || l.flushes.Load()-before != 1 {
		t.Fatalf("%v, %d flushes", err, l.flushes.Load()-before)
	}
	checkInvariants(t, l)
}

// A roll leaves the old segment unflushed; a flush syncs it too.
func TestWaitFlushedAcrossRoll(t *testing.T) {
	cfg := testConfig()
	b := makeBatch(t, batchSpec{n: 5, value: 30})
	cfg.SegmentBytes = int64(len(b))
	l := openLog(t, t.TempDir(), cfg)
	for i := 0; i < 3; i++ {
		mustAppend(t, l, b)
	}
	if err := l.WaitFlushed(15); err != nil {
		t.Fatal(err)
	}
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	for _, s := range l.segments {
		if s.synced != s.pub.size {
			t.Fatalf("segment %d: synced %d of %d", s.base, s.synced, s.pub.size)
		}
	}
	if l.syncedDirGen != l.dirGen {
		t.Fatal("directory not synced after segment creation")
	}
}

func TestFlushMessages(t *testing.T) {
	cfg := testConfig()
	cfg.FlushMessages = 25
	l := openLog(t, t.TempDir(), cfg)
	mustAppend(t, l, makeBatch(t, batchSpec{n: 10}))
	mustAppend(t, l, makeBatch(t, batchSpec{n: 10}))
	if l.flushed.Load() != 0 {
		t.Fatal("flushed below flush.messages")
	}
	mustAppend(t, l, makeBatch(t, batchSpec{n: 10}))
	waitFor(t, "background flush", func() bool { return l.flushed.Load() == 30 })
}

func TestFlushMs(t *testing.T) {
	cfg := testConfig()
	cfg.FlushMessages = 1 << 40
	cfg.FlushMs = time.Millisecond
	l := openLog(t, t.TempDir(), cfg)
	mustAppend(t, l, makeBatch(t, batchSpec{n: 3}))
	waitFor(t, "timed flush", func() bool { return l.flushed.Load() == 3 })
	// Switching it off stops the ticker; appends stay unflushed.
	cfg.FlushMs = 0
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if got := l.Config().FlushMs; got != 0 {
		t.Fatalf("FlushMs %v", got)
	}
}
