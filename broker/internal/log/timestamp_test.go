package log

import (
	"testing"
)

func TestOffsetForTimestamp(t *testing.T) {
	for _, codec := range []struct {
		name string
		c    int
	}{{"none", codecNone}, {"gzip", codecGzip}, {"snappy", codecSnappy}, {"xerial", codecXerial}, {"lz4", codecLz4}, {"zstd", codecZstd}} {
		t.Run(codec.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SegmentBytes = 1500
			cfg.IndexIntervalBytes = 200
			l := openLog(t, t.TempDir(), cfg)
			// 40 batches of 10 records, offsets 10i..10i+9, timestamps
			// 1000+100i+{0, 5, 5, 3, 20, ...}: non-monotonic inside a
			// batch, increasing across batches.
			for i := 0; i < 40; i++ {
				ts := make([]int64, 10)
				for j := range ts {
					ts[j] = 1000 + 100*int64(i) + int64([]int{0, 5, 5, 3, 20, 21, 22, 7, 30, 31}[j])
				}
				mustAppend(t, l, makeBatch(t, batchSpec{n: 10, value: 40, ts: ts, codec: codec.c}))
			}
			if len(l.segments) < 3 {
				t.Fatalf("%d segments", len(l.segments))
			}
			for _, c := range []struct {
				ts, off, found int64
				ok             bool
			}{
				{0, 0, 1000, true},
				{1000, 0, 1000, true},
				{1001, 1, 1005, true},
				{1006, 4, 1020, true},  // skips 1003 at offset 3
				{1031, 9, 1031, true},  // last record of the batch
				{1032, 10, 1100, true}, // next batch
				{2504, 151, 2505, true},
				{2506, 154, 2520, true}, // skips 2503 at offset 153
				{4931, 399, 4931, true},
				{4932, 0, 0, false},
			} {
				off, found, ok, err := l.OffsetForTimestamp(c.ts)
				if err != nil {
					t.Fatal(err)
				}
				if ok != c.ok || (ok && (off != c.off || found != c.found)) {
					t.Errorf("ts %d: %d@%d %v, want %d@%d %v", c.ts, found, off, ok, c.found, c.off, c.ok)
				}
			}
			// Records below the log start are not answers.
			if err := l.SetStartOffset(13); err != nil {
				t.Fatal(err)
			}
			if off, _, _, _ := l.OffsetForTimestamp(0); off != 13 {
				t.Errorf("after start 13: offset %d", off)
			}
			off, ts, ok := l.MaxTimestamp()
			if !ok || off != 399 || ts != 4931 {
				t.Errorf("max timestamp %d@%d %v", ts, off, ok)
			}
		})
	}
}

// KIP-734: the max timestamp's record, not its batch's last offset.
func TestMaxTimestampExactRecord(t *testing.T) {
	for _, c := range []int{codecNone, codecZstd} {
		l := openLog(t, t.TempDir(), testConfig())
		mustAppend(t, l, makeBatch(t, batchSpec{n: 3, ts: []int64{10, 20, 30}, codec: c}))
		mustAppend(t, l, makeBatch(t, batchSpec{n: 4, ts: []int64{40, 90, 50, 90}, codec: c}))
		mustAppend(t, l, makeBatch(t, batchSpec{n: 2, ts: []int64{60, 70}, codec: c}))
		for range 2 { // the second answer comes from the cache
			off, ts, ok := l.MaxTimestamp()
			if !ok || off != 4 || ts != 90 {
				t.Fatalf("codec %d: max timestamp %d@%d %v, want 90@4", c, ts, off, ok)
			}
		}
		mustAppend(t, l, makeBatch(t, batchSpec{n: 2, ts: []int64{95, 91}, codec: c}))
		if off, ts, _ := l.MaxTimestamp(); off != 9 || ts != 95 {
			t.Fatalf("codec %d: after a newer max: %d@%d", c, ts, off)
		}
	}
}
