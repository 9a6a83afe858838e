package log

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
)

// activeFileSize is the size of the active segment's file.
func activeFileSize(t *testing.T, l *Log) int64 {
	t.Helper()
	return fileSize(t, l.active.path(logSuffix))
}

// readEverything reads the log from its start with Read, returning the
// batches' bytes.
func readEverything(t *testing.T, l *Log) []byte {
	t.Helper()
	var out []byte
	for off := l.StartOffset(); off < l.EndOffset(); {
		rr, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil || len(rr.Records) == 0 {
			t.Fatalf("read at %d: %v", off, err)
		}
		if msg := wholeBatches(rr.Records, off); msg != "" {
			t.Fatalf("read at %d: %s", off, msg)
		}
		out = append(out, rr.Records...)
		h := lastHeader(t, rr.Records)
		off = h.lastOffset() + 1
	}
	return out
}

func lastHeader(t *testing.T, recs []byte) batchHeader {
	t.Helper()
	var h batchHeader
	for p := 0; p < len(recs); p += int(h.size) {
		var err error
		if h, err = parseHeader(recs[p:]); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// TestWriteBack: with direct writes and a tail cache, an append leaves
// the file alone; readers read it from memory; the flush writes it, and
// then the file holds exactly what was read. What a crash leaves is
// everything flushed.
func TestWriteBack(t *testing.T) {
	tc := testTailCache(t, 16*tcPageSize)
	dir := t.TempDir()
	l := openLog(t, dir, testConfig())
	l.SetDirectWrites(true)
	l.SetTailCache(tc)
	rng := rand.New(rand.NewPCG(21, 22))
	var n int
	for range 5 {
		b := makeBatch(t, batchSpec{n: 1 + rng.IntN(3), value: 1 + rng.IntN(3000), firstTs: 1})
		n += len(b)
		mustAppend(t, l, b)
	}
	if l.active.dio.failed {
		t.Skip("no O_DIRECT on this file system: no write-back")
	}
	if got := activeFileSize(t, l); got != 0 {
		t.Fatalf("the appends wrote %d bytes to the file: want none before the flush", got)
	}
	read := readEverything(t, l)
	res, err := l.ReadRegion(0, 1<<20, l.EndOffset(), nil)
	if err != nil || res.Region == nil || res.Region.Mem() == nil {
		t.Fatalf("ReadRegion before the flush: %v, %+v", err, res.Region)
	}
	region := regionBytes(t, res.Region)
	res.Region.Release()

	if err := l.WaitFlushed(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(l.active.path(logSuffix))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < n {
		t.Fatalf("after the flush the file holds %d bytes, not the %d appended", len(want), n)
	}
	want = want[:n]
	if !bytes.Equal(read, want) || !bytes.Equal(region, want[:len(region)]) {
		t.Fatal("reads before the flush differ from the file after it")
	}

	// A crash now keeps everything; one after more appends, not yet
	// flushed, keeps at least that and opens cleanly.
	flushedEnd := l.EndOffset()
	crashed := copyDir(t, dir)
	for range 3 {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 2, value: 700, firstTs: 1}))
	}
	later := copyDir(t, dir)
	for _, d := range []string{crashed, later} {
		re := openLog(t, d, testConfig())
		if re.EndOffset() < flushedEnd {
			t.Fatalf("after a crash: end %d, below the flushed %d", re.EndOffset(), flushedEnd)
		}
		if got := readEverything(t, re); !bytes.Equal(got[:len(want)], want) {
			t.Fatal("after a crash the flushed batches differ")
		}
	}

	// A log that flushes every so many records acknowledges once its
	// appends are in the file, durable or not: they stay pending until
	// WaitWritten writes them, without a sync, and then a crash of the
	// process (a copy of the files) keeps them.
	cfg := testConfig()
	cfg.FlushMessages = 1000
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1, value: 10, firstTs: 1}))
	if !l.active.cache.Load().hasPending() {
		t.Fatal("with flush.messages 1000 the append wrote the file: want it pending until WaitWritten")
	}
	end := l.EndOffset()
	if err := l.WaitWritten(end); err != nil {
		t.Fatal(err)
	}
	if got, size := activeFileSize(t, l), l.active.w.size; got < size || l.active.cache.Load().hasPending() {
		t.Fatalf("after WaitWritten the file has %d bytes, want %d, and nothing pending", got, size)
	}
	if l.flushed.Load() >= end {
		t.Fatalf("WaitWritten made the log durable to %d: it should only write", l.flushed.Load())
	}
	killed := openLog(t, copyDir(t, dir), testConfig())
	if killed.EndOffset() != end {
		t.Fatalf("the files after WaitWritten end at %d, want %d", killed.EndOffset(), end)
	}
}

// TestWriteBackNeverEvictsPending: pages holding bytes not yet written
// stay cached however hard other logs press on the cache; a log that
// cannot get a page writes itself; and a read that spans bytes evicted
// (in the file) and bytes pending (only in memory) gets both right.
func TestWriteBackNeverEvictsPending(t *testing.T) {
	tc := testTailCache(t, 4*tcPageSize)
	a, b := cachedLog(t, tc, testConfig()), cachedLog(t, tc, testConfig())
	rng := rand.New(rand.NewPCG(23, 24))
	batch := func() []byte {
		return makeBatch(t, batchSpec{n: 1 + rng.IntN(3), value: 1000 + rng.IntN(20_000), firstTs: 1})
	}
	// a: two pages written (flushed), then most of two more pending.
	for a.active.w.size < 2*tcPageSize {
		mustAppend(t, a, batch())
	}
	if a.active.dio.failed {
		t.Skip("no O_DIRECT on this file system: no write-back")
	}
	if err := a.WaitFlushed(a.EndOffset()); err != nil {
		t.Fatal(err)
	}
	flushed := a.active.w.size
	for a.active.w.size < flushed+tcPageSize+tcPageSize/2 {
		mustAppend(t, a, batch())
	}
	if got := activeFileSize(t, a); got > (flushed+directBlock-1)&^(directBlock-1) {
		t.Fatalf("a's file has %d bytes: the appends after the flush at %d were written", got, flushed)
	}
	// b fills the cache: a's written pages go, its pending ones stay,
	// and b, short of pages, writes its own appends.
	for range 40 {
		mustAppend(t, b, batch())
	}
	if st := tc.Stats(); st.Allocated > 4*tcPageSize {
		t.Fatalf("allocated %d, budget %d", st.Allocated, 4*tcPageSize)
	}
	if got := activeFileSize(t, b); got == 0 || got < b.active.w.size-2*tcPageSize {
		t.Fatalf("b's file has %d of %d bytes: it had no page, yet did not write", got, b.active.w.size)
	}
	sc := a.active.cache.Load()
	if sc == nil || sc.pendingBytes() == 0 {
		t.Fatal("a has nothing pending: the test checks nothing")
	}
	sc.mu.Lock()
	first := sc.pages[0].pos
	sc.mu.Unlock()
	if first == 0 {
		t.Fatal("a's first page was not evicted: the test checks nothing")
	}

	// Everything of a, in one region and in one read, before its flush.
	res, err := a.ReadRegion(0, 1<<30, a.EndOffset(), nil)
	if err != nil || res.Region == nil {
		t.Fatalf("ReadRegion: %v", err)
	}
	if res.Region.File() != nil {
		t.Fatal("a region reaching pending bytes is a file region")
	}
	region := regionBytes(t, res.Region)
	res.Region.Release()
	read := readEverything(t, a)
	if err := a.WaitFlushed(a.EndOffset()); err != nil {
		t.Fatal(err)
	}
	want := segmentBytes(t, a)
	if !bytes.Equal(region, want[:len(region)]) || !bytes.Equal(read, want) {
		t.Fatal("reads spanning evicted and pending bytes differ from the file")
	}
	for _, l := range []*Log{a, b} {
		checkInvariants(t, l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.fifo.Len() != 0 || tc.parked != 0 || len(tc.free) != tc.pages {
		t.Fatalf("after Close: %d pages cached, %d parked, %d of %d free", tc.fifo.Len(), tc.parked, len(tc.free), tc.pages)
	}
}
