package log

import (
	"errors"
	"testing"
)

// readLayout appends batches of 5 records each (offsets 0-4, 5-9, ...)
// and returns the log and the batch size.
func readLayout(t *testing.T, cfg Config, count int) (*Log, int) {
	t.Helper()
	l := openLog(t, t.TempDir(), cfg)
	var size int
	for i := 0; i < count; i++ {
		b := makeBatch(t, batchSpec{n: 5, value: 30, firstTs: int64(i * 5)})
		size = len(b)
		mustAppend(t, l, b)
	}
	return l, size
}

func TestReadBoundaries(t *testing.T) {
	cfg := testConfig()
	cfg.IndexIntervalBytes = 300
	l, bsize := readLayout(t, cfg, 20) // offsets 0-99
	end := l.EndOffset()
	type want struct {
		first, last int64 // base offsets of the first and last batch; -1 for none
		err         error
	}
	for _, c := range []struct {
		name      string
		offset    int64
		maxBytes  int32
		maxOffset int64
		want      want
	}{
		{"start", 0, int32(bsize), end, want{0, 0, nil}},
		{"mid batch starts at its batch", 7, int32(bsize), end, want{5, 5, nil}},
		{"last offset of a batch", 9, int32(bsize), end, want{5, 5, nil}},
		{"maxBytes below one batch still gives one", 12, 1, end, want{10, 10, nil}},
		{"maxBytes zero still gives one", 12, 0, end, want{10, 10, nil}},
		{"maxBytes fits three", 12, int32(3 * bsize), end, want{10, 20, nil}},
		{"maxBytes just under three", 12, int32(3*bsize - 1), end, want{10, 15, nil}},
		{"maxOffset stops before a batch", 12, 1 << 20, 25, want{10, 20, nil}},
		{"maxOffset at offset", 25, 1 << 20, 25, want{-1, -1, nil}},
		{"maxOffset below offset", 40, 1 << 20, 25, want{-1, -1, nil}},
		{"to the end", 80, 1 << 20, end, want{80, 95, nil}},
		{"at the end", end, 1 << 20, end, want{-1, -1, nil}},
		{"past the end", end + 1, 1 << 20, end, want{err: ErrOffsetOutOfRange}},
		{"negative", -1, 1 << 20, end, want{err: ErrOffsetOutOfRange}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := l.Read(c.offset, c.maxBytes, c.maxOffset)
			if c.want.err != nil {
				if !errors.Is(err, c.want.err) {
					t.Fatalf("err %v, want %v", err, c.want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.LogStartOffset != 0 {
				t.Fatalf("log start %d", res.LogStartOffset)
			}
			if c.want.first < 0 {
				if len(res.Records) != 0 {
					t.Fatalf("%d bytes, want none", len(res.Records))
				}
				return
			}
			hs := checkBatchesRead(t, res.Records)
			if hs[0].baseOffset != c.want.first || hs[len(hs)-1].baseOffset != c.want.last {
				t.Fatalf("batches %d..%d, want %d..%d", hs[0].baseOffset, hs[len(hs)-1].baseOffset, c.want.first, c.want.last)
			}
		})
	}
}

// Reads never cross segments, and an offset at a segment's end moves on
// to the next one.
func TestReadAcrossSegments(t *testing.T) {
	cfg := testConfig()
	b := makeBatch(t, batchSpec{n: 5, value: 30})
	cfg.SegmentBytes = int64(2 * len(b))
	l, _ := readLayout(t, cfg, 6) // segments at 0, 10, 20
	if len(l.segments) != 3 {
		t.Fatalf("%d segments", len(l.segments))
	}
	res, err := l.Read(7, 1<<20, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	hs := checkBatchesRead(t, res.Records)
	if len(hs) != 1 || hs[0].baseOffset != 5 {
		t.Fatalf("got %d batches from %d", len(hs), hs[0].baseOffset)
	}
	res, err = l.Read(10, 1<<20, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if hs := checkBatchesRead(t, res.Records); hs[0].baseOffset != 10 || len(hs) != 2 {
		t.Fatalf("read at 10: %d batches from %d", len(hs), hs[0].baseOffset)
	}
}

// A gap in offsets (as compaction or a truncated old segment leaves) reads
// from the next batch.
func TestReadGap(t *testing.T) {
	cfg := testConfig()
	l, _ := readLayout(t, cfg, 2) // 0-9
	// Simulate a gap: the next segment starts at 20.
	l.appendMu.Lock()
	l.end.Store(20)
	if err := l.rollLocked(); err != nil {
		t.Fatal(err)
	}
	l.active.w.next, l.active.pub.next = 20, 20
	l.appendMu.Unlock()
	mustAppend(t, l, makeBatch(t, batchSpec{n: 5}))
	res, err := l.Read(12, 1<<20, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if hs := checkBatchesRead(t, res.Records); hs[0].baseOffset != 20 {
		t.Fatalf("read in gap starts at %d", hs[0].baseOffset)
	}
}
