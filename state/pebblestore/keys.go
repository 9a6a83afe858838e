package pebblestore

import (
	"encoding/binary"
	"fmt"
)

// Key-space tags; see the package doc for the layout they make.
const (
	tagTask     = 0x01 // task prefix: tagTask | esc(task id)
	tagStore    = 0x01 // after a task prefix: a store's data
	tagMeta     = 0x02 // after a task prefix: a store's observed time and seq
	tagPosition = 0x03 // after a task prefix: a changelog position
)

// Store kinds, the last byte of a store prefix, so that a key-value and a
// window store of the same name do not share keys.
const (
	kindKeyValue = 'k'
	kindWindow   = 'w'
	kindSession  = 's'
)

// appendEscaped appends b escaped so that the result sorts like b, is never
// a prefix of another escaped string, and can be followed by more
// components: 0x00 becomes 0x00 0xff, and the end is 0x00 0x01.
func appendEscaped(dst, b []byte) []byte {
	for _, c := range b {
		if c == 0 {
			dst = append(dst, 0, 0xff)
		} else {
			dst = append(dst, c)
		}
	}
	return append(dst, 0, 1)
}

// readEscaped decodes an escaped string at the start of b into dst and
// returns it with the rest of b.
func readEscaped(dst, b []byte) ([]byte, []byte, error) {
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			dst = append(dst, b[i])
			continue
		}
		if i+1 == len(b) {
			break
		}
		switch b[i+1] {
		case 0xff:
			dst = append(dst, 0)
			i++
		case 1:
			return dst, b[i+2:], nil
		default:
			return dst, nil, fmt.Errorf("pebblestore: bad escape 0x00 0x%02x in stored key", b[i+1])
		}
	}
	return dst, nil, fmt.Errorf("pebblestore: unterminated key component")
}

// appendTime appends t as 8 big-endian bytes with the sign bit flipped, so
// that byte order is numeric order also for negative times.
func appendTime(dst []byte, t int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t)^(1<<63))
}

func readTime(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

// prefixEnd returns the first key after every key starting with p, or nil
// if there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// taskPrefix is the prefix of everything a task keeps.
func taskPrefix(task string) []byte {
	return appendEscaped([]byte{tagTask}, []byte(task))
}

// storePrefix is the prefix of a store's data.
func storePrefix(task, store string, kind byte) []byte {
	p := append(taskPrefix(task), tagStore)
	return append(appendEscaped(p, []byte(store)), kind)
}

// metaKey is where a store keeps its observed stream time and seq.
func metaKey(task, store string, kind byte) []byte {
	p := append(taskPrefix(task), tagMeta)
	return append(appendEscaped(p, []byte(store)), kind)
}

// positionKey is where a task keeps its position in a changelog partition.
func positionKey(task, topicPartition string) []byte {
	return append(append(taskPrefix(task), tagPosition), topicPartition...)
}
