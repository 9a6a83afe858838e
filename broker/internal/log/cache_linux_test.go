package log

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil/pagecache"
)

// checkCached checks a segment file's pages against the byte range
// expected dropped: every page wholly inside [from, to) must be out of
// the page cache, every page wholly outside it in.
func checkCached(t *testing.T, path string, from, to int64) {
	t.Helper()
	page := int64(os.Getpagesize())
	for i, in := range pagecache.Resident(t, path) {
		lo, hi := int64(i)*page, int64(i+1)*page
		inside := lo >= from && hi <= to
		outside := hi <= from || lo >= to
		switch {
		case inside && in:
			t.Fatalf("%s: page %d (bytes %d-%d) still cached; dropped range [%d, %d)", path, i, lo, hi, from, to)
		case outside && !in:
			t.Fatalf("%s: page %d (bytes %d-%d) not cached; dropped range [%d, %d)", path, i, lo, hi, from, to)
		}
	}
}

func TestDropCachedBelow(t *testing.T) {
	dir := t.TempDir()
	pagecache.SkipUnlessDroppable(t, dir)
	cfg := testConfig()
	cfg.SegmentBytes = 4 << 20
	l := openLog(t, dir, cfg)
	l.SetDirectWrites(false) // what it checks is the page cache
	batch := makeBatch(t, batchSpec{n: 10, value: 1000})
	for l.Size() < 10<<20 {
		mustAppend(t, l, batch)
	}
	flush := func() {
		t.Helper()
		mustAppend(t, l, batch)
		if err := l.WaitFlushed(l.EndOffset()); err != nil {
			t.Fatal(err)
		}
	}
	// flushDrop flushes and waits for the flush loop's drop pass that
	// the flush asks for once the readers' mark has moved.
	flushDrop := func() {
		t.Helper()
		passes := l.dropPasses.Load()
		flush()
		for deadline := time.Now().Add(10 * time.Second); l.dropPasses.Load() == passes; {
			if time.Now().After(deadline) {
				t.Fatal("no drop pass after a flush with the readers' mark moved")
			}
			time.Sleep(time.Millisecond)
		}
	}
	flush()
	segs := segmentFiles(t, dir)
	slices.Sort(segs)
	if len(segs) != 3 {
		t.Fatalf("%d segments, want 3", len(segs))
	}
	for _, p := range segs {
		checkCached(t, p, 0, 0) // everything written is cached
	}

	// The mark: the middle of the second segment. Below it lies the
	// whole first segment and the second's batches up to the index entry
	// at or below the mark.
	l.mu.RLock()
	s0, s1 := l.segments[0], l.segments[1]
	mark := s1.base + (s1.pub.next-s1.base)/2
	pos := floorPos(s1.pub.index, uint32(mark-s1.base)) &^ (pageSize - 1)
	size0 := s0.pub.size
	l.mu.RUnlock()
	if pos < dropStep {
		t.Fatalf("mark at byte %d of its segment: the test wants at least a drop step", pos)
	}

	l.DropCachedBelow(mark)
	if n := l.CacheDropped(); n != 0 {
		t.Fatalf("%d bytes dropped before any flush", n)
	}
	flushDrop()
	if got, want := l.CacheDropped(), size0+pos; got != want {
		t.Fatalf("dropped %d bytes, want %d (the first segment and %d of the second)", got, want, pos)
	}
	checkCached(t, segs[0], 0, size0)
	checkCached(t, segs[1], 0, pos)
	checkCached(t, segs[2], 0, 0)

	// A mark that moves less than a drop step drops nothing more; a
	// lower mark changes nothing.
	l.DropCachedBelow(mark + 20)
	l.DropCachedBelow(mark - 1000)
	flushDrop()
	if got := l.CacheDropped(); got != size0+pos {
		t.Fatalf("a small step dropped: %d bytes, want %d", got, size0+pos)
	}

	// Every reader at the end: everything up to the last index entry
	// goes, whatever the segment.
	l.DropCachedBelow(l.EndOffset())
	flushDrop()
	l.mu.RLock()
	s1size, s2 := s1.pub.size, l.segments[2]
	last := floorPos(s2.pub.index, uint32(l.flushed.Load()-1-s2.base)) &^ (pageSize - 1)
	l.mu.RUnlock()
	checkCached(t, segs[1], 0, s1size)
	checkCached(t, segs[0], 0, size0)
	if last < dropStep {
		t.Fatalf("the last segment holds %d bytes below its last index entry: too few for the test", last)
	}
	if got, want := l.CacheDropped(), size0+s1size+last; got != want {
		t.Fatalf("dropped %d bytes in all, want %d", got, want)
	}
	checkCached(t, segs[2], 0, last)

	// What was dropped reads back whole, from disk.
	if n, want := len(readAll(t, l, 1<<20)), int(l.EndOffset()/10); n != want {
		t.Fatalf("read %d batches back, want %d", n, want)
	}
	checkInvariants(t, l)
}
