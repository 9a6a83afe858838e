package state

import (
	"encoding/binary"
	"fmt"
)

// Changelog key layouts. They are Kafka Streams' binary layouts, so a
// changelog topic can be read by tools that know them:
//
//	key-value store:  key
//	window store:     key | window start (int64, 8 bytes big-endian) | seq (uint32, 4 bytes big-endian)
//	session store:    key | session end (int64, 8 bytes big-endian) | session start (int64, 8 bytes big-endian)
//
// The window seq is 0 unless the store retains duplicates, in which case it
// tells apart the entries of one (key, start).

// WindowChangelogKey is the changelog key of key's window at start with
// sequence number seq.
func WindowChangelogKey(key []byte, start int64, seq uint32) []byte {
	return AppendWindowChangelogKey(make([]byte, 0, len(key)+12), key, start, seq)
}

// AppendWindowChangelogKey appends WindowChangelogKey(key, start, seq) to
// dst: a store logging every write builds them in one buffer.
func AppendWindowChangelogKey(dst, key []byte, start int64, seq uint32) []byte {
	dst = append(dst, key...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(start))
	return binary.BigEndian.AppendUint32(dst, seq)
}

// ParseWindowChangelogKey splits a window changelog key. key aliases b.
func ParseWindowChangelogKey(b []byte) (key []byte, start int64, seq uint32, err error) {
	if len(b) < 12 {
		return nil, 0, 0, fmt.Errorf("%w: window key of %d bytes, want at least 12", ErrCorruptChangelogKey, len(b))
	}
	n := len(b) - 12
	return b[:n:n], int64(binary.BigEndian.Uint64(b[n:])), binary.BigEndian.Uint32(b[n+8:]), nil
}

// SessionChangelogKey is the changelog key of key's session [start, end].
func SessionChangelogKey(key []byte, start, end int64) []byte {
	b := make([]byte, 0, len(key)+16)
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, uint64(end))
	return binary.BigEndian.AppendUint64(b, uint64(start))
}

// ParseSessionChangelogKey splits a session changelog key. key aliases b.
func ParseSessionChangelogKey(b []byte) (key []byte, start, end int64, err error) {
	if len(b) < 16 {
		return nil, 0, 0, fmt.Errorf("%w: session key of %d bytes, want at least 16", ErrCorruptChangelogKey, len(b))
	}
	n := len(b) - 16
	return b[:n:n], int64(binary.BigEndian.Uint64(b[n+8:])), int64(binary.BigEndian.Uint64(b[n:])), nil
}
