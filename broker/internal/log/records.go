package log

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Reading the records inside a batch. A batch's records may be compressed
// (gzip, snappy as a raw block or in the xerial framing of the Java
// client, lz4 frame, zstd), and a few kilobytes can claim gigabytes: every
// reader here streams, decompressing no more than a limit (max.message.bytes
// at produce, readLimit elsewhere) and stopping at the batch's declared
// record count. A batch that exceeds the limit is an error wrapping
// ErrMessageTooLarge; one whose records do not parse, ErrCorrupt.

const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLz4    = 3
	codecZstd   = 4
)

// minReadLimit is the least readLimit allows: batches written under a
// larger max.message.bytes, or before produce bounded decompression, stay
// readable up to it.
const minReadLimit = 64 << 20

// readLimit bounds the decompressed records of a stored batch read by the
// timestamp lookup and the cleaner.
func readLimit(cfg *Config) int64 { return max(int64(cfg.MaxMessageBytes), minReadLimit) }

// codecOf returns a batch's compression codec, or an error wrapping
// ErrUnsupportedCompression.
func codecOf(h *batchHeader) (int16, error) {
	codec := h.attributes & attrCompression
	if codec > codecZstd {
		return 0, fmt.Errorf("%w: codec %d in batch at offset %d", ErrUnsupportedCompression, codec, h.baseOffset)
	}
	return codec, nil
}

// boundedReader reads at most limit bytes from r and fails with
// ErrMessageTooLarge if r holds more.
type boundedReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe for one byte more: only a source that has it is too
		// large.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: records decompress to more than %d bytes", ErrMessageTooLarge, b.limit)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		// The decoder's own bound, set from the same limit.
		err = fmt.Errorf("%w: records decompress to more than %d bytes: %v", ErrMessageTooLarge, b.limit, err)
	}
	return n, err
}

// zstdPools holds streaming zstd decoders by limit (a decoder's memory
// bound is fixed when it is made); most topics share the default limit.
var zstdPools sync.Map // int64 -> *sync.Pool

func zstdDecoder(limit int64) (*zstd.Decoder, func(), error) {
	v, _ := zstdPools.LoadOrStore(limit, &sync.Pool{})
	pool := v.(*sync.Pool)
	if d, ok := pool.Get().(*zstd.Decoder); ok {
		return d, func() { d.Reset(nil); pool.Put(d) }, nil
	}
	window := uint64(max(limit, zstd.MinWindowSize))
	if window > zstd.MaxWindowSize {
		window = zstd.MaxWindowSize
	}
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(limit)+1),
		zstd.WithDecoderMaxWindow(window),
	)
	if err != nil {
		return nil, nil, err
	}
	return d, func() { d.Reset(nil); pool.Put(d) }, nil
}

var gzipPool sync.Pool // *gzip.Reader

var snappyBufs sync.Pool // *[]byte, the buffers snappy batches decompress into

// openRecords returns a reader of a batch's record bytes, decompressed,
// bounded by limit, and a function that releases it.
func openRecords(batch []byte, h *batchHeader, limit int64) (io.Reader, func(), error) {
	raw := batch[batchHeaderSize:h.size]
	codec, err := codecOf(h)
	if err != nil {
		return nil, nil, err
	}
	corrupt := func(err error) error {
		return fmt.Errorf("%w: decompress batch at offset %d: %v", ErrCorrupt, h.baseOffset, err)
	}
	nop := func() {}
	var r io.Reader
	release := nop
	switch codec {
	case codecNone:
		r = bytes.NewReader(raw)
	case codecGzip:
		zr, _ := gzipPool.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		if err := zr.Reset(bytes.NewReader(raw)); err != nil {
			return nil, nil, corrupt(err)
		}
		r, release = zr, func() { gzipPool.Put(zr) }
	case codecSnappy:
		if sr, ok := newXerialReader(raw); ok {
			r = sr
			break
		}
		n, err := s2.DecodedLen(raw)
		if err != nil {
			return nil, nil, corrupt(err)
		}
		if int64(n) > limit {
			return nil, nil, fmt.Errorf("%w: records decompress to %d bytes, more than %d", ErrMessageTooLarge, n, limit)
		}
		// Every produced snappy batch is decompressed to check its
		// records: into a buffer reused from batch to batch, which the
		// caller holds until release.
		buf, _ := snappyBufs.Get().(*[]byte)
		if buf == nil {
			buf = new([]byte)
		}
		out, err := s2.Decode((*buf)[:0], raw)
		if err != nil {
			snappyBufs.Put(buf)
			return nil, nil, corrupt(err)
		}
		*buf = out[:0] // Decode made a larger one if it had to: keep that
		r, release = bytes.NewReader(out), func() { snappyBufs.Put(buf) }
	case codecLz4:
		r = lz4.NewReader(bytes.NewReader(raw))
	case codecZstd:
		d, put, err := zstdDecoder(limit)
		if err != nil {
			return nil, nil, err
		}
		if err := d.Reset(bytes.NewReader(raw)); err != nil {
			put()
			return nil, nil, corrupt(err)
		}
		r, release = d, put
	}
	return &boundedReader{r: r, left: limit, limit: limit}, release, nil
}

// xerialReader decodes the xerial snappy framing block by block: a
// 16-byte header, then blocks of a big-endian length and a raw snappy
// block.
type xerialReader struct {
	src []byte
	buf []byte
	out []byte
}

var xerialMagic = []byte{130, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

func newXerialReader(raw []byte) (*xerialReader, bool) {
	if len(raw) < 16 || !bytes.HasPrefix(raw, xerialMagic) {
		return nil, false
	}
	return &xerialReader{src: raw[16:]}, true
}

// maxXerialBlock bounds one decoded block; the Java client writes 32 KiB.
const maxXerialBlock = 4 << 20

func (x *xerialReader) Read(p []byte) (int, error) {
	for len(x.out) == 0 {
		if len(x.src) == 0 {
			return 0, io.EOF
		}
		if len(x.src) < 4 {
			return 0, errors.New("snappy: truncated xerial block length")
		}
		n := binary.BigEndian.Uint32(x.src)
		if uint64(n) > uint64(len(x.src)-4) {
			return 0, errors.New("snappy: xerial block past the end")
		}
		block := x.src[4 : 4+n]
		x.src = x.src[4+n:]
		dl, err := s2.DecodedLen(block)
		if err != nil {
			return 0, err
		}
		if dl > maxXerialBlock {
			return 0, fmt.Errorf("snappy: xerial block of %d bytes", dl)
		}
		if x.out, err = s2.Decode(x.buf[:cap(x.buf)], block); err != nil {
			return 0, err
		}
		x.buf = x.out
	}
	n := copy(p, x.out)
	x.out = x.out[n:]
	return n, nil
}

// recordHead is what a walk reads of each record: the fields before its
// key and value.
type recordHead struct {
	tsDelta  int64
	offDelta int64
	nullKey  bool
}

// recordWalker reads a batch's records one at a time. An uncompressed
// batch is walked in place (the common case: produce validation runs on
// every batch appended, and must not allocate per record); a compressed
// one from openRecords' stream, holding only a small buffer whatever the
// batch claims. Both ways see the same records and fail the same way:
// TestRecordWalkerInPlaceMatchesStream checks one against the other.
type recordWalker struct {
	h *batchHeader
	i int32 // records read

	// In place: raw is the record bytes up to the limit, off how far
	// the walk has read, and over whether the batch holds more than
	// limit bytes (running past raw is then ErrMessageTooLarge).
	inPlace bool
	raw     []byte
	off     int
	over    bool
	limit   int64

	// Streaming: br reads the decompressed records; cr counts what one
	// record's fields took (a field of the walker, not of next, so that
	// passing it as an io.ByteReader allocates nothing per record).
	br      *bufio.Reader
	cr      countingByteReader
	release func()
}

var bufioPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

func newRecordWalker(batch []byte, h *batchHeader, limit int64) (*recordWalker, error) {
	codec, err := codecOf(h)
	if err != nil {
		return nil, err
	}
	if codec == codecNone {
		raw := batch[batchHeaderSize:h.size]
		w := &recordWalker{h: h, inPlace: true, raw: raw, limit: limit}
		if lim := max(limit, 0); int64(len(raw)) > lim {
			w.raw, w.over = raw[:lim], true
		}
		return w, nil
	}
	return newStreamWalker(batch, h, limit)
}

// newStreamWalker walks the records through openRecords' stream, whatever
// the codec.
func newStreamWalker(batch []byte, h *batchHeader, limit int64) (*recordWalker, error) {
	r, release, err := openRecords(batch, h, limit)
	if err != nil {
		return nil, err
	}
	br := bufioPool.Get().(*bufio.Reader)
	br.Reset(r)
	return &recordWalker{h: h, br: br, release: release}, nil
}

func (w *recordWalker) close() {
	if w.inPlace {
		return
	}
	w.br.Reset(nil)
	bufioPool.Put(w.br)
	w.release()
}

// fail wraps a read error: a size limit keeps its sentinel, anything else
// is corruption.
func (w *recordWalker) fail(what string, err error) error {
	if errors.Is(err, ErrMessageTooLarge) {
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: record %d of batch at offset %d: %s: %v", ErrCorrupt, w.i, w.h.baseOffset, what, err)
}

// next reads the next record's head and skips the rest of it. Call it at
// most h.records times.
func (w *recordWalker) next() (recordHead, error) {
	if w.inPlace {
		return w.nextInPlace()
	}
	var rh recordHead
	length, err := binary.ReadVarint(w.br)
	if err != nil {
		return rh, w.fail("length", err)
	}
	if length < 1 {
		return rh, w.fail("length", fmt.Errorf("%d", length))
	}
	w.cr = countingByteReader{br: w.br}
	cr := &w.cr
	if _, err := cr.ReadByte(); err != nil { // attributes
		return rh, w.fail("attributes", err)
	}
	if rh.tsDelta, err = binary.ReadVarint(cr); err != nil {
		return rh, w.fail("timestamp delta", err)
	}
	if rh.offDelta, err = binary.ReadVarint(cr); err != nil {
		return rh, w.fail("offset delta", err)
	}
	klen, err := binary.ReadVarint(cr)
	if err != nil {
		return rh, w.fail("key length", err)
	}
	if klen < -1 || cr.n > length || klen > length-cr.n {
		return rh, w.fail("key length", fmt.Errorf("%d in a record of %d bytes", klen, length))
	}
	rh.nullKey = klen < 0
	if _, err := w.br.Discard(int(length - cr.n)); err != nil {
		return rh, w.fail("body", err)
	}
	w.i++
	return rh, nil
}

// nextInPlace is next on an uncompressed batch: the same reads, in the
// same order, from the batch's bytes.
func (w *recordWalker) nextInPlace() (recordHead, error) {
	var rh recordHead
	length, err := w.varint()
	if err != nil {
		return rh, w.fail("length", err)
	}
	if length < 1 {
		return rh, w.fail("length", fmt.Errorf("%d", length))
	}
	start := w.off
	if w.off >= len(w.raw) { // attributes
		return rh, w.fail("attributes", w.short())
	}
	w.off++
	if rh.tsDelta, err = w.varint(); err != nil {
		return rh, w.fail("timestamp delta", err)
	}
	if rh.offDelta, err = w.varint(); err != nil {
		return rh, w.fail("offset delta", err)
	}
	klen, err := w.varint()
	if err != nil {
		return rh, w.fail("key length", err)
	}
	n := int64(w.off - start)
	if klen < -1 || n > length || klen > length-n {
		return rh, w.fail("key length", fmt.Errorf("%d in a record of %d bytes", klen, length))
	}
	rh.nullKey = klen < 0
	if rest := length - n; rest > int64(len(w.raw)-w.off) {
		w.off = len(w.raw)
		return rh, w.fail("body", w.short())
	} else {
		w.off += int(rest)
	}
	w.i++
	return rh, nil
}

// varint reads a zig-zag varint in place, failing as binary.ReadVarint
// does on a stream: io.EOF before its first byte, io.ErrUnexpectedEOF
// inside it, an overflow error past 64 bits.
func (w *recordWalker) varint() (int64, error) {
	buf := w.raw[w.off:]
	v, n := binary.Varint(buf)
	switch {
	case n > 0:
		w.off += n
		return v, nil
	case n < 0:
		w.off -= n
		return 0, errVarintOverflow
	case len(buf) >= binary.MaxVarintLen64:
		// Ten bytes that do not end a varint: a stream reader gives
		// up there, where binary.Varint wants an eleventh byte.
		w.off += binary.MaxVarintLen64
		return 0, errVarintOverflow
	}
	w.off = len(w.raw)
	return 0, w.short()
}

// errVarintOverflow is what a varint longer than 64 bits fails with.
var errVarintOverflow = errors.New("varint overflows a 64-bit integer")

// short is the error of a read past the bytes in place: the batch's
// records end there, or the limit cuts them.
func (w *recordWalker) short() error {
	if w.over {
		return fmt.Errorf("%w: records decompress to more than %d bytes", ErrMessageTooLarge, w.limit)
	}
	return io.ErrUnexpectedEOF
}

// end checks that nothing follows the last record.
func (w *recordWalker) end() error {
	if w.inPlace {
		if w.off < len(w.raw) {
			return fmt.Errorf("%w: bytes after the %d records of batch at offset %d", ErrCorrupt, w.h.records, w.h.baseOffset)
		}
		if w.over {
			return w.short()
		}
		return nil
	}
	if _, err := w.br.ReadByte(); err != io.EOF {
		if err != nil {
			return w.fail("end", err)
		}
		return fmt.Errorf("%w: bytes after the %d records of batch at offset %d", ErrCorrupt, w.h.records, w.h.baseOffset)
	}
	return nil
}

type countingByteReader struct {
	br *bufio.Reader
	n  int64
}

func (c *countingByteReader) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// checkRecords walks every record of a batch being appended: exactly the
// declared count, each well formed, offset deltas 0, 1, 2 ..., nothing
// after, no more than limit bytes decompressed, and (keyed) a key in every
// record, which a compacted log needs.
func checkRecords(batch []byte, h *batchHeader, limit int64, keyed bool) error {
	w, err := newRecordWalker(batch, h, limit)
	if err != nil {
		return err
	}
	defer w.close()
	for i := int32(0); i < h.records; i++ {
		rh, err := w.next()
		if err != nil {
			return err
		}
		if rh.offDelta != int64(i) {
			return fmt.Errorf("%w: record %d of batch at offset %d has offset delta %d", ErrCorrupt, i, h.baseOffset, rh.offDelta)
		}
		if keyed && rh.nullKey {
			return fmt.Errorf("%w: compacted topic cannot accept a record without a key", ErrInvalidRecord)
		}
	}
	return w.end()
}

// batchRecords returns a batch's record bytes, decompressed when its
// attributes say so, up to limit bytes.
func batchRecords(batch []byte, h *batchHeader, limit int64) ([]byte, error) {
	codec, err := codecOf(h)
	if err != nil {
		return nil, err
	}
	if codec == codecNone {
		return batch[batchHeaderSize:h.size], nil
	}
	r, release, err := openRecords(batch, h, limit)
	if err != nil {
		return nil, err
	}
	defer release()
	out, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(err, ErrMessageTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: decompress batch at offset %d: %v", ErrCorrupt, h.baseOffset, err)
	}
	return out, nil
}

// findRecord walks the records of a batch, streaming, and returns the
// offset and timestamp of the first record for which match returns true.
// For LogAppendTime batches every record's timestamp is the batch's max
// timestamp.
func findRecord(batch []byte, h *batchHeader, limit int64, match func(off, ts int64) bool) (off, ts int64, ok bool, err error) {
	w, err := newRecordWalker(batch, h, limit)
	if err != nil {
		return 0, 0, false, err
	}
	defer w.close()
	logAppend := h.attributes&attrLogAppendTime != 0
	for i := int32(0); i < h.records; i++ {
		rh, err := w.next()
		if err != nil {
			return 0, 0, false, err
		}
		off, ts := h.baseOffset+rh.offDelta, h.baseTimestamp+rh.tsDelta
		if logAppend {
			ts = h.maxTimestamp
		}
		if match(off, ts) {
			return off, ts, true, nil
		}
	}
	return 0, 0, false, nil
}
