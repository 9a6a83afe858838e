// Package tsvalue is the format of the values in Runnel's DSL stores,
// shared by the DSL that writes them (package stream) and the application's
// interactive queries that read them (package runnel).
//
// Stored values are timestamped, as in Kafka Streams' timestamped stores:
//
//	timestamp (int64, 8 bytes big-endian) | value bytes (the value serde's)
//
// so that a table's updates carry the timestamp of the record that made them,
// also when a record cache forwards them later.
package tsvalue

import (
	"encoding/binary"
	"fmt"

	"github.com/runnel-dev/runnel/stream/serde"
)

// Encode serializes v with vs behind its timestamp ts.
func Encode[V any](vs serde.Serde[V], v V, ts int64) ([]byte, error) {
	b, err := vs.Serialize(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 8, 8+len(b))
	binary.BigEndian.PutUint64(out, uint64(ts))
	return append(out, b...), nil
}

// Decode reads a value and its timestamp written by Encode.
func Decode[V any](vs serde.Serde[V], b []byte) (V, int64, error) {
	var zero V
	if len(b) < 8 {
		return zero, 0, fmt.Errorf("stream: stored value of %d bytes, want at least 8", len(b))
	}
	v, err := vs.Deserialize(b[8:])
	return v, int64(binary.BigEndian.Uint64(b)), err
}
