package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

// TestMain runs the package's tests; with RUNNEL_LOG_DIRECT_WRITES=1
// every log they open writes and reads directly (direct.go,
// direct_read.go), so that the whole suite checks those paths too, and
// with RUNNEL_LOG_DIRECT_WRITES=cache also keeps its tail in a cache
// (tailcache.go) small enough that the suite's logs keep evicting each
// other's pages.
func TestMain(m *testing.M) {
	switch os.Getenv("RUNNEL_LOG_DIRECT_WRITES") {
	case "1":
		directWritesAtOpen = true
		directReadsAtOpen = NewDirectReads()
	case "cache":
		directWritesAtOpen = true
		directReadsAtOpen = NewDirectReads()
		tailCacheAtOpen = NewTailCache(16 * tcPageSize)
	}
	code := m.Run()
	if tailCacheAtOpen != nil {
		tailCacheAtOpen.ring.close() // the suite's logs are closed
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// codecXerial asks for snappy in the Java client's xerial framing; the
// other codecs are records.go's attribute values.
const codecXerial = 0x102

// batchSpec describes a test batch.
type batchSpec struct {
	n       int     // records
	value   int     // value bytes per record
	ts      []int64 // per-record timestamps; default firstTs+i
	firstTs int64
	codec   int
}

// makeBatch builds a RecordBatch v2 as a producer would send it, with
// kmsg's encoders and a CRC32C over the attributes onward.
func makeBatch(t testing.TB, spec batchSpec) []byte {
	t.Helper()
	if spec.n == 0 {
		spec.n = 1
	}
	ts := spec.ts
	if ts == nil {
		ts = make([]int64, spec.n)
		for i := range ts {
			ts[i] = spec.firstTs + int64(i)
		}
	}
	first, maxTs := ts[0], ts[0]
	for _, x := range ts {
		maxTs = max(maxTs, x)
	}
	var recs []byte
	for i := 0; i < spec.n; i++ {
		r := kmsg.Record{
			TimestampDelta64: ts[i] - first,
			OffsetDelta:      int32(i),
			Key:              []byte{byte(i)},
			Value:            bytes.Repeat([]byte{byte('a' + i%26)}, spec.value),
		}
		body := r.AppendTo(nil) // Length 0: one varint byte, then the body
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
	}
	attrs := int16(spec.codec & 0x07)
	recs = compress(t, spec.codec, recs)
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      int32(spec.n - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTs,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(spec.n),
		Records:              recs,
	}
	b.Length = int32(batchHeaderSize - logOverhead + len(recs))
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

func compress(t testing.TB, codec int, in []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case codecNone:
		return in
	case codecGzip:
		w := gzip.NewWriter(&buf)
		w.Write(in)
		w.Close()
	case codecSnappy:
		return s2.EncodeSnappy(nil, in)
	case codecXerial:
		buf.Write([]byte{130, 83, 78, 65, 80, 80, 89, 0, 0, 0, 0, 1, 0, 0, 0, 1})
		for len(in) > 0 {
			chunk := in[:min(len(in), 100)] // several blocks
			in = in[len(chunk):]
			blk := s2.EncodeSnappy(nil, chunk)
			binary.Write(&buf, binary.BigEndian, uint32(len(blk)))
			buf.Write(blk)
		}
	case codecLz4:
		w := lz4.NewWriter(&buf)
		w.Write(in)
		w.Close()
	case codecZstd:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(in, nil)
	default:
		t.Fatalf("codec %d", codec)
	}
	return buf.Bytes()
}

// batches concatenates test batches of n records each.
func batches(t testing.TB, count, n, value int, firstTs int64) []byte {
	var out []byte
	for i := 0; i < count; i++ {
		out = append(out, makeBatch(t, batchSpec{n: n, value: value, firstTs: firstTs + int64(i*n)})...)
	}
	return out
}

// clock is a manual clock for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// readPlain reads as Read does, through the page cache whatever the log's
// direct reads: the path direct reads are checked against.
func (l *Log) readPlain(offset int64, maxBytes int32, maxOffset int64) (ReadResult, error) {
	return l.readOnce(offset, maxBytes, maxOffset, nil)
}

func testConfig() Config {
	c := Config{RetentionMs: -1, RetentionBytes: -1}
	c.EnsureDefaults()
	return c
}

func openLog(t testing.TB, dir string, cfg Config, opts ...Option) *Log {
	t.Helper()
	l, err := Open(dir, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	checkInvariants(t, l)
	return l
}

func mustAppend(t testing.TB, l *Log, in []byte) AppendResult {
	t.Helper()
	res, err := l.Append(bytes.Clone(in), 0)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// readAll reads every batch from the log start to its end and returns the
// headers, checking batches are whole, in order, and CRC-valid.
func readAll(t testing.TB, l *Log, maxBytes int32) []batchHeader {
	t.Helper()
	var out []batchHeader
	off := l.StartOffset()
	end := l.EndOffset()
	for off < end {
		res, err := l.Read(off, maxBytes, end)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(res.Records) == 0 {
			t.Fatalf("read at %d of [%d, %d): nothing", off, l.StartOffset(), end)
		}
		hs := checkBatchesRead(t, res.Records)
		if hs[0].baseOffset > off && len(out) > 0 {
			t.Fatalf("read at %d starts at batch %d", off, hs[0].baseOffset)
		}
		if hs[0].lastOffset() < off {
			t.Fatalf("read at %d returned batch ending at %d", off, hs[0].lastOffset())
		}
		out = append(out, hs...)
		off = hs[len(hs)-1].lastOffset() + 1
	}
	return out
}

// checkBatchesRead parses a Read result: whole batches, valid CRCs,
// ascending offsets.
func checkBatchesRead(t testing.TB, recs []byte) []batchHeader {
	t.Helper()
	var hs []batchHeader
	for p := 0; p < len(recs); {
		if len(recs)-p < batchHeaderSize {
			t.Fatalf("partial header at %d of %d", p, len(recs))
		}
		h, err := parseHeader(recs[p:])
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(recs)-p) < h.size {
			t.Fatalf("partial batch at %d", p)
		}
		if !crcOK(recs[p : p+int(h.size)]) {
			t.Fatalf("bad CRC in batch %d", h.baseOffset)
		}
		if len(hs) > 0 && h.baseOffset <= hs[len(hs)-1].lastOffset() {
			t.Fatalf("batch %d after %d", h.baseOffset, hs[len(hs)-1].lastOffset())
		}
		hs = append(hs, h)
		p += int(h.size)
	}
	return hs
}

// checkInvariants checks the documented invariants of an open log.
func checkInvariants(t testing.TB, l *Log) {
	t.Helper()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return
	}
	// Write-back leaves the active segment's last appends in the tail
	// cache until a flush: write them, as the flush would, so the file
	// can be checked.
	if err := l.active.writePending(); err != nil {
		t.Fatalf("write back: %v", err)
	}
	l.active.wmu.Lock()
	activePadded := l.active.dio.padded
	l.active.wmu.Unlock()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.segments) == 0 || l.segments[len(l.segments)-1] != l.active {
		t.Fatalf("active segment is not the last of %d", len(l.segments))
	}
	start, end := l.start.Load(), l.end.Load()
	if start > end {
		t.Fatalf("start %d > end %d", start, end)
	}
	if l.flushed.Load() > end {
		t.Fatalf("flushed %d > end %d", l.flushed.Load(), end)
	}
	var size int64
	for i, s := range l.segments {
		if i > 0 && s.base < l.segments[i-1].pub.next {
			t.Fatalf("segment %d starts below the previous segment's end %d", s.base, l.segments[i-1].pub.next)
		}
		if s.pub.size != s.w.size {
			t.Fatalf("segment %d: published size %d, working size %d", s.base, s.pub.size, s.w.size)
		}
		fi, err := s.f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		// Direct writes may leave the active segment's file padded with
		// zeros to the next block (direct.go), or as far as zero-ahead
		// wrote (zeroahead.go).
		s.wmu.Lock()
		s.awaitZeroing(s.zero.to)
		limit := max((s.pub.size+directBlock-1)&^(directBlock-1), s.zero.ready)
		s.wmu.Unlock()
		padded := s == l.active && activePadded && fi.Size() > s.pub.size && fi.Size() <= limit
		if fi.Size() != s.pub.size && !padded {
			t.Fatalf("segment %d: file size %d, recorded %d", s.base, fi.Size(), s.pub.size)
		}
		size += s.pub.size
	}
	if size != l.size.Load() {
		t.Fatalf("size %d, segments add to %d", l.size.Load(), size)
	}
	if last := l.segments[len(l.segments)-1]; last.pub.next != end {
		t.Fatalf("end %d, active segment ends at %d", end, last.pub.next)
	}
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// testTailCache is NewTailCache for a test: its commit ring stops when
// the test ends, after the test's logs are closed.
func testTailCache(t testing.TB, budget int64) *TailCache {
	tc := NewTailCache(budget)
	t.Cleanup(tc.ring.close)
	return tc
}
