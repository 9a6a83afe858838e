package log

import (
	"bytes"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestZeroAhead: a log whose group commits can go through the commit
// ring keeps zeros written ahead of its appends, but not before the
// segment holds zeroStep bytes, and its commits then go through the
// ring; the file runs past the segment's size with zeros only; a crash
// that leaves those zeros (the files copied while the log is open)
// recovers every batch and cuts them as padding, with no warning of
// lost bytes; and closing the log cuts them. The same holds for a log
// that acknowledges once its appends are written (flush.messages above 1,
// WaitWritten), whose writes go through the ring without RWF_DSYNC.
func TestZeroAhead(t *testing.T) {
	for _, written := range []bool{false, true} {
		t.Run(map[bool]string{false: "flushed", true: "written"}[written], func(t *testing.T) {
			testZeroAhead(t, written)
		})
	}
}

func testZeroAhead(t *testing.T, written bool) {
	dir := t.TempDir()
	cfg := testConfig()
	if written {
		cfg.FlushMessages = 1000
	}
	l := openLog(t, dir, cfg)
	l.SetDirectWrites(true)
	tc := testTailCache(t, 64<<20)
	l.SetTailCache(tc)
	if noDSync.Load() || !tc.ring.usable() {
		t.Skip("no commit ring here (io_uring, or synchronized writes, untrusted or missing)")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	// Six zeroSteps of appends, each committed as a produce's would be;
	// zeros come once the segment holds one.
	var appended, commits int64
	for appended < 6*zeroStep {
		b := makeBatch(t, batchSpec{n: 1 + rng.IntN(3), value: 1 + rng.IntN(60_000), firstTs: 1})
		appended += int64(len(b))
		mustAppend(t, l, b)
		if l.active.dio.failed {
			t.Skip("no O_DIRECT on this file system: no write-back")
		}
		wait := l.WaitFlushed
		if written {
			wait = l.WaitWritten
		}
		if err := wait(l.EndOffset()); err != nil {
			t.Fatal(err)
		}
		commits++
		if size := l.active.pub.size; size < zeroStep/2 {
			// Too few records for zeros yet: the file is the
			// records and at most a block of padding.
			if got := fileSize(t, l.active.path(logSuffix)); got > (size+directBlock-1)&^(directBlock-1) {
				t.Fatalf("file of %d bytes for %d of records: zeros ahead of a segment under %d", got, size, zeroStep)
			}
		}
	}
	s := l.active
	s.wmu.Lock()
	s.awaitZeroing(s.zero.to)
	ready := s.zero.ready
	s.wmu.Unlock()
	size := s.pub.size
	if ready <= size {
		t.Fatalf("zeros ready to %d, appended %d: want zeros ahead", ready, size)
	}
	if got := fileSize(t, s.path(logSuffix)); got <= size || got > ready {
		t.Fatalf("file of %d bytes, segment of %d, zeros to %d", got, size, ready)
	}
	// Commits after the first zeroing went through the ring: most.
	if rang := tc.ring.writes.Load(); rang < commits/2 {
		t.Fatalf("%d of %d commits went through the ring", rang, commits)
	}
	read := readEverything(t, l)
	segmentBytes(t, l) // checks what lies past the size is zeros

	crashed := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed, e.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var warnings bytes.Buffer
	r := openLog(t, crashed, cfg, WithLogger(slog.New(slog.NewTextHandler(&warnings, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if !bytes.Equal(readEverything(t, r), read) {
		t.Fatal("the log recovered from the crash reads differently")
	}
	if got := fileSize(t, r.active.path(logSuffix)); got != size {
		t.Fatalf("recovered file of %d bytes, want the segment's %d", got, size)
	}
	if warnings.Len() > 0 {
		t.Fatalf("recovery warned: %s", warnings.String())
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, s.path(logSuffix)); got != size {
		t.Fatalf("closed log's file of %d bytes, want the segment's %d", got, size)
	}
}
