package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

func TestEmptyLog(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	if l.StartOffset() != 0 || l.EndOffset() != 0 || l.Size() != 0 {
		t.Fatalf("empty log: start %d end %d size %d", l.StartOffset(), l.EndOffset(), l.Size())
	}
	res, err := l.Read(0, 1000, 0)
	if err != nil || len(res.Records) != 0 {
		t.Fatalf("read empty: %v %d bytes", err, len(res.Records))
	}
	if _, _, ok := l.MaxTimestamp(); ok {
		t.Fatal("max timestamp of an empty log")
	}
	if _, _, ok, err := l.OffsetForTimestamp(0); ok || err != nil {
		t.Fatalf("offset for timestamp in empty log: %v %v", ok, err)
	}
}

func TestAppendReadRoundTrip(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 8 << 10
	cfg.IndexIntervalBytes = 512
	dir := t.TempDir()
	l := openLog(t, dir, cfg)
	var want [][]byte
	var off int64
	for i := 0; i < 300; i++ {
		n := 1 + i%7
		in := makeBatch(t, batchSpec{n: n, value: 10 + i%50, firstTs: int64(i)})
		res := mustAppend(t, l, in)
		if res.BaseOffset != off || res.LastOffset != off+int64(n)-1 || res.Records != int64(n) || res.LogAppendTime != -1 {
			t.Fatalf("append %d: %+v, want base %d", i, res, off)
		}
		binary.BigEndian.PutUint64(in[offBaseOffset:], uint64(off))
		binary.BigEndian.PutUint32(in[offLeaderEpoch:], 0)
		want = append(want, in)
		off += int64(n)
	}
	if got := len(segmentFiles(t, dir)); got < 5 {
		t.Fatalf("%d segments, want rolls", got)
	}
	checkInvariants(t, l)
	check := func(l *Log) {
		t.Helper()
		for _, maxBytes := range []int32{1, 100, 1000, 1 << 20} {
			hs := readAll(t, l, maxBytes)
			if len(hs) != len(want) {
				t.Fatalf("maxBytes %d: %d batches, want %d", maxBytes, len(hs), len(want))
			}
		}
		// Byte-exact: read each batch by its offsets.
		for _, w := range want {
			base := int64(binary.BigEndian.Uint64(w))
			res, err := l.Read(base, 1, l.EndOffset())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.Records, w) {
				t.Fatalf("batch at %d differs", base)
			}
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, cfg)
	if l2.EndOffset() != off {
		t.Fatalf("reopened end %d, want %d", l2.EndOffset(), off)
	}
	check(l2)
	// Appends continue after reopen.
	res := mustAppend(t, l2, makeBatch(t, batchSpec{n: 3}))
	if res.BaseOffset != off {
		t.Fatalf("append after reopen at %d, want %d", res.BaseOffset, off)
	}
}

func TestAppendPatchesEpochAndOffset(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	mustAppend(t, l, makeBatch(t, batchSpec{n: 2}))
	in := makeBatch(t, batchSpec{n: 3})
	orig := bytes.Clone(in)
	if _, err := l.Append(in, 7); err != nil {
		t.Fatal(err)
	}
	res, err := l.Read(2, 1<<20, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	got := res.Records
	if binary.BigEndian.Uint64(got) != 2 || binary.BigEndian.Uint32(got[offLeaderEpoch:]) != 7 {
		t.Fatalf("base %d epoch %d", binary.BigEndian.Uint64(got), binary.BigEndian.Uint32(got[offLeaderEpoch:]))
	}
	if !bytes.Equal(got[offMagic:], orig[offMagic:]) || !crcOK(got) {
		t.Fatal("bytes from magic on changed, or CRC no longer valid")
	}
}

func TestAppendMultipleBatchesOneCall(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	in := batches(t, 10, 5, 20, 0)
	res := mustAppend(t, l, in)
	if res.BaseOffset != 0 || res.LastOffset != 49 || res.Records != 50 {
		t.Fatalf("%+v", res)
	}
	if l.Size() != int64(len(in)) {
		t.Fatalf("size %d, want %d", l.Size(), len(in))
	}
	hs := readAll(t, l, 1<<20)
	for i, h := range hs {
		if h.baseOffset != int64(i*5) {
			t.Fatalf("batch %d at %d", i, h.baseOffset)
		}
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	good := makeBatch(t, batchSpec{n: 3, value: 10})
	mutate := func(f func(b []byte) []byte) []byte { return f(append(bytes.Clone(good), good...)) }
	recrc := func(b []byte) {
		binary.BigEndian.PutUint32(b[offCRC:], crcOf(b))
	}
	second := len(good)
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"short", good[:40], ErrCorrupt},
		{"crc in second batch", mutate(func(b []byte) []byte { b[second+70] ^= 1; return b }), ErrCorrupt},
		{"magic", mutate(func(b []byte) []byte { b[second+offMagic] = 1; return b }), ErrCorrupt},
		{"length past end", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[second+offLength:], 1<<20); return b }), ErrCorrupt},
		{"length too small", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[second+offLength:], 10); return b }), ErrCorrupt},
		{"trailing bytes", mutate(func(b []byte) []byte { return append(b, 1, 2, 3) }), ErrCorrupt},
		{"zero records", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[second+offRecordCount:], 0)
			recrc(b[second:])
			return b
		}), ErrCorrupt},
		{"last offset delta", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[second+offLastOffsetDelta:], 5)
			recrc(b[second:])
			return b
		}), ErrCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := openLog(t, t.TempDir(), testConfig())
			mustAppend(t, l, good)
			size, end := l.Size(), l.EndOffset()
			_, err := l.Append(c.in, 0)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if l.Size() != size || l.EndOffset() != end {
				t.Fatalf("failed append changed the log: size %d→%d end %d→%d", size, l.Size(), end, l.EndOffset())
			}
			checkInvariants(t, l)
			// The log still works.
			mustAppend(t, l, good)
		})
	}
}

func crcOf(b []byte) uint32 {
	return crc32.Checksum(b[offAttributes:], castagnoli)
}

func TestMaxMessageBytes(t *testing.T) {
	cfg := testConfig()
	b := makeBatch(t, batchSpec{n: 10, value: 100})
	cfg.MaxMessageBytes = int32(len(b))
	l := openLog(t, t.TempDir(), cfg)
	mustAppend(t, l, b) // exactly at the limit
	cfg.MaxMessageBytes = int32(len(b)) - 1
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	_, err := l.Append(bytes.Clone(b), 0)
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("got %v", err)
	}
	if l.EndOffset() != 10 {
		t.Fatalf("end %d", l.EndOffset())
	}
}

func TestLogAppendTime(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.LogAppendTime = true
	l := openLog(t, t.TempDir(), cfg, WithClock(clk.Now))
	in := makeBatch(t, batchSpec{n: 4, firstTs: 1000})
	res := mustAppend(t, l, in)
	now := clk.Now().UnixMilli()
	if res.LogAppendTime != now {
		t.Fatalf("LogAppendTime %d, want %d", res.LogAppendTime, now)
	}
	rr, err := l.Read(0, 1<<20, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	h, _ := parseHeader(rr.Records)
	if h.attributes&attrLogAppendTime == 0 || h.maxTimestamp != now || h.baseTimestamp != 1000 {
		t.Fatalf("attributes %#x max %d base %d", h.attributes, h.maxTimestamp, h.baseTimestamp)
	}
	if !crcOK(rr.Records) {
		t.Fatal("CRC not recomputed")
	}
	// Every record's timestamp is the append time.
	off, ts, ok, err := l.OffsetForTimestamp(now)
	if err != nil || !ok || off != 0 || ts != now {
		t.Fatalf("offset for %d: %d %d %v %v", now, off, ts, ok, err)
	}
	if off, ts, ok := l.MaxTimestamp(); !ok || off != 0 || ts != now {
		t.Fatalf("max timestamp %d %d %v", off, ts, ok)
	}
}

func TestRollBySize(t *testing.T) {
	cfg := testConfig()
	b := makeBatch(t, batchSpec{n: 5, value: 50})
	cfg.SegmentBytes = int64(3 * len(b))
	dir := t.TempDir()
	l := openLog(t, dir, cfg)
	for i := 0; i < 3; i++ {
		mustAppend(t, l, b)
	}
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments after filling one exactly", n)
	}
	mustAppend(t, l, b)
	files := segmentFiles(t, dir)
	if len(files) != 2 || !strings.HasSuffix(files[1], "00000000000000000015.log") {
		t.Fatalf("segments %v", files)
	}
	// A batch bigger than segment.bytes still goes in, alone.
	big := makeBatch(t, batchSpec{n: 5, value: 500})
	mustAppend(t, l, big)
	mustAppend(t, l, b)
	if n := len(segmentFiles(t, dir)); n != 4 {
		t.Fatalf("%d segments, want 4", n)
	}
	checkInvariants(t, l)
	if got := len(readAll(t, l, 1)); got != 6 {
		t.Fatalf("%d batches", got)
	}
}

func TestRollByTime(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.SegmentMs = time.Minute
	dir := t.TempDir()
	l := openLog(t, dir, cfg, WithClock(clk.Now))
	clk.Advance(time.Hour) // an empty segment never rolls
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
	clk.Advance(59 * time.Second)
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments before segment.ms", n)
	}
	clk.Advance(time.Second)
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
	if n := len(segmentFiles(t, dir)); n != 2 {
		t.Fatalf("%d segments after segment.ms", n)
	}
	checkInvariants(t, l)
}

func TestConfigValidate(t *testing.T) {
	c := Config{SegmentBytes: 1, SegmentMs: -1, RetentionBytes: -5, MaxMessageBytes: -1, FlushMessages: -1, IndexIntervalBytes: -1}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"segment.bytes", "segment.ms", "retention.bytes", "max.message.bytes", "flush.messages", "index.interval.bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	d := Config{RetentionMs: -1, RetentionBytes: -1, FlushMs: -time.Millisecond}
	d.EnsureDefaults()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.String(), "segment.bytes=1073741824") {
		t.Fatalf("String: %s", d.String())
	}
	if _, err := Open(t.TempDir(), c); err == nil {
		t.Fatal("Open accepted a bad config")
	}
}

func TestClosedLog(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, makeBatch(t, batchSpec{n: 2}))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := l.Append(makeBatch(t, batchSpec{n: 1}), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("append: %v", err)
	}
	if _, err := l.Read(0, 100, 2); !errors.Is(err, ErrClosed) {
		t.Fatalf("read: %v", err)
	}
	if err := l.WaitFlushed(2); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait flushed: %v", err)
	}
	if _, err := l.EnforceRetention(time.Now()); !errors.Is(err, ErrClosed) {
		t.Fatalf("retention: %v", err)
	}
	l2, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, testConfig()); err == nil {
		t.Fatal("directory survived Delete")
	}
}

func TestStickyWriteError(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	mustAppend(t, l, makeBatch(t, batchSpec{n: 2}))
	// Break the active segment's file underneath the log (both of its
	// descriptors, under RUNNEL_LOG_DIRECT_WRITES=1).
	l.active.f.Close()
	if l.active.dio.f != nil {
		l.active.dio.f.Close()
	}
	// The append fails, or, when it only went to the tail cache
	// (write-back), the flush that would write it does.
	_, err := l.Append(makeBatch(t, batchSpec{n: 1}), 0)
	if err == nil {
		if err := l.WaitFlushed(l.EndOffset()); err == nil {
			t.Fatal("append to a broken file succeeded, and so did its flush")
		}
	}
	wantEnd := int64(2)
	if err == nil {
		wantEnd = 3
	}
	if _, err := l.Append(makeBatch(t, batchSpec{n: 1}), 0); err == nil || !strings.Contains(err.Error(), "reopening") {
		t.Fatalf("second append: %v, want the sticky error", err)
	}
	if err := l.WaitFlushed(3); err == nil {
		t.Fatal("wait flushed on a broken log succeeded")
	}
	if l.EndOffset() != wantEnd {
		t.Fatalf("end %d, want %d", l.EndOffset(), wantEnd)
	}
}

func TestForcedRoll(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testConfig())
	if err := l.Roll(); err != nil || len(segmentFiles(t, dir)) != 1 {
		t.Fatalf("roll of an empty segment: %v, %d files", err, len(segmentFiles(t, dir)))
	}
	mustAppend(t, l, makeBatch(t, batchSpec{n: 4}))
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	files := segmentFiles(t, dir)
	if len(files) != 2 || !strings.HasSuffix(files[1], segmentName(4)+logSuffix) {
		t.Fatalf("segments %v", files)
	}
	checkInvariants(t, l)
}
