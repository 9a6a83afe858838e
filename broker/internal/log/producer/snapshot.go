package producer

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
)

// Snapshot format. A snapshot is the whole state as of an offset (the log
// names the file by it), big endian:
//
//	version          int16   1
//	crc              uint32  CRC32C of every byte after this field
//	count            int32   producers
//	count times:
//	  producerID       int64
//	  epoch            int16
//	  coordinatorEpoch int32
//	  lastTimestamp    int64
//	  txnFirstOffset   int64   -1 when no transaction is open
//	  batches          int8    0..5, oldest first:
//	    firstSeq       int32
//	    lastSeq        int32
//	    firstOffset    int64
//	    offsetDelta    int32   lastOffset - firstOffset
//
// Unlike Kafka's snapshot, which keeps only a producer's last batch, it
// keeps all five, so a retry of any in-flight batch is still recognised
// after a restart.
const (
	snapshotVersion    = 1
	snapshotHeaderSize = 2 + 4 + 4
	entryFixedSize     = 8 + 2 + 4 + 8 + 8 + 1
	batchSize          = 4 + 4 + 8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendSnapshot appends the encoded state to dst and returns it.
// Producers are written in id order, so equal states encode equally.
func (s *State) AppendSnapshot(dst []byte) []byte {
	pids := make([]int64, 0, len(s.producers))
	for pid := range s.producers {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, snapshotVersion)
	dst = binary.BigEndian.AppendUint32(dst, 0) // CRC, filled in below
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(pids)))
	for _, pid := range pids {
		e := s.producers[pid]
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.ProducerID))
		dst = binary.BigEndian.AppendUint16(dst, uint16(e.Epoch))
		dst = binary.BigEndian.AppendUint32(dst, uint32(e.CoordinatorEpoch))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.LastTimestamp))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.TxnFirstOffset))
		dst = append(dst, e.n)
		for i := 0; i < int(e.n); i++ {
			m := e.batches[(int(e.head)+i)%MaxBatches]
			dst = binary.BigEndian.AppendUint32(dst, uint32(m.FirstSeq))
			dst = binary.BigEndian.AppendUint32(dst, uint32(m.LastSeq))
			dst = binary.BigEndian.AppendUint64(dst, uint64(m.FirstOffset))
			dst = binary.BigEndian.AppendUint32(dst, uint32(m.LastOffset-m.FirstOffset))
		}
	}
	binary.BigEndian.PutUint32(dst[start+2:], crc32.Checksum(dst[start+6:], castagnoli))
	return dst
}

// DecodeSnapshot decodes a snapshot taken at offset (the offset the file
// is named by: every offset in it lies below). Bad input of any kind is an
// error wrapping ErrCorruptSnapshot, never a panic.
func DecodeSnapshot(b []byte, offset int64) (*State, error) {
	bad := func(format string, args ...any) (*State, error) {
		return nil, fmt.Errorf("%w: %s", ErrCorruptSnapshot, fmt.Sprintf(format, args...))
	}
	if len(b) < snapshotHeaderSize {
		return bad("%d bytes, shorter than a header", len(b))
	}
	if v := int16(binary.BigEndian.Uint16(b)); v != snapshotVersion {
		return bad("version %d", v)
	}
	if crc32.Checksum(b[6:], castagnoli) != binary.BigEndian.Uint32(b[2:]) {
		return bad("CRC mismatch")
	}
	count := int64(int32(binary.BigEndian.Uint32(b[6:])))
	rest := b[snapshotHeaderSize:]
	if count < 0 || count*entryFixedSize > int64(len(rest)) {
		return bad("%d producers in %d bytes", count, len(rest))
	}
	s := New()
	prevPID := int64(-1)
	for i := int64(0); i < count; i++ {
		if len(rest) < entryFixedSize {
			return bad("producer %d truncated", i)
		}
		e := &Entry{
			ProducerID:       int64(binary.BigEndian.Uint64(rest)),
			Epoch:            int16(binary.BigEndian.Uint16(rest[8:])),
			CoordinatorEpoch: int32(binary.BigEndian.Uint32(rest[10:])),
			LastTimestamp:    int64(binary.BigEndian.Uint64(rest[14:])),
			TxnFirstOffset:   int64(binary.BigEndian.Uint64(rest[22:])),
		}
		n := rest[30]
		rest = rest[entryFixedSize:]
		switch {
		case e.ProducerID < 0:
			return bad("producer id %d", e.ProducerID)
		case e.ProducerID <= prevPID:
			return bad("producer %d after %d: ids must ascend", e.ProducerID, prevPID)
		case e.Epoch < -1:
			return bad("producer %d epoch %d", e.ProducerID, e.Epoch)
		case e.TxnFirstOffset < -1 || e.TxnFirstOffset >= offset:
			return bad("producer %d transaction at %d, snapshot at %d", e.ProducerID, e.TxnFirstOffset, offset)
		case n > MaxBatches:
			return bad("producer %d has %d batches", e.ProducerID, n)
		case len(rest) < int(n)*batchSize:
			return bad("producer %d batches truncated", e.ProducerID)
		}
		prevLast := int64(-1)
		for j := 0; j < int(n); j++ {
			m := BatchMeta{
				FirstSeq:    int32(binary.BigEndian.Uint32(rest)),
				LastSeq:     int32(binary.BigEndian.Uint32(rest[4:])),
				FirstOffset: int64(binary.BigEndian.Uint64(rest[8:])),
			}
			delta := int32(binary.BigEndian.Uint32(rest[16:]))
			rest = rest[batchSize:]
			if m.FirstSeq < 0 || m.LastSeq < 0 || delta < 0 || m.FirstOffset <= prevLast || m.FirstOffset > offset-1-int64(delta) {
				return bad("producer %d batch %d: sequences [%d, %d] offsets %d+%d", e.ProducerID, j, m.FirstSeq, m.LastSeq, m.FirstOffset, delta)
			}
			m.LastOffset = m.FirstOffset + int64(delta)
			prevLast = m.LastOffset
			e.addBatch(m)
		}
		s.producers[e.ProducerID] = e
		prevPID = e.ProducerID
		if e.TxnFirstOffset >= 0 {
			s.ongoing[e.ProducerID] = e.TxnFirstOffset
		}
	}
	if len(rest) != 0 {
		return bad("%d trailing bytes", len(rest))
	}
	s.recomputeFirstUnstable()
	return s, nil
}
