// Package serde holds serializers and deserializers ("serdes") as values.
//
// A Serde[T] turns a T into bytes and back. The stream DSL takes serdes at the
// edges of a topology (sources, sinks, repartition topics, state stores); inside
// a task, records travel between processors as typed Go values and are never
// re-encoded.
//
// The fixed-width numeric serdes use big-endian encodings identical to Kafka's
// IntegerSerializer, LongSerializer and DoubleSerializer, so topics written by a
// Kafka Streams application read the same here.
//
// A nil byte slice (a Kafka null, a tombstone) is never passed to a serde by the
// framework: sources map it to "no value" before deserializing.
//
// String, Int32, Int64 and Float64 also serialize by appending to a buffer
// (an Append method, topology.Appender): sinks write every record into one
// buffer they reuse rather than a new slice each.
package serde

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Serde serializes and deserializes values of type T. Implementations must be
// safe for concurrent use and deterministic: equal values give equal bytes
// (stores and repartitioning rely on it for keys).
type Serde[T any] interface {
	Serialize(v T) ([]byte, error)
	Deserialize(data []byte) (T, error)
}

// ErrLength is returned when a fixed-width serde reads input of the wrong size.
var ErrLength = errors.New("serde: wrong input length")

// String encodes strings as their UTF-8 bytes (Kafka's StringSerde).
var String Serde[string] = stringSerde{}

// Bytes passes byte slices through unchanged (Kafka's ByteArraySerde).
var Bytes Serde[[]byte] = bytesSerde{}

// Int32 encodes int32 as 4 big-endian bytes (Kafka's IntegerSerde).
var Int32 Serde[int32] = int32Serde{}

// Int64 encodes int64 as 8 big-endian bytes (Kafka's LongSerde).
var Int64 Serde[int64] = int64Serde{}

// Float64 encodes float64 as its 8-byte IEEE 754 big-endian bits (Kafka's DoubleSerde).
var Float64 Serde[float64] = float64Serde{}

// JSON returns a serde that encodes T with encoding/json. Map keys are sorted by
// encoding/json, so the encoding of a value is deterministic.
func JSON[T any]() Serde[T] { return jsonSerde[T]{} }

// Func builds a serde from two functions.
func Func[T any](ser func(T) ([]byte, error), de func([]byte) (T, error)) Serde[T] {
	return funcSerde[T]{ser: ser, de: de}
}

type stringSerde struct{}

func (stringSerde) Serialize(v string) ([]byte, error)        { return []byte(v), nil }
func (stringSerde) Append(b []byte, v string) ([]byte, error) { return append(b, v...), nil }
func (stringSerde) Deserialize(b []byte) (string, error)      { return string(b), nil }
func (stringSerde) String() string                            { return "String" }

type bytesSerde struct{}

func (bytesSerde) Serialize(v []byte) ([]byte, error)   { return v, nil }
func (bytesSerde) Deserialize(b []byte) ([]byte, error) { return b, nil }
func (bytesSerde) String() string                       { return "Bytes" }

type int32Serde struct{}

func (int32Serde) Serialize(v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(nil, uint32(v)), nil
}

func (int32Serde) Append(b []byte, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(b, uint32(v)), nil
}

func (int32Serde) Deserialize(b []byte) (int32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("%w: int32 needs 4 bytes, got %d", ErrLength, len(b))
	}
	return int32(binary.BigEndian.Uint32(b)), nil
}
func (int32Serde) String() string { return "Int32" }

type int64Serde struct{}

func (int64Serde) Serialize(v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(v)), nil
}

func (int64Serde) Append(b []byte, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(b, uint64(v)), nil
}

func (int64Serde) Deserialize(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: int64 needs 8 bytes, got %d", ErrLength, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
func (int64Serde) String() string { return "Int64" }

type float64Serde struct{}

func (float64Serde) Serialize(v float64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, math.Float64bits(v)), nil
}

func (float64Serde) Append(b []byte, v float64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(b, math.Float64bits(v)), nil
}

func (float64Serde) Deserialize(b []byte) (float64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: float64 needs 8 bytes, got %d", ErrLength, len(b))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}
func (float64Serde) String() string { return "Float64" }

type jsonSerde[T any] struct{}

func (jsonSerde[T]) Serialize(v T) ([]byte, error) { return json.Marshal(v) }

func (jsonSerde[T]) Deserialize(b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("serde: json: %w", err)
	}
	return v, nil
}
func (jsonSerde[T]) String() string { return "JSON" }

type funcSerde[T any] struct {
	ser func(T) ([]byte, error)
	de  func([]byte) (T, error)
}

func (f funcSerde[T]) Serialize(v T) ([]byte, error)   { return f.ser(v) }
func (f funcSerde[T]) Deserialize(b []byte) (T, error) { return f.de(b) }

// Default returns the serde the DSL uses for T when none is given: String,
// Bytes, Int32, Int64 or Float64 for those types, JSON for every other type.
func Default[T any]() Serde[T] {
	var zero T
	var s any
	switch any(zero).(type) {
	case string:
		s = String
	case []byte:
		s = Bytes
	case int32:
		s = Int32
	case int64:
		s = Int64
	case float64:
		s = Float64
	default:
		return JSON[T]()
	}
	return s.(Serde[T])
}
