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

// appender is a serde that serializes by appending (as the built-in
// serdes do, see topology.Appender).
type appender[V any] interface {
	Append(b []byte, v V) ([]byte, error)
}

// Append appends v serialized with vs behind its timestamp ts to dst:
// writers that reuse dst encode with no allocation where vs appends.
func Append[V any](dst []byte, vs serde.Serde[V], v V, ts int64) ([]byte, error) {
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	if a, ok := vs.(appender[V]); ok {
		return a.Append(dst, v)
	}
	b, err := vs.Serialize(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

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
