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

// regionBytes reads a region's bytes from its own descriptor, or from
// the tail cache's memory.
func regionBytes(t testing.TB, r *Region) []byte {
	t.Helper()
	buf, err := r.Bytes()
	if err != nil {
		t.Fatalf("reading region [%d, +%d): %v", r.Pos, r.Len, err)
	}
	return buf
}

// TestReadRegionMatchesRead checks ReadRegion against Read, the copying
// implementation, on random offsets, sizes and upper bounds over many
// segments: the same bytes, and the record count and next offset their
// headers give.
func TestReadRegionMatchesRead(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 17))
	cfg := testConfig()
	cfg.SegmentBytes = 4000
	cfg.IndexIntervalBytes = 300
	l := openLog(t, t.TempDir(), cfg)
	for i := 0; i < 120; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1 + rng.IntN(6), value: rng.IntN(200)}))
	}
	end := l.EndOffset()
	for i := 0; i < 2000; i++ {
		off := rng.Int64N(end + 1)
		maxBytes := int32(rng.IntN(3000))
		upTo := off + rng.Int64N(end-off+2)
		want, werr := l.Read(off, maxBytes, upTo)
		got, gerr := l.ReadRegion(off, maxBytes, upTo, nil)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("Read(%d, %d, %d) err %v, ReadRegion err %v", off, maxBytes, upTo, werr, gerr)
		}
		if got.LogStartOffset != want.LogStartOffset {
			t.Fatalf("log start %d, want %d", got.LogStartOffset, want.LogStartOffset)
		}
		if len(want.Records) == 0 {
			if got.Region != nil {
				t.Fatalf("Read(%d, %d, %d) empty, region of %d bytes", off, maxBytes, upTo, got.Region.Len)
			}
			continue
		}
		if got.Region == nil {
			t.Fatalf("Read(%d, %d, %d) has %d bytes, no region", off, maxBytes, upTo, len(want.Records))
		}
		if b := regionBytes(t, got.Region); !bytes.Equal(b, want.Records) {
			t.Fatalf("Read(%d, %d, %d): region bytes differ (%d vs %d)", off, maxBytes, upTo, len(b), len(want.Records))
		}
		var records int64
		for _, h := range checkBatchesRead(t, want.Records) {
			records += int64(h.records)
		}
		hs := checkBatchesRead(t, want.Records)
		if got.Region.Records != records || got.Region.Next != hs[len(hs)-1].lastOffset()+1 {
			t.Fatalf("region counts %d records to %d, want %d to %d", got.Region.Records, got.Region.Next, records, hs[len(hs)-1].lastOffset()+1)
		}
		got.Region.Release()
	}
	if n := len(l.pins.held); n != 0 {
		t.Fatalf("%d regions still pinned", n)
	}
}

// TestRegionOutlivesDeletionAndCompaction pins a region in every segment,
// then has retention delete some and compaction rewrite the rest: each
// region still reads the bytes it was given, not torn or missing ones.
func TestRegionOutlivesDeletionAndCompaction(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	cfg.CleanupPolicy = CleanupCompact | CleanupDelete
	cfg.SegmentBytes = 1500
	dir := t.TempDir()
	l := openLog(t, dir, cfg, WithClock(clk.Now))
	ref := make(map[int64]kv)
	for i := 0; i < 200; i++ {
		appendKV(t, l, ref, []kv{{key: fmt.Sprintf("k%d", i%7), value: fmt.Sprintf("v%d", i)}}, codecNone, clk.Now().UnixMilli())
	}
	type pinned struct {
		r    *Region
		want []byte
	}
	var pins []pinned
	for off := l.StartOffset(); off < l.EndOffset(); {
		want, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.ReadRegion(off, 1<<20, l.EndOffset(), nil)
		if err != nil || res.Region == nil {
			t.Fatalf("ReadRegion at %d: %v", off, err)
		}
		pins = append(pins, pinned{res.Region, want.Records})
		off = res.Region.Next
	}
	if len(pins) < 4 {
		t.Fatalf("only %d segments", len(pins))
	}
	before := segmentFiles(t, dir)

	if err := l.SetStartOffset(pins[2].r.Next); err != nil {
		t.Fatal(err)
	}
	mustClean(t, l, clk.Now())
	if after := segmentFiles(t, dir); fmt.Sprint(after) == fmt.Sprint(before) {
		t.Fatalf("neither retention nor compaction changed the segments: %v", after)
	}
	for i, p := range pins {
		if got := regionBytes(t, p.r); !bytes.Equal(got, p.want) {
			t.Fatalf("region %d changed under its holder", i)
		}
		p.r.Release()
	}
}

// TestCloseRevokesRegions: closing a log (before it is truncated in place)
// asks every holder of a region to stop, and waits for the release;
// nothing is pinned after Close.
func TestCloseRevokesRegions(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Regions of files: one in the tail cache's memory or read directly
	// (under RUNNEL_LOG_DIRECT_WRITES) needs no revoking.
	l.SetTailCache(nil)
	l.SetDirectReads(nil)
	mustAppend(t, l, batches(t, 5, 3, 10, 0))
	revoked := make(chan struct{})
	var res RegionResult
	res, err = l.ReadRegion(0, 1<<20, l.EndOffset(), func() {
		close(revoked)
		// The holder stops sending and gives the region back from its
		// own goroutine, as a connection's writer does.
		go res.Region.Release()
	})
	if err != nil || res.Region == nil {
		t.Fatalf("ReadRegion: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-revoked:
	case <-time.After(time.Minute):
		t.Fatal("Close did not revoke the region")
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := len(l.pins.held); n != 0 {
		t.Fatalf("%d regions pinned after Close", n)
	}
	if _, err := l.ReadRegion(0, 1<<20, 15, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadRegion after Close: %v, want ErrClosed", err)
	}
	if err := TruncateDir(dir, 6); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
