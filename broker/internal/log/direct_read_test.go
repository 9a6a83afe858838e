package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// directReadLog is a log written directly, in segments of about 1 MiB,
// whose regions not in the page cache are read directly with dr; nothing
// else is set to read directly whatever the environment says.
func directReadLog(t *testing.T, dr *DirectReads) *Log {
	t.Helper()
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.MaxMessageBytes = 64 << 20 // for batches larger than the direct reads' buffers
	l := openLog(t, t.TempDir(), cfg)
	l.SetTailCache(nil)
	l.SetDirectWrites(true)
	l.SetDirectReads(dr)
	return l
}

// skipWithoutDirectReads skips when the platform, the kernel (cachestat)
// or the file system has no direct reads: dr turned itself off.
func skipWithoutDirectReads(t *testing.T, dr *DirectReads) {
	t.Helper()
	if dr.off.Load() {
		t.Skip("no direct reads here (cachestat or O_DIRECT missing)")
	}
}

// TestDirectReadsMatchRead: regions read directly hold exactly the bytes
// Read returns for the same offset and limits (Read goes through the
// page cache with batch-at-a-time preads, an independent path), across
// segment boundaries, with batches larger than maxBytes, and with
// maxOffset cutting a read short. Every region is the buffer's memory,
// not the file's.
func TestDirectReadsMatchRead(t *testing.T) {
	dr := NewDirectReads()
	l := directReadLog(t, dr)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 60 {
		mustAppend(t, l, directTestBatch(t, rng))
	}
	// A batch larger than the first direct read (maxBytes plus slack),
	// and one larger than the largest buffer: read through the page
	// cache instead.
	big := makeBatch(t, batchSpec{n: 3, value: 1 << 20, firstTs: 1})
	mustAppend(t, l, big)
	huge := makeBatch(t, batchSpec{n: 1, value: int(classSize(directClasses-1)) + 1, firstTs: 1})
	hugeAt := mustAppend(t, l, huge).BaseOffset
	for range 20 {
		mustAppend(t, l, directTestBatch(t, rng))
	}
	end := l.EndOffset()
	type query struct {
		offset, maxOffset int64
		maxBytes          int32
	}
	var qs []query
	for range 300 {
		off := rng.Int64N(end)
		maxOff := end
		if rng.IntN(4) == 0 {
			maxOff = off + 1 + rng.Int64N(end-off)
		}
		mb := []int32{1, 1000, 64 << 10, 1 << 20, 5 << 20, directReadMax}[rng.IntN(6)]
		qs = append(qs, query{off, maxOff, mb})
	}
	// Regions first: Read would bring the pages into the page cache, and
	// a region of cached pages is sent from there.
	regions := make([][]byte, len(qs))
	for i, q := range qs {
		// Nothing in the page cache: not the partial blocks direct
		// writes read back, nor what a region of the file brought in.
		dropLogPages(t, l)
		res, err := l.ReadRegion(q.offset, q.maxBytes, q.maxOffset, nil)
		if err != nil {
			t.Fatalf("ReadRegion(%d, %d, %d): %v", q.offset, q.maxBytes, q.maxOffset, err)
		}
		skipWithoutDirectReads(t, dr)
		if r := res.Region; r != nil {
			hugeRegion := q.offset >= hugeAt && q.offset < hugeAt+1 || r.Next == hugeAt+1 && r.Records == 1
			if hugeRegion != (r.File() != nil) {
				t.Fatalf("ReadRegion(%d, %d, %d): a file region %v, want %v", q.offset, q.maxBytes, q.maxOffset, r.File() != nil, hugeRegion)
			}
			regions[i] = regionBytes(t, r)
			r.Release()
			r.Release() // a no-op
		}
	}
	st := dr.Stats()
	if st.Reads < int64(len(qs))/2 || st.Bytes < st.Reads*int64(directBlock) {
		t.Fatalf("stats %+v after %d regions", st, len(qs))
	}
	// Read, the copying path, reads directly too.
	copies := make([][]byte, len(qs))
	for i, q := range qs {
		dropLogPages(t, l)
		rr, err := l.Read(q.offset, q.maxBytes, q.maxOffset)
		if err != nil {
			t.Fatalf("Read(%d, %d, %d): %v", q.offset, q.maxBytes, q.maxOffset, err)
		}
		copies[i] = rr.Records
	}
	if reads := dr.Stats().Reads - st.Reads; reads < int64(len(qs))/2 {
		t.Fatalf("Read read directly %d times for %d queries", reads, len(qs))
	}
	for i, q := range qs {
		want, err := l.readPlain(q.offset, q.maxBytes, q.maxOffset)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(regions[i], want.Records) {
			t.Fatalf("ReadRegion(%d, %d, %d): %d bytes, through the page cache %d, or they differ", q.offset, q.maxBytes, q.maxOffset, len(regions[i]), len(want.Records))
		}
		if !bytes.Equal(copies[i], want.Records) {
			t.Fatalf("Read(%d, %d, %d): %d bytes, through the page cache %d, or they differ", q.offset, q.maxBytes, q.maxOffset, len(copies[i]), len(want.Records))
		}
	}
}

// TestDirectReadsLeaveCachedPages: a region whose pages are in the page
// cache is sent from the file (sendfile), not read again from the disk.
func TestDirectReadsLeaveCachedPages(t *testing.T) {
	dr := NewDirectReads()
	l := directReadLog(t, dr)
	mustAppend(t, l, batches(t, 40, 4, 1000, 0))
	res, err := l.ReadRegion(0, 1<<20, l.EndOffset(), nil)
	if err != nil || res.Region == nil {
		t.Fatalf("ReadRegion: %v", err)
	}
	skipWithoutDirectReads(t, dr)
	if res.Region.Mem() == nil {
		t.Fatal("a region of pages not in the page cache was not read directly")
	}
	res.Region.Release()
	// Read the file through the page cache.
	if _, err := os.ReadFile(l.active.path(logSuffix)); err != nil {
		t.Fatal(err)
	}
	reads := dr.Stats().Reads
	res, err = l.ReadRegion(0, 1<<20, l.EndOffset(), nil)
	if err != nil || res.Region == nil {
		t.Fatalf("ReadRegion: %v", err)
	}
	defer res.Region.Release()
	if res.Region.File() == nil || dr.Stats().Reads != reads {
		t.Fatal("a region of cached pages was read directly")
	}
}

// TestDirectReadBuffersReused: a region's buffer goes back to its pool at
// Release, for the next read of its size.
func TestDirectReadBuffersReused(t *testing.T) {
	dr := NewDirectReads()
	if got := classSize(directClasses - 1); got < 2*directReadMax || got > 2*directReadMax+directReadSlack {
		t.Fatalf("the largest buffer is %d bytes, want %d and the slack", got, 2*directReadMax)
	}
	// A read of 1 MiB and the blocks around it takes the 1 MiB class.
	if b := dr.buffer(1<<20 + 3*directBlock); len(b.b) != 1<<20+directReadSlack || b.class != 4 {
		t.Fatalf("a buffer for 1 MiB and 3 blocks: %d bytes, class %d", len(b.b), b.class)
	}
	a := dr.buffer(150 << 10)
	if len(a.b) != 192<<10 || a.class != 1 {
		t.Fatalf("a buffer for 150 KiB: %d bytes, class %d", len(a.b), a.class)
	}
	a.release()
	// sync.Pool may drop what it holds (at a collection, and a quarter
	// of what is put back under the race detector): look a few times.
	prev := a
	for range 20 {
		b := dr.buffer(192 << 10)
		if b == prev {
			return
		}
		b.release()
		prev = b
	}
	t.Fatal("a released buffer was not reused")
}

// dropLogPages drops the page cache's pages of every segment of l.
func dropLogPages(t *testing.T, l *Log) {
	t.Helper()
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.segments {
		if err := dropPages(s.f, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDirectReadAhead: a reader going through the log in order finds
// most of its reads already started (read-ahead), with the same bytes as
// the files; a second reader elsewhere in the log, interleaved, gets
// its own bytes right; once the log is closed no read-ahead holds
// memory.
func TestDirectReadAhead(t *testing.T) {
	dr := NewDirectReads()
	l := directReadLog(t, dr)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 80 {
		mustAppend(t, l, directTestBatch(t, rng))
	}
	want := segmentBytes(t, l)
	dropLogPages(t, l)
	end := l.EndOffset()
	read := func(offset int64) (*Region, []byte) {
		t.Helper()
		res, err := l.ReadRegion(offset, 64<<10, end, nil)
		if err != nil || res.Region == nil {
			t.Fatalf("ReadRegion(%d): %v", offset, err)
		}
		b := regionBytes(t, res.Region)
		res.Region.Release()
		return res.Region, b
	}
	var got []byte
	other := end / 2
	regions := 0
	for offset := int64(0); offset < end; regions++ {
		r, b := read(offset)
		skipWithoutDirectReads(t, dr)
		got = append(got, b...)
		offset = r.Next
		if regions%5 == 4 && other < end {
			// The other reader: its bytes are Read's.
			r, b := read(other)
			w, err := l.readPlain(other, 64<<10, end)
			if err != nil || !bytes.Equal(b, w.Records) {
				t.Fatalf("the other reader at %d: %d bytes, Read %d (%v)", other, len(b), len(w.Records), err)
			}
			other = r.Next
			dropLogPages(t, l) // what Read brought in
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes in order, the files hold %d, or they differ", len(got), len(want))
	}
	st := dr.Stats()
	if st.AheadUsed < int64(regions)/2 {
		t.Fatalf("%d of %d regions began in a read-ahead (stats %+v)", st.AheadUsed, regions, st)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := dr.aheadBytes.Load(); n != 0 {
		t.Fatalf("%d bytes of read-ahead held after Close", n)
	}
}

// TestDirectReadsConcurrentClose: readers going through the log in
// order at once, each taking over the others' read-aheads, while the log
// closes under them; every region they got before holds the files'
// bytes, and Close leaves no read-ahead running or holding memory (the
// package's TestMain checks for goroutines left).
func TestDirectReadsConcurrentClose(t *testing.T) {
	dr := NewDirectReads()
	l := directReadLog(t, dr)
	rng := rand.New(rand.NewPCG(9, 10))
	for range 60 {
		mustAppend(t, l, directTestBatch(t, rng))
	}
	end := l.EndOffset()
	want := make(map[int64][]byte) // by offset: Read's bytes, through the page cache
	for off := int64(0); off < end; {
		res, err := l.readPlain(off, 32<<10, end)
		if err != nil {
			t.Fatal(err)
		}
		want[off] = res.Records
		off = nextOffsetOf(t, res.Records)
	}
	dropLogPages(t, l)
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			off := int64(0)
			if g%2 == 1 {
				off = end / 2
			}
			for {
				res, err := l.ReadRegion(off, 32<<10, end, nil)
				if err != nil {
					if errors.Is(err, ErrClosed) {
						err = nil
					}
					errs <- err
					return
				}
				if res.Region == nil {
					off = 0
					continue
				}
				b, err := res.Region.Bytes()
				next := res.Region.Next
				res.Region.Release()
				if err != nil {
					errs <- err
					return
				}
				if w, ok := want[off]; ok && !bytes.Equal(b, w) {
					errs <- fmt.Errorf("at %d: %d bytes, Read %d, or they differ", off, len(b), len(w))
					return
				}
				off = next % end
			}
		}()
	}
	// Close once they are well under way.
	deadline := time.Now().Add(time.Minute)
	for dr.Stats().AheadUsed < 20 && !dr.off.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := dr.aheadBytes.Load(); n != 0 {
		t.Fatalf("%d bytes of read-ahead held after Close", n)
	}
	skipWithoutDirectReads(t, dr)
	if st := dr.Stats(); st.AheadUsed < 20 {
		t.Fatalf("stats %+v: the readers did not get going", st)
	}
}

// TestDirectReadAheadKeptFromCachedReaders: a reader served from the page
// cache, in turn with one replaying from the disk, leaves the replaying
// reader's read-ahead alone: every read of the replay but its first
// from the disk begins in one.
func TestDirectReadAheadKeptFromCachedReaders(t *testing.T) {
	dr := NewDirectReads()
	l := directReadLog(t, dr)
	rng := rand.New(rand.NewPCG(11, 12))
	for range 40 {
		mustAppend(t, l, directTestBatch(t, rng))
	}
	dropLogPages(t, l)
	// The first segment's pages in the page cache: a reader at offset 0
	// is sent them from there.
	l.mu.RLock()
	if len(l.segments) < 3 {
		l.mu.RUnlock()
		t.Fatal("under three segments: the replay needs the second, whole")
	}
	first, second, third := l.segments[0], l.segments[1], l.segments[2]
	l.mu.RUnlock()
	if _, err := os.ReadFile(first.path(logSuffix)); err != nil {
		t.Fatal(err)
	}
	// The replay reads the second segment (a read-ahead stops at a
	// segment's end).
	end := l.EndOffset()
	regions := 0
	for offset := second.base; offset < third.base; regions++ {
		res, err := l.ReadRegion(offset, 16<<10, end, nil)
		if err != nil || res.Region == nil {
			t.Fatalf("ReadRegion(%d): %v", offset, err)
		}
		skipWithoutDirectReads(t, dr)
		offset = res.Region.Next
		res.Region.Release()
		cached, err := l.ReadRegion(0, 16<<10, end, nil)
		if err != nil || cached.Region == nil || cached.Region.File() == nil {
			t.Fatalf("the reader at 0 was not sent the page cache's pages: %v", err)
		}
		cached.Region.Release()
	}
	// The segment's last block may be in the page cache (direct writes
	// read it back to append after it), and a region mostly there is
	// sent from there: count the reads from the disk.
	if st := dr.Stats(); st.Reads < 3 || st.AheadUsed != st.Reads-1 {
		t.Fatalf("%d of %d reads of the replay from the disk began in a read-ahead (%d regions)", st.AheadUsed, st.Reads, regions)
	}
}

// TestDirectReadAheadSmallBatches: with batches smaller than the index's
// step, the next read starts where the index places the next offset, a
// batch or more before where the last read ended; the read-ahead starts
// there too, so a replay in order claims every one.
func TestDirectReadAheadSmallBatches(t *testing.T) {
	dr := NewDirectReads()
	l := directReadLog(t, dr)
	for range 4 {
		mustAppend(t, l, batches(t, 500, 1, 900, 0)) // about 1 KiB each
	}
	dropLogPages(t, l)
	l.mu.RLock()
	if len(l.segments) < 2 {
		l.mu.RUnlock()
		t.Fatal("one segment")
	}
	stop := l.segments[1].base
	l.mu.RUnlock()
	end := l.EndOffset()
	rng := rand.New(rand.NewPCG(13, 14))
	for offset := int64(0); offset < stop; {
		// Reads of varying size end at varying distances past the
		// index's entries.
		res, err := l.ReadRegion(offset, int32(2000+rng.IntN(10_000)), end, nil)
		if err != nil || res.Region == nil {
			t.Fatalf("ReadRegion(%d): %v", offset, err)
		}
		skipWithoutDirectReads(t, dr)
		offset = res.Region.Next
		res.Region.Release()
	}
	if st := dr.Stats(); st.Reads < 50 || st.AheadUsed != st.Reads-1 {
		t.Fatalf("%d of %d reads from the disk began in a read-ahead", st.AheadUsed, st.Reads)
	}
}

// TestDirectReadAheadOfPendingBytes: a read-ahead started while the tail
// cache holds bytes of its span not yet written back (write-back) reads
// only what the file holds; a reader claiming it after the flush wrote
// the rest gets the log's bytes, not what the file had there before.
func TestDirectReadAheadOfPendingBytes(t *testing.T) {
	dr := NewDirectReads()
	l := openLog(t, t.TempDir(), testConfig()) // one segment
	l.SetDirectWrites(true)
	l.SetDirectReads(dr)
	l.SetTailCache(testTailCache(t, 4*tcPageSize))
	mustAppend(t, l, batches(t, 9, 1, 100_000, 0)) // in the file
	if err := l.WaitFlushed(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, batches(t, 2, 1, 100_000, 100)) // pending
	if l.active.dio.failed {
		t.Skip("no O_DIRECT on this file system: no write-back")
	}
	dropLogPages(t, l)
	const offset = 5 // the batch 400 KB before the pending ones
	end := l.EndOffset()
	// Start the read-ahead a direct read of the batches before would
	// start, over the batches from offset to the end of the log.
	if _, err := l.walkSegments(offset, end, func(v *segView, offset, maxOffset int64) (bool, error) {
		from, _, _ := v.scanStart(offset, maxOffset)
		if v.c == nil || v.c.holds(from) || v.c.fileHas(v.m.size) {
			t.Fatalf("the cache holds %d, or the file holds all %d bytes: no pending bytes to read ahead of", from, v.m.size)
		}
		at := from &^ (directBlock - 1)
		file, cached, err := openDirectRead(v.f, at, v.m.size-at)
		if err != nil || cached {
			t.Fatalf("openDirectRead: %v, cached %v", err, cached)
		}
		dr.readAhead(l, v, from, v.m.size, file)
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	skipWithoutDirectReads(t, dr)
	if err := l.WaitFlushed(end); err != nil {
		t.Fatal(err)
	}
	used := dr.Stats().AheadUsed
	res, err := l.ReadRegion(offset, 1<<20, end, nil)
	if err != nil || res.Region == nil {
		t.Fatalf("ReadRegion(%d): %v", offset, err)
	}
	got := regionBytes(t, res.Region)
	res.Region.Release()
	if dr.Stats().AheadUsed != used+1 {
		t.Fatalf("the read did not start in the read-ahead (%d used before, %d after)", used, dr.Stats().AheadUsed)
	}
	want, err := l.readPlain(offset, 1<<20, end)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Records) {
		t.Fatalf("read %d bytes through the read-ahead, %d through the page cache, or they differ", len(got), len(want.Records))
	}
}
