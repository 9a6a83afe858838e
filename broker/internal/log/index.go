package log

import (
	"encoding/binary"
	"fmt"
	"os"
	"sort"
)

// indexEntry is one offset index entry: the batch whose base offset is
// base+rel starts at byte pos of the segment's .log.
type indexEntry struct {
	rel uint32
	pos uint32
}

const indexEntrySize = 8

// floorPos returns the position of the last entry with rel <= target, or 0
// (the segment's first batch) when there is none. The batch holding target
// starts at or after it.
func floorPos(idx []indexEntry, target uint32) int64 {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].rel > target })
	if i == 0 {
		return 0
	}
	return int64(idx[i-1].pos)
}

// ceilPos returns the position of the first entry with rel >= target and
// true, or false when there is none. Every batch before it starts below
// target.
func ceilPos(idx []indexEntry, target uint32) (int64, bool) {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].rel >= target })
	if i == len(idx) {
		return 0, false
	}
	return int64(idx[i].pos), true
}

// nextPos returns the position of the first entry with rel > target, or
// false when there is none. The batch holding target starts before it.
func nextPos(idx []indexEntry, target uint32) (int64, bool) {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].rel > target })
	if i == len(idx) {
		return 0, false
	}
	return int64(idx[i].pos), true
}

func encodeIndex(idx []indexEntry) []byte {
	b := make([]byte, len(idx)*indexEntrySize)
	for i, e := range idx {
		binary.BigEndian.PutUint32(b[i*indexEntrySize:], e.rel)
		binary.BigEndian.PutUint32(b[i*indexEntrySize+4:], e.pos)
	}
	return b
}

// decodeIndex parses an .index file of a segment of logSize bytes holding
// offsets below base+span, rejecting anything a correct writer could not
// have produced.
func decodeIndex(b []byte, logSize int64, span int64) ([]indexEntry, error) {
	if len(b)%indexEntrySize != 0 {
		return nil, fmt.Errorf("index size %d not a multiple of %d", len(b), indexEntrySize)
	}
	idx := make([]indexEntry, len(b)/indexEntrySize)
	for i := range idx {
		e := indexEntry{
			rel: binary.BigEndian.Uint32(b[i*indexEntrySize:]),
			pos: binary.BigEndian.Uint32(b[i*indexEntrySize+4:]),
		}
		if int64(e.pos) >= logSize || int64(e.rel) >= span {
			return nil, fmt.Errorf("index entry %d (%d@%d) outside the segment", i, e.rel, e.pos)
		}
		if i > 0 && (e.rel <= idx[i-1].rel || e.pos <= idx[i-1].pos) {
			return nil, fmt.Errorf("index entry %d (%d@%d) out of order", i, e.rel, e.pos)
		}
		idx[i] = e
	}
	return idx, nil
}

// timeEntry is one time index entry: ts is the segment's max timestamp
// after the batch at base+rel, and every batch before that one has a
// smaller max timestamp.
type timeEntry struct {
	ts  int64
	rel uint32
}

const timeEntrySize = 12

// timeFloor returns the relative offset of the last entry with ts <=
// target, or 0 when there is none. The first batch whose max timestamp is
// >= target is at or after it.
func timeFloor(tidx []timeEntry, target int64) uint32 {
	i := sort.Search(len(tidx), func(i int) bool { return tidx[i].ts > target })
	if i == 0 {
		return 0
	}
	return tidx[i-1].rel
}

func encodeTimeIndex(tidx []timeEntry) []byte {
	b := make([]byte, len(tidx)*timeEntrySize)
	for i, e := range tidx {
		binary.BigEndian.PutUint64(b[i*timeEntrySize:], uint64(e.ts))
		binary.BigEndian.PutUint32(b[i*timeEntrySize+8:], e.rel)
	}
	return b
}

// decodeTimeIndex parses a .timeindex file of a segment holding offsets
// below base+span.
func decodeTimeIndex(b []byte, span int64) ([]timeEntry, error) {
	if len(b)%timeEntrySize != 0 {
		return nil, fmt.Errorf("time index size %d not a multiple of %d", len(b), timeEntrySize)
	}
	tidx := make([]timeEntry, len(b)/timeEntrySize)
	for i := range tidx {
		e := timeEntry{
			ts:  int64(binary.BigEndian.Uint64(b[i*timeEntrySize:])),
			rel: binary.BigEndian.Uint32(b[i*timeEntrySize+8:]),
		}
		if int64(e.rel) >= span {
			return nil, fmt.Errorf("time index entry %d (%d@%d) outside the segment", i, e.ts, e.rel)
		}
		if i > 0 && (e.ts <= tidx[i-1].ts || e.rel < tidx[i-1].rel) {
			return nil, fmt.Errorf("time index entry %d (%d@%d) out of order", i, e.ts, e.rel)
		}
		tidx[i] = e
	}
	return tidx, nil
}

// writeFileSync replaces path's contents with data and fsyncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
