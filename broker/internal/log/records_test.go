package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// bombBatch is a zstd batch declaring one record whose few kilobytes
// decompress to n bytes: a record with a value of n-16 zeros.
func bombBatch(t *testing.T, n int) ([]byte, batchHeader) {
	t.Helper()
	var rec []byte
	rec = append(rec, 0)                     // attributes
	rec = binary.AppendVarint(rec, 0)        // timestamp delta
	rec = binary.AppendVarint(rec, 0)        // offset delta
	rec = binary.AppendVarint(rec, -1)       // no key
	rec = binary.AppendVarint(rec, int64(n)) // value length
	prefix := binary.AppendVarint(nil, int64(len(rec)+n+1))
	prefix = append(prefix, rec...)
	var out bytes.Buffer
	enc, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(prefix)
	zeros := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(zeros) {
		enc.Write(zeros[:min(left, len(zeros))])
	}
	enc.Write([]byte{0}) // no headers
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, batchHeaderSize, batchHeaderSize+out.Len())
	b = append(b, out.Bytes()...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-logOverhead))
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], codecZstd)
	binary.BigEndian.PutUint32(b[offRecordCount:], 1)
	h, err := parseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, h
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A batch stored before produce bounded decompression, or under a larger
// max.message.bytes, may decompress to far more than the reader's limit:
// the timestamp lookup streams it, and the cleaner and produce validation
// stop at the limit, each allocating a small fraction of what the batch
// claims.
func TestDecompressionIsBounded(t *testing.T) {
	const claim = 256 << 20
	batch, h := bombBatch(t, claim)
	const limit = 4 << 20

	var err error
	n := allocated(func() { _, _, _, err = findRecord(batch, &h, claim+64, func(int64, int64) bool { return false }) })
	if err != nil {
		t.Fatalf("timestamp walk of a %d-byte record: %v", claim, err)
	}
	if n > raceSlack*16<<20 {
		t.Errorf("timestamp walk of a %d MiB batch allocated %d MiB", claim>>20, n>>20)
	}
	n = allocated(func() { _, err = batchRecords(batch, &h, limit) })
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("batchRecords past the limit: %v, want ErrMessageTooLarge", err)
	}
	if n > raceSlack*4*limit {
		t.Errorf("batchRecords with a %d MiB limit allocated %d MiB", limit>>20, n>>20)
	}
	n = allocated(func() { err = checkRecords(batch, &h, limit, false) })
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("checkRecords past the limit: %v, want ErrMessageTooLarge", err)
	}
	if n > raceSlack*16<<20 {
		t.Errorf("checkRecords allocated %d MiB", n>>20)
	}
}

// walkAll walks every record of a batch as checkRecords does and returns
// the heads read and the error that stopped the walk, if any.
func walkAll(w *recordWalker, err error) ([]recordHead, error) {
	if err != nil {
		return nil, err
	}
	defer w.close()
	var heads []recordHead
	for range w.h.records {
		rh, err := w.next()
		if err != nil {
			return heads, err
		}
		heads = append(heads, rh)
	}
	return heads, w.end()
}

// errKind names the sentinel an error wraps, for comparing two walks.
func errKind(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrMessageTooLarge):
		return "too large"
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	}
	return "other: " + err.Error()
}

// checkWalkersAgree walks an uncompressed batch in place and through the
// stream, and fails unless both read the same heads and stop the same way.
func checkWalkersAgree(t *testing.T, batch []byte, limit int64) {
	t.Helper()
	h, err := parseHeader(batch)
	if err != nil || h.size > int64(len(batch)) || h.attributes&attrCompression != codecNone {
		return
	}
	inPlace, errA := walkAll(newRecordWalker(batch, &h, limit))
	streamed, errB := walkAll(newStreamWalker(batch, &h, limit))
	if errKind(errA) != errKind(errB) || len(inPlace) != len(streamed) {
		t.Fatalf("limit %d: in place %d records, %v; streamed %d records, %v", limit, len(inPlace), errA, len(streamed), errB)
	}
	for i := range inPlace {
		if inPlace[i] != streamed[i] {
			t.Fatalf("record %d: in place %+v, streamed %+v", i, inPlace[i], streamed[i])
		}
	}
	if errA != nil && errA.Error() != errB.Error() && errKind(errA) == "too large" {
		t.Fatalf("too-large errors differ: %v / %v", errA, errB)
	}
}

// The in-place walk of uncompressed batches is checked against the
// streaming one, which every codec uses: on well-formed batches, on every
// truncation and single-byte corruption of one, and under limits that cut
// it anywhere.
func TestRecordWalkerInPlaceMatchesStream(t *testing.T) {
	batch := makeBatch(t, batchSpec{n: 5, value: 20})
	checkWalkersAgree(t, batch, 1<<20)
	for limit := int64(0); limit <= int64(len(batch)); limit++ {
		checkWalkersAgree(t, batch, limit)
	}
	for i := batchHeaderSize; i < len(batch); i++ {
		for _, b := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff, batch[i] + 1} {
			bad := bytes.Clone(batch)
			bad[i] = b
			checkWalkersAgree(t, bad, 1<<20)
			checkWalkersAgree(t, bad, int64(len(bad)-batchHeaderSize-3))
		}
	}
	// Ten continuation bytes where a varint should be: an overflow both
	// ways, not a short read one way.
	over := bytes.Clone(batch[:batchHeaderSize])
	over = append(over, bytes.Repeat([]byte{0xff}, 10)...)
	binary.BigEndian.PutUint32(over[offLength:], uint32(len(over)-logOverhead))
	checkWalkersAgree(t, over, 1<<20)
}

// FuzzRecordWalker compares the two walks on arbitrary record bytes.
func FuzzRecordWalker(f *testing.F) {
	batch := makeBatch(f, batchSpec{n: 3, value: 5})
	f.Add(batch[batchHeaderSize:], int32(3), int64(1<<20))
	f.Add([]byte{0x02, 0x00}, int32(1), int64(1))
	f.Fuzz(func(t *testing.T, records []byte, count int32, limit int64) {
		b := bytes.Clone(batch[:batchHeaderSize])
		b = append(b, records...)
		binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-logOverhead))
		binary.BigEndian.PutUint32(b[offRecordCount:], uint32(max(0, min(count, 1000))))
		checkWalkersAgree(t, b, limit)
	})
}

// BenchmarkCheckRecords validates an uncompressed batch of 100 records of
// 100 bytes, as every produce does before the append.
func BenchmarkCheckRecords(b *testing.B) {
	batch := makeBatch(b, batchSpec{n: 100, value: 100})
	h, err := parseHeader(batch)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if err := checkRecords(batch, &h, 1<<20, false); err != nil {
			b.Fatal(err)
		}
	}
}
