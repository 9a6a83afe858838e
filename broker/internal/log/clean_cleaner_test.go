package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/log/producer"
)

// TestCleanerCleansDirtiestFirst runs the background cleaner over two
// logs and a delete-policy one: both compacted logs get cleaned, the
// dirtier first, the other is left alone; Remove and Close return with no
// goroutine left (TestMain checks).
func TestCleanerCleansDirtiestFirst(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	cfg.SegmentBytes = 500
	mk := func(keys int) *Log {
		l := openLog(t, t.TempDir(), cfg, WithClock(clk.Now))
		for i := 0; i < 100; i++ {
			mustAppend(t, l, keyedBatch(t, []kv{{key: fmt.Sprint(i % keys), value: "v"}}, codecNone, 0))
		}
		if err := l.WaitFlushed(l.EndOffset()); err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := mk(3), mk(50)
	plain := openLog(t, t.TempDir(), testConfig())
	mustAppend(t, plain, keyedBatch(t, []kv{{key: "k", value: "v"}}, codecNone, 0))
	plain.Roll()

	c := NewCleaner(CleanerConfig{Now: clk.Now, IOBytesPerSecond: -1, Backoff: time.Hour})
	defer c.Close()
	for _, l := range []*Log{a, b, plain} {
		c.Add(l)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Runs < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("cleaner stats %+v", c.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, l := range []*Log{a, b} {
		if r := l.DirtyRatio(); r != 0 {
			t.Fatalf("%s: dirty ratio %v after cleaning", l.Dir(), r)
		}
	}
	if st := c.Stats(); st.BytesCleaned == 0 || st.RecordsRemoved == 0 || st.Failures != 0 {
		t.Fatalf("%+v", st)
	}
	c.Remove(a)
	c.Remove(b)
	c.Close()
	c.Close()
}

// TestCleanerRemoveStopsClean removes a log while a throttled clean of it
// is in progress: Remove returns promptly, the log is unchanged and has no
// temporary files.
func TestCleanerRemoveStopsClean(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	cfg.SegmentBytes = 2000
	dir := t.TempDir()
	l := openLog(t, dir, cfg, WithClock(clk.Now))
	for i := 0; i < 500; i++ {
		mustAppend(t, l, keyedBatch(t, []kv{{key: fmt.Sprint(i % 7), value: "0123456789"}}, codecNone, 0))
	}
	if err := l.WaitFlushed(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	before := readRecords(t, l)
	c := NewCleaner(CleanerConfig{Now: clk.Now, IOBytesPerSecond: 1000, Backoff: time.Hour}) // a minute per segment
	defer c.Close()
	c.Add(l)
	// Wait until the clean has started: a .cleaned file appears or the
	// offset map is being built (bytes taken from the throttle).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.th.mu.Lock()
		started := !c.th.next.IsZero()
		c.th.mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("clean did not start")
		}
		time.Sleep(time.Millisecond)
	}
	c.Remove(l)
	if got := readRecords(t, l); len(got) != len(before) {
		t.Fatalf("%d records, had %d", len(got), len(before))
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.cleaned")); len(m) > 0 {
		t.Fatalf("left %v", m)
	}
}

// TestThrottle checks the pace: n bytes at r bytes/s wait n/r seconds in
// all, shared by callers.
func TestThrottle(t *testing.T) {
	now := time.Unix(0, 0)
	var slept time.Duration
	th := &throttle{rate: 1000, now: func() time.Time { return now }, sleep: func(d time.Duration, _ <-chan struct{}) bool {
		slept += d
		now = now.Add(d)
		return true
	}}
	for i := 0; i < 100; i++ {
		if err := th.take(50, nil); err != nil {
			t.Fatal(err)
		}
	}
	if want := 5 * time.Second; slept < want-20*time.Millisecond || slept > want {
		t.Fatalf("slept %v for 5000 bytes at 1000/s", slept)
	}
	stop := make(chan struct{})
	close(stop)
	th.sleep = sleepOrStop
	if err := th.take(1000, stop); err != errCleanStopped {
		t.Fatalf("stopped take: %v", err)
	}
	var unlimited *throttle
	if err := unlimited.take(1<<40, nil); err != nil {
		t.Fatal(err)
	}
}

// TestCleanerCheckpointFile checks the checkpoint survives a reopen and a
// bad one means "clean from the start".
func TestCleanerCheckpointFile(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	cfg.SegmentBytes = 300
	dir := t.TempDir()
	l := openLog(t, dir, cfg, WithClock(clk.Now))
	for i := 0; i < 50; i++ {
		mustAppend(t, l, keyedBatch(t, []kv{{key: fmt.Sprint(i % 4), value: "v"}}, codecNone, 0))
	}
	st := mustClean(t, l, clk.Now())
	l.Close()
	l = openLog(t, dir, cfg, WithClock(clk.Now))
	if r := l.DirtyRatio(); r != 0 {
		t.Fatalf("dirty ratio %v after reopen", r)
	}
	if st2 := mustClean(t, l, clk.Now()); st2.Cleaned || st2.CleanedTo != st.CleanedTo {
		t.Fatalf("%+v after %+v", st2, st)
	}
	l.Close()
	os.WriteFile(filepath.Join(dir, cleanerCheckpointFile), []byte("garbage"), 0o644)
	l = openLog(t, dir, cfg, WithClock(clk.Now))
	if r := l.DirtyRatio(); r != 1 {
		t.Fatalf("dirty ratio %v with a bad checkpoint", r)
	}
	mustClean(t, l, clk.Now())
}

// FuzzClean cleans a log whose older segment holds arbitrary batches
// (with valid CRCs, so the bytes reach the record decoder): Clean must
// fail or succeed, never panic, and leave a log that reads.
func FuzzClean(f *testing.F) {
	seed := keyedBatch(f, []kv{{key: "a", value: "1"}, {key: "a", tomb: true}, {key: "b", value: "2"}}, codecNone, 0)
	f.Add(seed, false)
	f.Add(keyedBatch(f, []kv{{key: "a", value: "1"}, {key: "b", value: "2"}}, codecGzip, 5), true)
	f.Add(append(bytes.Clone(seed), seed...), true)
	ctl := encodeMarkerForTest(1, false)
	f.Add(ctl, false)
	f.Fuzz(func(t *testing.T, data []byte, horizon bool) {
		// Make the fuzzed bytes a run of batches with sane headers.
		var seg []byte
		off := int64(0)
		for p := 0; p+batchHeaderSize <= len(data); {
			b := bytes.Clone(data[p:])
			length := int(binary.BigEndian.Uint32(b[offLength:]) % uint32(len(b)-logOverhead+1))
			if length < batchHeaderSize-logOverhead {
				length = batchHeaderSize - logOverhead
			}
			b = b[:length+logOverhead]
			p += len(b)
			binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
			binary.BigEndian.PutUint32(b[offLength:], uint32(length))
			b[offMagic] = 2
			delta := int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]) % 8)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(delta))
			binary.BigEndian.PutUint32(b[offRecordCount:], binary.BigEndian.Uint32(b[offRecordCount:])%9)
			if horizon {
				b[offAttributes+1] |= attrDeleteHorizon
			}
			binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
			seg = append(seg, b...)
			off += int64(delta) + 1
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, segmentName(0)+logSuffix), seg, 0o644)
		os.WriteFile(filepath.Join(dir, segmentName(100)+logSuffix), nil, 0o644)
		cfg := compactConfig()
		l, err := Open(dir, cfg)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer l.Close()
		l.Clean(time.UnixMilli(1 << 40))
		checkInvariants(t, l)
		end := l.EndOffset()
		for o := l.StartOffset(); o < end; o++ {
			if _, err := l.Read(o, 1000, end); err != nil {
				t.Fatalf("read %d: %v", o, err)
			}
		}
	})
}

func encodeMarkerForTest(pid int64, commit bool) []byte {
	return encodeMarker(&producer.Marker{ProducerID: pid, Commit: commit}, 0)
}
