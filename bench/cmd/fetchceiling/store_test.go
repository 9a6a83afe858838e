package main

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// batch is a v2 batch header of size bytes holding records records (the
// rest zero): all the store reads.
func batch(size, records int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b[8:], uint32(size-12))
	binary.BigEndian.PutUint32(b[23:], uint32(records-1)) // last offset delta
	return b
}

// TestStoreRead checks offsets given to appended batches and the bounds
// of a read, in both modes: whole batches from the one holding the
// offset, within the limit but at least one when asked, nothing at the
// high watermark, out of range past it.
func TestStoreRead(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		s := newStore(dir)
		if err := s.create("t", 1); err != nil {
			t.Fatal(err)
		}
		if err := s.create("t", 1); !errors.Is(err, errExists) {
			t.Fatalf("second create: %v, want errExists", err)
		}
		frame := append(batch(100, 3), batch(200, 5)...)
		if first, err := s.appendBatches("t", 0, frame); err != nil || first != 0 {
			t.Fatalf("append: first %d, %v", first, err)
		}
		if first, err := s.appendBatches("t", 0, batch(300, 2)); err != nil || first != 8 {
			t.Fatalf("append: first %d, %v; want 8", first, err)
		}
		if _, err := s.appendBatches("t", 0, batch(300, 2)[:70]); !errors.Is(err, errCorrupt) {
			t.Fatalf("a cut batch: %v, want errCorrupt", err)
		}
		for _, c := range []struct {
			offset     int64
			max        int
			atLeastOne bool
			want       int
			err        error
		}{
			{0, 1000, false, 600, nil},
			{0, 300, false, 300, nil},
			{4, 300, false, 200, nil}, // offset 4 is in the second batch
			{4, 100, false, 0, nil},
			{4, 100, true, 200, nil}, // KIP-74
			{9, 1000, false, 300, nil},
			{10, 1000, true, 0, nil}, // the high watermark
			{11, 1000, true, 0, errOutOfRange},
			{-1, 1000, true, 0, errOutOfRange},
		} {
			sp, hw, err := s.read("t", 0, c.offset, c.max, c.atLeastOne)
			if !errors.Is(err, c.err) || sp.n != c.want || hw != 10 && err == nil {
				t.Errorf("dir %q: read(%d, %d, %v) = %d bytes, hw %d, %v; want %d, %v", dir, c.offset, c.max, c.atLeastOne, sp.n, hw, err, c.want, c.err)
			}
		}
		if _, _, err := s.read("t", 1, 0, 10, true); !errors.Is(err, errUnknown) {
			t.Errorf("partition 1 of 1: %v, want errUnknown", err)
		}
	}
}

// TestStoreWatch checks that an append wakes the fetches watching its
// partition and no other, once, and that unwatch stops it.
func TestStoreWatch(t *testing.T) {
	s := newStore("")
	if err := s.create("t", 2); err != nil {
		t.Fatal(err)
	}
	on0, on1 := make(chan struct{}, 1), make(chan struct{}, 1)
	s.watch(on0, []topicPartition{{"t", 0}, {"unknown", 0}, {"t", 5}})
	s.watch(on0, []topicPartition{{"t", 0}}) // again: still once
	s.watch(on1, []topicPartition{{"t", 1}})
	if _, err := s.appendBatches("t", 0, batch(100, 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-on0:
	default:
		t.Error("an append to partition 0 did not wake its watcher")
	}
	select {
	case <-on1:
		t.Error("an append to partition 0 woke partition 1's watcher")
	default:
	}
	if _, err := s.appendBatches("t", 0, batch(100, 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-on0:
		t.Error("a second append woke a watcher the first had already told")
	default:
	}
	s.unwatch(on1, []topicPartition{{"t", 1}})
	if _, err := s.appendBatches("t", 1, batch(100, 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-on1:
		t.Error("an unwatched channel was woken")
	default:
	}
}

// noteRead drops, in memory mode, the batches every connection fetching
// a partition has fetched: not past the slowest reader, not while a
// reader idle for less than readMarkTTL lags, and nothing in file mode.
// A dropped offset reads as out of range; the rest read as before.
func TestStoreDropsWhatEveryReaderFetched(t *testing.T) {
	s := newStore("")
	if err := s.create("t", 1); err != nil {
		t.Fatal(err)
	}
	for range 4 { // batches at 0, 10, 20, 30; hw 40
		if _, err := s.appendBatches("t", 0, batch(100, 10)); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Unix(1000, 0)
	start := func() int64 {
		st, _, err := s.bounds("t", 0)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	s.noteRead("t", 0, "a", 25, t0)
	if got := start(); got != 20 {
		t.Fatalf("one reader at 25: start %d, want 20", got)
	}
	s.noteRead("t", 0, "b", 12, t0) // below the start: out of range, not a reader
	s.noteRead("t", 0, "b", 20, t0) // b now at the start: nothing more goes
	s.noteRead("t", 0, "a", 40, t0.Add(time.Second))
	if got := start(); got != 20 {
		t.Fatalf("b at 20: start %d, want 20", got)
	}
	s.noteRead("t", 0, "b", 31, t0.Add(2*time.Second))
	if got := start(); got != 30 {
		t.Fatalf("a at 40, b at 31: start %d, want 30", got)
	}
	if _, _, err := s.read("t", 0, 25, 1000, true); !errors.Is(err, errOutOfRange) {
		t.Fatalf("read at a dropped offset: %v, want errOutOfRange", err)
	}
	if sp, hw, err := s.read("t", 0, 30, 1000, true); err != nil || len(sp.batches) != 1 || hw != 40 {
		t.Fatalf("read at 30: %d batches, hw %d, %v", len(sp.batches), hw, err)
	}
	// b goes quiet: past readMarkTTL only a counts, and the last batch goes.
	s.noteRead("t", 0, "a", 40, t0.Add(2*time.Second+readMarkTTL+time.Second))
	if got := start(); got != 40 {
		t.Fatalf("b quiet past the TTL: start %d, want 40", got)
	}

	f := newStore(t.TempDir())
	if err := f.create("t", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.appendBatches("t", 0, batch(100, 10)); err != nil {
		t.Fatal(err)
	}
	f.noteRead("t", 0, "a", 10, t0)
	if st, _, _ := f.bounds("t", 0); st != 0 {
		t.Fatalf("file mode dropped up to %d", st)
	}
}
