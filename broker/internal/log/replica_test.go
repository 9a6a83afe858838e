package log

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// copyAll copies leader's batches from offset from to follower, as a
// follower's fetcher does, in reads of at most maxBytes.
func copyAll(t *testing.T, leader, follower *Log, maxBytes int32) {
	t.Helper()
	for follower.EndOffset() < leader.EndOffset() {
		rr, err := leader.Read(follower.EndOffset(), maxBytes, leader.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := follower.AppendReplica(rr.Records); err != nil {
			t.Fatal(err)
		}
	}
}

// readBytes reads a whole log as stored.
func readBytes(t *testing.T, l *Log) []byte {
	t.Helper()
	var out []byte
	for off := l.StartOffset(); off < l.EndOffset(); {
		rr, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rr.Records...)
		off = nextOffsetOf(t, rr.Records)
	}
	return out
}

func nextOffsetOf(t *testing.T, recs []byte) int64 {
	t.Helper()
	hs := checkBatchesRead(t, recs)
	return hs[len(hs)-1].lastOffset() + 1
}

// A follower that copies a leader's log with AppendReplica ends up with
// the same bytes, the same epoch history and the same producer and
// transaction state (aborted transactions, open ones, sequence numbers),
// also after a restart; batches that do not follow its log end are
// refused. The follower copies in reads of one batch each, and in reads
// of everything at once, so that one AppendReplica writes runs of
// batches across new epochs, markers and (with small segments) rolls.
func TestAppendReplicaCopiesTheLeader(t *testing.T) {
	for _, tc := range []struct {
		name         string
		maxBytes     int32
		segmentBytes int64
	}{
		{"batch by batch", 100, 0},
		{"all at once", 1 << 20, 0},
		{"all at once, rolling", 1 << 20, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testAppendReplicaCopiesTheLeader(t, tc.maxBytes, tc.segmentBytes)
		})
	}
}

func testAppendReplicaCopiesTheLeader(t *testing.T, maxBytes int32, segmentBytes int64) {
	leader := openLog(t, t.TempDir(), testConfig())
	txnScript(t, leader)
	if err := leader.AssignEpoch(3); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Append(producerBatch(t, 2, 6, 0, 0, true), 3); err != nil { // open at the end
		t.Fatal(err)
	}
	followerDir := t.TempDir()
	fcfg := testConfig()
	if segmentBytes > 0 {
		fcfg.SegmentBytes = segmentBytes
	}
	follower := openLog(t, followerDir, fcfg)
	copyAll(t, leader, follower, maxBytes)
	if segmentBytes > 0 && len(follower.segments) < 3 {
		t.Fatalf("%d segments: the follower was meant to roll", len(follower.segments))
	}
	check := func(f *Log) {
		t.Helper()
		if !bytes.Equal(readBytes(t, leader), readBytes(t, f)) {
			t.Fatal("follower's bytes differ from the leader's")
		}
		if got, want := f.Epochs(), leader.Epochs(); !reflect.DeepEqual(got, want) {
			t.Fatalf("epochs %v, want %v", got, want)
		}
		if got, want := viewOf(f), viewOf(leader); !reflect.DeepEqual(got, want) {
			t.Fatalf("producer state\n got %+v\nwant %+v", got, want)
		}
		checkInvariants(t, f)
	}
	check(follower)

	// A batch already held (a retried fetch) is refused, not duplicated.
	rr, err := leader.Read(0, 1, leader.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := follower.AppendReplica(rr.Records); !errors.Is(err, ErrReplicaOffset) {
		t.Fatalf("append of held batches: %v", err)
	}

	follower.Close()
	follower = openLog(t, followerDir, fcfg)
	check(follower)
}

// TruncateDir cuts a closed log at a batch boundary; after reopening, the
// log, its epoch history and its producer and transaction state are those
// of a log that was only ever written up to there, and copying the
// leader's diverging tail follows on.
func TestTruncateDir(t *testing.T) {
	// The reference: a log written only to offset 6 (the roll after the
	// first two markers, then the first batch of producer 3).
	ref := openLog(t, t.TempDir(), testConfig())
	mustAppend(t, ref, producerBatch(t, 2, 1, 0, 0, true))
	mustAppend(t, ref, producerBatch(t, 1, 2, 0, 0, true))
	mustAppend(t, ref, batches(t, 1, 1, 10, 0))
	marker(t, ref, 1, 0, true, 4)
	marker(t, ref, 2, 0, false, 5)
	if err := ref.Roll(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, ref, producerBatch(t, 1, 3, 0, 0, true)) // 6

	for _, tc := range []struct {
		name string
		at   int64
		want int64
	}{
		{"at a batch boundary", 7, 7},
		{"inside no batch past the end", 100, 11},
		{"at the segment boundary", 6, 6},
		{"inside a batch", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, testConfig())
			txnScript(t, l)
			l.Close()
			if err := TruncateDir(dir, tc.at); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, dir, testConfig())
			if l.EndOffset() != tc.want {
				t.Fatalf("end %d after truncating at %d, want %d", l.EndOffset(), tc.at, tc.want)
			}
			if tc.want == 7 {
				if got, want := viewOf(l), viewOf(ref); !reflect.DeepEqual(got, want) {
					t.Fatalf("producer state after truncation\n got %+v\nwant %+v", got, want)
				}
			}
			for _, a := range l.AbortedTxns(0, l.EndOffset()) {
				if a.LastOffset >= l.EndOffset() {
					t.Fatalf("aborted transaction %+v past the end %d", a, l.EndOffset())
				}
			}
			// Appending continues at the new end.
			res := mustAppend(t, l, batches(t, 1, 1, 10, 0))
			if res.BaseOffset != tc.want {
				t.Fatalf("next append at %d, want %d", res.BaseOffset, tc.want)
			}
			checkInvariants(t, l)
		})
	}
}

// ResetDir leaves an empty log that starts at the offset, takes appends
// from there, and keeps nothing of what was there (records, producers,
// aborted transactions, epochs).
func TestResetDir(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testConfig())
	txnScript(t, l)
	l.Close()
	if err := ResetDir(dir, 100); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, testConfig())
	if l.StartOffset() != 100 || l.EndOffset() != 100 {
		t.Fatalf("after reset: start %d end %d, want 100 and 100", l.StartOffset(), l.EndOffset())
	}
	if v := viewOf(l); len(v.Aborted) != 0 || len(v.Entries) != 0 || len(v.Open) != 0 || len(l.Epochs()) != 0 {
		t.Fatalf("state survived the reset: %+v, epochs %v", v, l.Epochs())
	}
	if res := mustAppend(t, l, batches(t, 1, 1, 10, 0)); res.BaseOffset != 100 {
		t.Fatalf("append after reset at %d, want 100", res.BaseOffset)
	}
	checkInvariants(t, l)
}
