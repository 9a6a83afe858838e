package producer

import (
	"errors"
	"math"
	"testing"
)

// step appends a batch of n records at the next offset, checking it first
// like the log does.
type harness struct {
	t    *testing.T
	s    *State
	next int64
}

func (h *harness) append(pid int64, epoch int16, seq, n int32, txn bool) (BatchMeta, bool, error) {
	b := Batch{ProducerID: pid, Epoch: epoch, FirstSeq: seq, LastSeq: LastSeqOf(seq, n), Transactional: txn}
	orig, dup, err := h.s.Check(&b, nil)
	if err != nil || dup {
		return orig, dup, err
	}
	b.FirstOffset, b.LastOffset = h.next, h.next+int64(n)-1
	h.next += int64(n)
	h.s.Apply(&b)
	return BatchMeta{FirstSeq: b.FirstSeq, LastSeq: b.LastSeq, FirstOffset: b.FirstOffset, LastOffset: b.LastOffset}, false, nil
}

func (h *harness) mustAppend(pid int64, epoch int16, seq, n int32, txn bool) BatchMeta {
	h.t.Helper()
	m, dup, err := h.append(pid, epoch, seq, n, txn)
	if err != nil || dup {
		h.t.Fatalf("append pid %d epoch %d seq %d: dup %v err %v", pid, epoch, seq, dup, err)
	}
	return m
}

func (h *harness) wantErr(target error, pid int64, epoch int16, seq, n int32, txn bool) {
	h.t.Helper()
	if _, _, err := h.append(pid, epoch, seq, n, txn); !errors.Is(err, target) {
		h.t.Fatalf("append pid %d epoch %d seq %d: got %v, want %v", pid, epoch, seq, err, target)
	}
}

func newHarness(t *testing.T) *harness { return &harness{t: t, s: New()} }

func TestSequenceRules(t *testing.T) {
	h := newHarness(t)
	h.wantErr(ErrOutOfOrderSequence, 7, 0, 1, 1, false) // a new producer starts at 0
	first := h.mustAppend(7, 0, 0, 3, false)
	h.mustAppend(7, 0, 3, 2, false)
	h.wantErr(ErrOutOfOrderSequence, 7, 0, 6, 1, false) // gap
	h.wantErr(ErrOutOfOrderSequence, 7, 0, 4, 1, false) // overlap, not a retry

	// A retry of any of the last five batches is a duplicate.
	orig, dup, err := h.append(7, 0, 0, 3, false)
	if err != nil || !dup || orig != first {
		t.Fatalf("retry: %+v dup %v err %v, want %+v", orig, dup, err, first)
	}
	for seq := int32(5); seq < 10; seq++ {
		h.mustAppend(7, 0, seq, 1, false)
	}
	// Now the first two batches fell out of the window.
	h.wantErr(ErrOutOfOrderSequence, 7, 0, 0, 3, false)
	if _, dup, _ := h.append(7, 0, 5, 1, false); !dup {
		t.Fatal("batch at seq 5 should still be remembered")
	}

	// A new epoch starts at 0; the old epoch is stale.
	h.wantErr(ErrOutOfOrderSequence, 7, 1, 10, 1, false)
	h.mustAppend(7, 1, 0, 1, false)
	h.wantErr(ErrInvalidEpoch, 7, 0, 10, 1, false)
}

func TestSequenceWraps(t *testing.T) {
	h := newHarness(t)
	h.mustAppend(1, 0, 0, 1, false)
	// Jump the producer's last sequence to just below MaxInt32 by
	// applying a batch as replay would.
	h.s.Apply(&Batch{ProducerID: 1, Epoch: 0, FirstSeq: math.MaxInt32 - 2, LastSeq: math.MaxInt32 - 1, FirstOffset: 1, LastOffset: 2})
	h.next = 3
	m := h.mustAppend(1, 0, math.MaxInt32, 3, false) // MaxInt32, 0, 1
	if m.LastSeq != 1 {
		t.Fatalf("last seq %d, want 1", m.LastSeq)
	}
	h.mustAppend(1, 0, 2, 1, false)
	if _, dup, _ := h.append(1, 0, math.MaxInt32, 3, false); !dup {
		t.Fatal("wrapped batch retry not recognised")
	}
}

func TestTransactions(t *testing.T) {
	h := newHarness(t)
	h.mustAppend(1, 0, 0, 2, false) // offsets 0-1
	h.mustAppend(1, 0, 2, 1, true)  // opens a txn at 2
	h.mustAppend(2, 0, 0, 1, true)  // opens one at 3
	if got := h.s.FirstUnstableOffset(); got != 2 {
		t.Fatalf("first unstable %d, want 2", got)
	}
	h.wantErr(ErrInvalidTxnState, 1, 0, 3, 1, false)
	h.mustAppend(1, 0, 3, 1, true) // still in the txn: offset 4

	m := Marker{ProducerID: 1, Epoch: 0, Commit: false, CoordinatorEpoch: 3, Offset: 5}
	if err := h.s.CheckMarker(&m); err != nil {
		t.Fatal(err)
	}
	done := h.s.ApplyMarker(&m)
	want := CompletedTxn{ProducerID: 1, FirstOffset: 2, LastOffset: 5, LastStableOffset: 3}
	if done != want {
		t.Fatalf("completed %+v, want %+v", done, want)
	}
	if got := h.s.FirstUnstableOffset(); got != 3 {
		t.Fatalf("first unstable %d, want 3", got)
	}
	// Older coordinator epochs and producer epochs are refused.
	if err := h.s.CheckMarker(&Marker{ProducerID: 1, Epoch: 0, CoordinatorEpoch: 2}); !errors.Is(err, ErrCoordinatorFenced) {
		t.Fatalf("stale coordinator: %v", err)
	}
	// KIP-890 part 2: a marker with a bumped epoch becomes the epoch.
	h.next = 6
	done = h.s.ApplyMarker(&Marker{ProducerID: 2, Epoch: 1, Commit: true, Offset: 6})
	if done.FirstOffset != 3 || h.s.FirstUnstableOffset() != -1 || done.LastStableOffset != 7 {
		t.Fatalf("completed %+v, first unstable %d", done, h.s.FirstUnstableOffset())
	}
	h.next = 7
	h.wantErr(ErrInvalidEpoch, 2, 0, 1, 1, false)
	h.wantErr(ErrOutOfOrderSequence, 2, 1, 1, 1, false)
	h.mustAppend(2, 1, 0, 1, false)
}

func TestCheckWithPrevious(t *testing.T) {
	s := New()
	a := Batch{ProducerID: 1, Epoch: 0, FirstSeq: 0, LastSeq: 1}
	if _, _, err := s.Check(&a, nil); err != nil {
		t.Fatal(err)
	}
	b := Batch{ProducerID: 1, Epoch: 0, FirstSeq: 2, LastSeq: 2}
	if _, _, err := s.Check(&b, &a); err != nil {
		t.Fatalf("second batch following the first: %v", err)
	}
	c := Batch{ProducerID: 1, Epoch: 0, FirstSeq: 4, LastSeq: 4}
	if _, _, err := s.Check(&c, &b); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap after a previous batch: %v", err)
	}
}

func TestExpire(t *testing.T) {
	s := New()
	s.Apply(&Batch{ProducerID: 1, Epoch: 0, FirstSeq: 0, LastSeq: 0, FirstOffset: 0, LastOffset: 0, Timestamp: 1000})
	s.Apply(&Batch{ProducerID: 2, Epoch: 0, FirstSeq: 0, LastSeq: 0, FirstOffset: 1, LastOffset: 1, Timestamp: 1000, Transactional: true})
	s.Apply(&Batch{ProducerID: 3, Epoch: 0, FirstSeq: 0, LastSeq: 0, FirstOffset: 2, LastOffset: 2, Timestamp: 5000})
	if n := s.Expire(6000, 5000); n != 1 || s.Entry(1) != nil || s.Entry(2) == nil || s.Entry(3) == nil {
		t.Fatalf("expired %d; left %d", n, s.Len())
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	h := newHarness(t)
	for i := int32(0); i < 7; i++ {
		h.mustAppend(1, 2, i*2, 2, false)
	}
	h.mustAppend(9, 0, 0, 3, true)
	h.s.ApplyMarker(&Marker{ProducerID: 4, Epoch: 5, CoordinatorEpoch: 6, Offset: h.next})
	h.next++
	raw := h.s.AppendSnapshot(nil)
	got, err := DecodeSnapshot(raw, h.next)
	if err != nil {
		t.Fatal(err)
	}
	if again := got.AppendSnapshot(nil); string(again) != string(raw) {
		t.Fatal("snapshot does not round-trip")
	}
	if got.FirstUnstableOffset() != h.s.FirstUnstableOffset() {
		t.Fatalf("first unstable %d, want %d", got.FirstUnstableOffset(), h.s.FirstUnstableOffset())
	}
	if bs := got.Entry(1).Batches(); len(bs) != MaxBatches || bs[0].FirstSeq != 4 {
		t.Fatalf("batches %+v", bs)
	}
	// A retry of a remembered batch is still a duplicate after decoding.
	if _, dup, err := got.Check(&Batch{ProducerID: 1, Epoch: 2, FirstSeq: 10, LastSeq: 11}, nil); !dup || err != nil {
		t.Fatalf("dup %v err %v", dup, err)
	}
	raw[len(raw)-1] ^= 1
	if _, err := DecodeSnapshot(raw, h.next); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("flipped byte: %v", err)
	}
	if _, err := DecodeSnapshot(h.s.AppendSnapshot(nil), 3); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("offsets past the snapshot offset: %v", err)
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	s := New()
	s.Apply(&Batch{ProducerID: 1, Epoch: 0, FirstSeq: 0, LastSeq: 4, FirstOffset: 0, LastOffset: 4, Timestamp: 9})
	s.Apply(&Batch{ProducerID: 2, Epoch: 3, FirstSeq: 0, LastSeq: 0, FirstOffset: 5, LastOffset: 5, Transactional: true})
	f.Add(s.AppendSnapshot(nil), int64(6))
	f.Add(New().AppendSnapshot(nil), int64(0))
	f.Add([]byte{0, 1, 0, 0, 0, 0}, int64(1))
	f.Fuzz(func(t *testing.T, b []byte, off int64) {
		st, err := DecodeSnapshot(b, off)
		if err != nil {
			if !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("error %v does not wrap ErrCorruptSnapshot", err)
			}
			return
		}
		// What decodes re-encodes to the same bytes and decodes again.
		again := st.AppendSnapshot(nil)
		if string(again) != string(b) {
			t.Fatalf("decoded snapshot re-encodes differently")
		}
		if _, err := DecodeSnapshot(again, off); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// A transaction version 2 marker must be above the epoch of the open
// transaction's data; with no transaction open a repeat at the producer's
// epoch is taken and completes nothing. A TV1 marker keeps the old rule.
func TestTV2MarkerAboveOpenTxnEpoch(t *testing.T) {
	h := newHarness(t)
	h.mustAppend(1, 0, 0, 1, true) // transaction N at epoch 0, offset 0
	h.next = 2
	if done := h.s.ApplyMarker(&Marker{ProducerID: 1, Epoch: 1, Commit: true, TV2: true, Offset: 1}); done.FirstOffset != 0 {
		t.Fatalf("N's marker completed %+v", done)
	}
	// With nothing open, N's marker again is accepted (a coordinator
	// re-sending after a restart).
	if err := h.s.CheckMarker(&Marker{ProducerID: 1, Epoch: 1, TV2: true}); err != nil {
		t.Fatalf("repeat with nothing open: %v", err)
	}
	h.mustAppend(1, 1, 0, 1, true) // transaction N+1 at epoch 1, offset 2
	for _, commit := range []bool{true, false} {
		if err := h.s.CheckMarker(&Marker{ProducerID: 1, Epoch: 1, Commit: commit, TV2: true}); !errors.Is(err, ErrInvalidEpoch) {
			t.Fatalf("TV2 marker at the open transaction's epoch (commit %v): %v, want ErrInvalidEpoch", commit, err)
		}
	}
	if err := h.s.CheckMarker(&Marker{ProducerID: 1, Epoch: 0, TV2: true}); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("TV2 marker below: %v", err)
	}
	if err := h.s.CheckMarker(&Marker{ProducerID: 1, Epoch: 1}); err != nil {
		t.Fatalf("TV1 marker at the open transaction's epoch: %v", err)
	}
	if err := h.s.CheckMarker(&Marker{ProducerID: 1, Epoch: 2, TV2: true}); err != nil {
		t.Fatalf("N+1's own marker: %v", err)
	}
	if got, ok := h.s.OngoingTxn(1); !ok || got != 2 {
		t.Fatalf("N+1 open at %d (%v), want 2", got, ok)
	}
	// A producer the partition does not know: nothing to check.
	if err := h.s.CheckMarker(&Marker{ProducerID: 9, Epoch: 0, TV2: true}); err != nil {
		t.Fatal(err)
	}
}
