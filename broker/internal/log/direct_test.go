package log

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
)

// directTestBatch is one batch whose records carry value bytes each,
// n records, so that the appends cross block and chunk boundaries.
func directTestBatch(t *testing.T, rng *rand.Rand) []byte {
	t.Helper()
	sizes := []int{1, 17, 100, 1000, 4000, 5000, 70_000, 200_000}
	return makeBatch(t, batchSpec{n: 1 + rng.IntN(4), value: sizes[rng.IntN(len(sizes))], firstTs: 1})
}

// segmentBytes returns the bytes of the log's segment files, in order, up
// to each segment's size, and checks that what lies past the size (an
// active segment's padding) is zeros: less than a block of them, or as
// many as zero-ahead wrote.
func segmentBytes(t *testing.T, l *Log) []byte {
	t.Helper()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	var out []byte
	for _, s := range l.segments {
		if err := s.writePending(); err != nil { // what a flush writes (writeback.go)
			t.Fatal(err)
		}
		raw, err := os.ReadFile(s.path(logSuffix))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(raw)) < s.w.size {
			t.Fatalf("segment %d: file of %d bytes, size %d", s.base, len(raw), s.w.size)
		}
		s.wmu.Lock()
		s.awaitZeroing(s.zero.to)
		// Zeros ahead (zeroahead.go) reach as far as zeroing went.
		limit := max((s.w.size+directBlock-1)&^(directBlock-1), s.zero.ready)
		s.wmu.Unlock()
		if pad := raw[s.w.size:]; int64(len(raw)) > limit || bytes.ContainsFunc(pad, func(r rune) bool { return r != 0 }) {
			t.Fatalf("segment %d: %d bytes past its size are not padding", s.base, len(pad))
		}
		out = append(out, raw[:s.w.size]...)
	}
	return out
}

// TestDirectWritesMatchBufferedWrites appends the same batches to two
// logs, one through the page cache and one switching at random between
// direct and buffered writes, across block, chunk (1 MiB) and segment
// boundaries, and checks after every append that both hold the same
// bytes and read back the same batches; then that closing cuts the
// padding and a reopened log has everything.
func TestDirectWritesMatchBufferedWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := testConfig()
	cfg.SegmentBytes = 3 << 20
	bufDir, dirDir := t.TempDir(), t.TempDir()
	buffered := openLog(t, bufDir, cfg)
	buffered.SetDirectWrites(false)
	direct := openLog(t, dirDir, cfg)
	var want []byte
	for i := range 60 {
		direct.SetDirectWrites(rng.IntN(4) != 0)
		var in []byte
		for range 1 + rng.IntN(3) {
			in = append(in, directTestBatch(t, rng)...)
		}
		if i == 30 {
			// A write of several chunks.
			for len(in) < 2*directChunk+123 {
				in = append(in, directTestBatch(t, rng)...)
			}
		}
		rb, rd := mustAppend(t, buffered, in), mustAppend(t, direct, in)
		if rb.BaseOffset != rd.BaseOffset || rb.LastOffset != rd.LastOffset {
			t.Fatalf("append %d: offsets [%d, %d] buffered, [%d, %d] direct", i, rb.BaseOffset, rb.LastOffset, rd.BaseOffset, rd.LastOffset)
		}
		want = segmentBytes(t, buffered)
		if got := segmentBytes(t, direct); !bytes.Equal(got, want) {
			t.Fatalf("append %d: the direct log's files differ (%d bytes against %d)", i, len(got), len(want))
		}
		checkInvariants(t, direct)
	}
	if hb, hd := readAll(t, buffered, 1<<20), readAll(t, direct, 1<<20); len(hb) != len(hd) {
		t.Fatalf("read %d batches buffered, %d direct", len(hb), len(hd))
	}
	if len(direct.segments) < 3 {
		t.Fatalf("%d segments: the test means to roll", len(direct.segments))
	}

	end := direct.EndOffset()
	if err := direct.Close(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, name := range segmentFiles(t, dirDir) {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, raw...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("closed: the files hold %d bytes, want %d (padding left?)", len(got), len(want))
	}
	re := openLog(t, dirDir, cfg)
	if re.EndOffset() != end {
		t.Fatalf("reopened: end %d, want %d", re.EndOffset(), end)
	}
	readAll(t, re, 1<<20)
}

// TestDirectWritesCrashKeepsEverything copies the files of a log being
// written directly, as a crash would leave them (padding and all), and
// checks that the copy opens with every flushed batch and a file cut to
// its last batch, without taking the padding for a torn write.
func TestDirectWritesCrashKeepsEverything(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	l := openLog(t, dir, testConfig())
	l.SetDirectWrites(true)
	for range 25 {
		mustAppend(t, l, directTestBatch(t, rng))
	}
	if err := l.WaitFlushed(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	want := segmentBytes(t, l)
	end := l.EndOffset()
	raw, err := os.ReadFile(l.active.path(logSuffix))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) == l.active.w.size {
		t.Fatal("the active segment is not padded: the test checks nothing")
	}

	crashed := copyDir(t, dir)
	re := openLog(t, crashed, testConfig())
	if re.EndOffset() != end {
		t.Fatalf("after the crash: end %d, want %d", re.EndOffset(), end)
	}
	if got := segmentBytes(t, re); !bytes.Equal(got, want) {
		t.Fatalf("after the crash: %d bytes, want %d", len(got), len(want))
	}
	if fi, err := re.active.f.Stat(); err != nil || fi.Size() != re.active.w.size {
		t.Fatalf("after the crash: file not cut to the last batch: %v %v", fi.Size(), err)
	}
	// And it goes on: a direct append after recovery starts from the
	// recovered partial block.
	re.SetDirectWrites(true)
	mustAppend(t, re, directTestBatch(t, rng))
	readAll(t, re, 1<<20)
	checkInvariants(t, re)
}

// TestTruncateDirCutsPaddingNotBatches: an offline truncation of a log
// whose newest segment ends in direct-write padding keeps the batches
// below the cut, and at the log end changes nothing (it once cut the
// whole segment at any torn tail).
func TestTruncateDirCutsPaddingNotBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dir := t.TempDir()
	l := openLog(t, dir, testConfig())
	l.SetDirectWrites(true)
	var lasts []int64
	for range 10 {
		lasts = append(lasts, mustAppend(t, l, directTestBatch(t, rng)).LastOffset)
	}
	if err := l.WaitFlushed(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int64{l.EndOffset(), lasts[6] + 1} {
		crashed := copyDir(t, dir) // padded, as a crash leaves it
		if err := TruncateDir(crashed, cut); err != nil {
			t.Fatal(err)
		}
		re := openLog(t, crashed, testConfig())
		if re.EndOffset() != cut {
			t.Fatalf("truncated at %d: end %d", cut, re.EndOffset())
		}
		readAll(t, re, 1<<20)
	}
}
