package log

import (
	"os"
	"syscall"
	"testing"
)

// tmpfsDir returns a new directory on a tmpfs (/dev/shm), removed after
// the test, or skips when there is none.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != tmpfsMagic {
		t.Skip("no tmpfs at /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "runnel-log-")
	if err != nil {
		t.Skip("cannot write to /dev/shm:", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// directLogRoundTrip appends to a log in dir asked for direct writes and
// given a tail cache, reads every batch back, reopens it, and returns the
// cache's stats and whether the log fell back to buffered writes.
func directLogRoundTrip(t *testing.T, dir string) (TailCacheStats, bool) {
	t.Helper()
	tc := testTailCache(t, 16*tcPageSize)
	l := openLog(t, dir, testConfig())
	l.SetDirectWrites(true)
	l.SetTailCache(tc)
	var want int
	for i := range 40 {
		mustAppend(t, l, batches(t, 1+i%3, 2, 3000, int64(i)))
		want += 1 + i%3
	}
	if got := len(readAll(t, l, 1<<20)); got != want {
		t.Fatalf("read %d batches, want %d", got, want)
	}
	failed := l.active.dio.failed
	st := tc.Stats()
	end := l.EndOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	re := openLog(t, dir, testConfig())
	if re.EndOffset() != end {
		t.Fatalf("reopened at %d, want %d", re.EndOffset(), end)
	}
	checkInvariants(t, re)
	return st, failed
}

// TestDirectWritesFallBack: a file system that refuses O_DIRECT (tmpfs
// before Linux 6.6) gets buffered writes, and the tail cache stays empty:
// those bytes are in the page cache.
func TestDirectWritesFallBack(t *testing.T) {
	openDirectFile = func(string) (*os.File, error) { return nil, errNoDirect }
	t.Cleanup(func() { openDirectFile = openDirect })
	st, failed := directLogRoundTrip(t, t.TempDir())
	if !failed {
		t.Fatal("direct writes refused, yet the segment did not fall back")
	}
	if st.Allocated != 0 || st.HitBytes != 0 {
		t.Fatalf("the cache was used for buffered writes: %+v", st)
	}
}

// TestDirectWritesOnTmpfs: a log on tmpfs works whether the kernel takes
// O_DIRECT there (Linux 6.6 and later) or not; when it does, reads come
// from the tail cache.
func TestDirectWritesOnTmpfs(t *testing.T) {
	st, failed := directLogRoundTrip(t, tmpfsDir(t))
	if !failed && st.HitBytes == 0 {
		t.Fatalf("direct writes on tmpfs, and no read from the cache: %+v", st)
	}
	if failed && st.Allocated != 0 {
		t.Fatalf("buffered writes on tmpfs, and the cache used: %+v", st)
	}
}
