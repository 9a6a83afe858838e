package log

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRetentionByTime(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.RetentionMs = time.Minute
	b := makeBatch(t, batchSpec{n: 5, value: 30})
	cfg.SegmentBytes = int64(2 * len(b))
	dir := t.TempDir()
	l := openLog(t, dir, cfg, WithClock(clk.Now))
	now := clk.Now().UnixMilli()
	old := func(i int) []byte {
		return makeBatch(t, batchSpec{n: 5, value: 30, firstTs: now - 10*60_000 + int64(i)})
	}
	for i := 0; i < 6; i++ { // segments 0, 10, 20, all expired
		mustAppend(t, l, old(i))
	}
	for i := 0; i < 3; i++ { // 30 (fresh), 40 active
		mustAppend(t, l, makeBatch(t, batchSpec{n: 5, value: 30, firstTs: now}))
	}
	n, err := l.EnforceRetention(clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || l.StartOffset() != 30 {
		t.Fatalf("deleted %d, start %d; want 3, 30", n, l.StartOffset())
	}
	if _, err := l.Read(29, 100, l.EndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if got := len(segmentFiles(t, dir)); got != 2 {
		t.Fatalf("%d segment files", got)
	}
	checkInvariants(t, l)
	if hs := readAll(t, l, 1<<20); hs[0].baseOffset != 30 || len(hs) != 3 {
		t.Fatalf("%d batches from %d", len(hs), hs[0].baseOffset)
	}

	// Everything expires: the active segment is rolled and deleted too,
	// leaving an empty active segment at the end offset.
	clk.Advance(time.Hour)
	n, err = l.EnforceRetention(clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || l.StartOffset() != 45 || l.EndOffset() != 45 || l.Size() != 0 {
		t.Fatalf("deleted %d; start %d end %d size %d", n, l.StartOffset(), l.EndOffset(), l.Size())
	}
	checkInvariants(t, l)
	fresh := makeBatch(t, batchSpec{n: 5, firstTs: clk.Now().UnixMilli()})
	if res := mustAppend(t, l, fresh); res.BaseOffset != 45 || res.LogStartOffset != 45 {
		t.Fatalf("%+v", res)
	}
	// Nothing fresh expires.
	if n, err := l.EnforceRetention(clk.Now()); n != 0 || err != nil {
		t.Fatalf("%d %v", n, err)
	}
}

func TestRetentionByBytes(t *testing.T) {
	cfg := testConfig()
	b := makeBatch(t, batchSpec{n: 5, value: 30})
	cfg.SegmentBytes = int64(2 * len(b))
	cfg.RetentionBytes = int64(5 * len(b))
	l := openLog(t, t.TempDir(), cfg)
	for i := 0; i < 9; i++ { // 4 full segments and an active one with 1 batch
		mustAppend(t, l, b)
	}
	n, err := l.EnforceRetention(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// 9 batches, keep at least 5: the two oldest segments go (7 left
	// would drop to 5 without the third, which must stay... 5 >= 5 so it
	// goes too).
	if n != 2 || l.StartOffset() != 20 || l.Size() != int64(5*len(b)) {
		t.Fatalf("deleted %d, start %d, size %d", n, l.StartOffset(), l.Size())
	}
	checkInvariants(t, l)
	if n, _ := l.EnforceRetention(time.Now()); n != 0 {
		t.Fatalf("second pass deleted %d", n)
	}
	// Unlimited retention deletes nothing.
	cfg.RetentionBytes = -1
	l.SetConfig(cfg)
	for i := 0; i < 10; i++ {
		mustAppend(t, l, b)
	}
	if n, _ := l.EnforceRetention(time.Now()); n != 0 {
		t.Fatalf("unlimited deleted %d", n)
	}
}

func TestStartOffsetPersisted(t *testing.T) {
	cfg := testConfig()
	b := makeBatch(t, batchSpec{n: 5, value: 30})
	cfg.SegmentBytes = int64(2 * len(b))
	dir := t.TempDir()
	l := openLog(t, dir, cfg)
	for i := 0; i < 6; i++ {
		mustAppend(t, l, b)
	}
	if err := l.SetStartOffset(100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("start past end: %v", err)
	}
	if err := l.SetStartOffset(13); err != nil {
		t.Fatal(err)
	}
	if err := l.SetStartOffset(3); err != nil || l.StartOffset() != 13 {
		t.Fatalf("moving back: %v, start %d", err, l.StartOffset())
	}
	if got := len(segmentFiles(t, dir)); got != 2 {
		t.Fatalf("%d segments left, want 2 (from 10)", got)
	}
	if _, err := l.Read(12, 100, l.EndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	res, err := l.Read(13, 1, l.EndOffset())
	if err != nil || res.LogStartOffset != 13 {
		t.Fatal(err, res.LogStartOffset)
	}
	if hs := checkBatchesRead(t, res.Records); hs[0].baseOffset != 10 {
		t.Fatalf("read at 13 starts at %d", hs[0].baseOffset)
	}
	l.Close()

	l2 := openLog(t, dir, cfg)
	if l2.StartOffset() != 13 || l2.EndOffset() != 30 {
		t.Fatalf("reopened: start %d end %d", l2.StartOffset(), l2.EndOffset())
	}
	// Retention moves it further and the checkpoint follows.
	cfg.RetentionBytes = 0
	l2.SetConfig(cfg)
	if _, err := l2.EnforceRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	start := l2.StartOffset()
	l2.Close()
	l3 := openLog(t, dir, cfg)
	if l3.StartOffset() != start || start != 20 {
		t.Fatalf("start %d after reopen, %d before", l3.StartOffset(), start)
	}
}

// A checkpoint past the recovered end (the tail was lost) starts the log
// over, empty, at the checkpoint.
func TestStartOffsetPastEnd(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testConfig())
	mustAppend(t, l, makeBatch(t, batchSpec{n: 5}))
	l.Close()
	if err := os.WriteFile(filepath.Join(dir, startOffsetFile), []byte("50\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, testConfig())
	if l2.StartOffset() != 50 || l2.EndOffset() != 50 {
		t.Fatalf("start %d end %d", l2.StartOffset(), l2.EndOffset())
	}
	if res := mustAppend(t, l2, makeBatch(t, batchSpec{n: 1})); res.BaseOffset != 50 {
		t.Fatalf("%+v", res)
	}
}
