package log

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/broker/internal/log/producer"
)

// producerBatch is makeBatch from producer pid at epoch, first sequence
// seq, transactional when txn.
func producerBatch(t testing.TB, n int, pid int64, epoch int16, seq int32, txn bool) []byte {
	t.Helper()
	b := makeBatch(t, batchSpec{n: n, value: 10})
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	if txn {
		b[offAttributes+1] |= attrTransactional
	}
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

func TestAppendIdempotent(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	first := mustAppend(t, l, producerBatch(t, 3, 5, 0, 0, false))
	mustAppend(t, l, batches(t, 1, 2, 10, 0)) // a non-idempotent producer in between
	second := mustAppend(t, l, producerBatch(t, 2, 5, 0, 3, false))
	end := l.EndOffset()

	for _, want := range []AppendResult{first, second} {
		seq := int32(0)
		if want.BaseOffset == second.BaseOffset {
			seq = 3
		}
		res, err := l.Append(producerBatch(t, int(want.LastOffset-want.BaseOffset+1), 5, 0, seq, false), 0)
		if err != nil || !res.Duplicate || res.BaseOffset != want.BaseOffset || res.LastOffset != want.LastOffset {
			t.Fatalf("retry of %+v: %+v, %v", want, res, err)
		}
	}
	if l.EndOffset() != end {
		t.Fatalf("retries wrote: end %d, want %d", l.EndOffset(), end)
	}
	if _, err := l.Append(producerBatch(t, 1, 5, 0, 9, false), 0); !errors.Is(err, producer.ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
	// Two batches in one append are checked in order; a bad second one
	// fails the whole append.
	two := append(producerBatch(t, 1, 5, 0, 5, false), producerBatch(t, 1, 5, 0, 7, false)...)
	if _, err := l.Append(two, 0); !errors.Is(err, producer.ErrOutOfOrderSequence) || l.EndOffset() != end {
		t.Fatalf("bad second batch: %v, end %d", err, l.EndOffset())
	}
	two = append(producerBatch(t, 1, 5, 0, 5, false), producerBatch(t, 1, 5, 0, 6, false)...)
	if res := mustAppend(t, l, two); res.LastOffset != end+1 {
		t.Fatalf("two batches: %+v", res)
	}
	// A client may not write control batches.
	ctl := encodeMarker(&producer.Marker{ProducerID: 5, Epoch: 0, Commit: true}, 0)
	if _, err := l.Append(ctl, 0); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("control batch: %v", err)
	}
}

// txnScript writes a history with transactions across two segments:
// producer 1 commits, producer 2 aborts, producer 3 aborts in the second
// segment, producer 4 stays open.
func txnScript(t *testing.T, l *Log) {
	t.Helper()
	mustAppend(t, l, producerBatch(t, 2, 1, 0, 0, true)) // 0-1
	mustAppend(t, l, producerBatch(t, 1, 2, 0, 0, true)) // 2
	mustAppend(t, l, batches(t, 1, 1, 10, 0))            // 3
	marker(t, l, 1, 0, true, 4)                          // 4
	marker(t, l, 2, 0, false, 5)                         // 5
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, producerBatch(t, 1, 3, 0, 0, true))  // 6
	mustAppend(t, l, producerBatch(t, 1, 4, 0, 0, true))  // 7
	mustAppend(t, l, producerBatch(t, 1, 3, 0, 1, true))  // 8
	marker(t, l, 3, 0, false, 9)                          // 9
	mustAppend(t, l, producerBatch(t, 1, 5, 0, 0, false)) // 10
}

func marker(t *testing.T, l *Log, pid int64, epoch int16, commit bool, want int64) producer.CompletedTxn {
	t.Helper()
	res, done, err := l.AppendMarker(Marker{ProducerID: pid, ProducerEpoch: epoch, Commit: commit})
	if err != nil || res.BaseOffset != want {
		t.Fatalf("marker for %d: offset %d, %v; want offset %d", pid, res.BaseOffset, err, want)
	}
	return done
}

// txnView is what recovery must restore.
type txnView struct {
	Aborted       []AbortedTxn
	FirstUnstable int64
	Open          map[int64]int64
	Entries       map[int64]producer.Entry
}

func viewOf(l *Log) txnView {
	v := txnView{Aborted: l.AbortedTxns(0, l.EndOffset()), FirstUnstable: l.FirstUnstableOffset(), Open: map[int64]int64{}, Entries: map[int64]producer.Entry{}}
	for pid := int64(1); pid <= 5; pid++ {
		if off, ok := l.OngoingTxn(pid); ok {
			v.Open[pid] = off
		}
		if e, ok := l.ProducerEntry(pid); ok {
			// Replay knows batch timestamps, not append times.
			e.LastTimestamp = 0
			v.Entries[pid] = e
		}
	}
	return v
}

func TestTxnScript(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	txnScript(t, l)
	v := viewOf(l)
	want := []AbortedTxn{{2, 2, 5, 6}, {3, 6, 9, 7}}
	if !reflect.DeepEqual(v.Aborted, want) {
		t.Fatalf("aborted %+v, want %+v", v.Aborted, want)
	}
	if v.FirstUnstable != 7 || len(v.Open) != 1 || v.Open[4] != 7 {
		t.Fatalf("open %v, first unstable %d", v.Open, v.FirstUnstable)
	}
	// The fetch view: only aborts overlapping [from, to).
	if got := l.AbortedTxns(3, 5); !reflect.DeepEqual(got, want[:1]) {
		t.Fatalf("aborted in [3,5): %+v", got)
	}
	if got := l.AbortedTxns(6, 7); !reflect.DeepEqual(got, want[1:]) {
		t.Fatalf("aborted in [6,7): %+v", got)
	}
	if got := l.AbortedTxns(0, 2); len(got) != 0 {
		t.Fatalf("aborted in [0,2): %+v", got)
	}
}

func TestProducerStateRecovery(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testConfig())
	txnScript(t, l)
	want := viewOf(l)

	check := func(name, dir string, prep func(dir string)) {
		t.Run(name, func(t *testing.T) {
			if prep != nil {
				prep(dir)
			}
			l := openLog(t, dir, testConfig())
			if got := viewOf(l); !reflect.DeepEqual(got, want) {
				t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
			}
			// Still deduplicated; still fenced.
			res, err := l.Append(producerBatch(t, 1, 5, 0, 0, false), 0)
			if err != nil || !res.Duplicate || res.BaseOffset != 10 {
				t.Fatalf("retry after reopen: %+v, %v", res, err)
			}
			if _, err := l.Append(producerBatch(t, 1, 4, 0, 1, false), 0); !errors.Is(err, producer.ErrInvalidTxnState) {
				t.Fatalf("non-transactional write inside a transaction: %v", err)
			}
		})
	}
	// copyDir while the log is open is a crash: no snapshot at the end.
	// What was acknowledged survives it: what was flushed.
	if err := l.WaitFlushed(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	check("crash", copyDir(t, dir), nil)
	check("crash without snapshots or txn indexes", copyDir(t, dir), func(dir string) {
		removeSuffixed(t, dir, snapshotSuffix, txnIndexSuffix)
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotName(11))); err != nil {
		t.Fatalf("no snapshot at the log end after close: %v", err)
	}
	check("clean", copyDir(t, dir), nil)
	check("clean without txn indexes", copyDir(t, dir), func(dir string) {
		removeSuffixed(t, dir, txnIndexSuffix)
	})
	check("corrupt snapshot", copyDir(t, dir), func(dir string) {
		os.WriteFile(filepath.Join(dir, snapshotName(11)), []byte("garbage"), 0o644)
	})
}

func removeSuffixed(t *testing.T, dir string, suffixes ...string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		for _, s := range suffixes {
			if strings.HasSuffix(e.Name(), s) {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestMarkerEpochs(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	mustAppend(t, l, producerBatch(t, 1, 1, 3, 0, true))
	if _, _, err := l.AppendMarker(Marker{ProducerID: 1, ProducerEpoch: 2, Commit: true}); !errors.Is(err, producer.ErrInvalidEpoch) {
		t.Fatalf("stale marker: %v", err)
	}
	// EndTxn v5 (KIP-890 part 2): the marker bumps the epoch.
	marker(t, l, 1, 4, true, 1)
	if _, err := l.Append(producerBatch(t, 1, 1, 3, 1, false), 0); !errors.Is(err, producer.ErrInvalidEpoch) {
		t.Fatalf("old epoch after bump: %v", err)
	}
	if _, err := l.Append(producerBatch(t, 1, 1, 4, 1, false), 0); !errors.Is(err, producer.ErrOutOfOrderSequence) {
		t.Fatalf("bumped epoch not at 0: %v", err)
	}
	mustAppend(t, l, producerBatch(t, 1, 1, 4, 0, false))
	if _, _, err := l.AppendMarker(Marker{ProducerID: 1, ProducerEpoch: 4, CoordinatorEpoch: -1}); !errors.Is(err, producer.ErrCoordinatorFenced) {
		t.Fatalf("marker from an older coordinator epoch: %v", err)
	}
}

func TestTxnVerification(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	b := producerBatch(t, 1, 1, 0, 0, true)
	if _, err := l.AppendWith(b, AppendOptions{VerifyTxnStart: true, VerifiedProducer: -1}); !errors.Is(err, producer.ErrInvalidTxnState) {
		t.Fatalf("unverified transaction start: %v", err)
	}
	if _, err := l.AppendWith(b, AppendOptions{VerifyTxnStart: true, VerifiedProducer: 1}); err != nil {
		t.Fatal(err)
	}
	// Inside the open transaction no verification is needed.
	if _, err := l.AppendWith(producerBatch(t, 1, 1, 0, 1, true), AppendOptions{VerifyTxnStart: true, VerifiedProducer: -1}); err != nil {
		t.Fatal(err)
	}
}

func TestProducerExpiry(t *testing.T) {
	c := newClock()
	l := openLog(t, t.TempDir(), testConfig(), WithClock(c.Now))
	mustAppend(t, l, producerBatch(t, 1, 1, 0, 0, false))
	mustAppend(t, l, producerBatch(t, 1, 2, 0, 0, true))
	c.Advance(25 * 60 * 60 * 1e9)
	if n := l.ExpireProducers(c.Now(), 24*60*60*1e9); n != 1 {
		t.Fatalf("expired %d, want 1 (the one without an open transaction)", n)
	}
	if _, err := l.Append(producerBatch(t, 1, 1, 0, 1, false), 0); !errors.Is(err, producer.ErrOutOfOrderSequence) {
		t.Fatalf("expired producer continuing its sequence: %v", err)
	}
}

// BenchmarkAppendIdempotent is BenchmarkAppend/nosync with an idempotent
// producer: each batch continues the sequence of the one before.
func BenchmarkAppendIdempotent(b *testing.B) {
	cfg := testConfig()
	cfg.FlushMessages = 1 << 62
	l := openLog(b, b.TempDir(), cfg)
	batch := producerBatch(b, 100, 42, 0, 0, false)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		binary.BigEndian.PutUint32(batch[offBaseSequence:], uint32(i*100))
		binary.BigEndian.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], castagnoli))
		if _, err := l.Append(batch, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "records/s")
}
