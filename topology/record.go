package topology

import "fmt"

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Headers are a record's headers, in order. Processors that change headers
// must copy them first: the slice is shared with every child a record is
// forwarded to.
type Headers []Header

// Get returns the value of the last header named key.
func (h Headers) Get(key string) ([]byte, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Key == key {
			return h[i].Value, true
		}
	}
	return nil, false
}

// Record is what flows between processors: a typed key and value, the
// record's timestamp in milliseconds since the Unix epoch, and its headers.
//
// A Record[any, any] whose Value is nil is a Kafka null (a tombstone once it
// reaches a sink). Typed processors see the zero value of V for it.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp int64
	Headers   Headers
}

// WithValue returns a copy of r carrying v (a convenience for type-changing
// processors, which cannot use struct copying).
func WithValue[K, V, V2 any](r Record[K, V], v V2) Record[K, V2] {
	return Record[K, V2]{Key: r.Key, Value: v, Timestamp: r.Timestamp, Headers: r.Headers}
}

// WithKeyValue returns a copy of r carrying k and v.
func WithKeyValue[K, V, K2, V2 any](r Record[K, V], k K2, v V2) Record[K2, V2] {
	return Record[K2, V2]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers}
}

// RecordMetadata says where the record being processed was read from. It is
// absent during punctuation.
type RecordMetadata struct {
	Topic     string
	Partition int32
	Offset    int64
}

// InputRecord is a record as a task is fed it: bytes read from one partition
// of one source topic.
type InputRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil: a null key
	Value     []byte // nil: a null value (tombstone)
	Timestamp int64  // milliseconds since the Unix epoch
	Headers   Headers
}

// OutputRecord is a record a task produces to a sink topic, changelog or
// repartition topic through its RecordCollector.
type OutputRecord struct {
	Topic string
	// Partition is the target partition, or -1 to let the collector choose by
	// hashing Key (murmur2, like the Java client's default partitioner).
	Partition int32
	Key       []byte
	Value     []byte
	Timestamp int64
	Headers   Headers
}

func (r OutputRecord) String() string {
	return fmt.Sprintf("%s[%d] %q=%q @%d", r.Topic, r.Partition, r.Key, r.Value, r.Timestamp)
}

// RecordCollector receives a task's output. The runtime supplies one that
// produces to the broker (transactionally under exactly-once); the test driver
// supplies one that appends to in-memory topics. Send is called from the
// goroutine driving the task.
//
// The record's Key and Value are valid only during Send: sinks serialize
// into buffers they reuse for the next record, and stores hand over their
// own memory. A collector that keeps them copies them.
type RecordCollector interface {
	Send(r OutputRecord) error
}

// RecordCollectorFunc adapts a function to RecordCollector.
type RecordCollectorFunc func(OutputRecord) error

// Send calls f(r).
func (f RecordCollectorFunc) Send(r OutputRecord) error { return f(r) }

// Serde is what topology needs of a serde; every serde in package
// stream/serde satisfies it. Serializers are never given a null: nil bytes map
// to a null value and back without calling them.
type Serde[T any] interface {
	Serialize(v T) ([]byte, error)
	Deserialize(data []byte) (T, error)
}

// Appender is a Serde that can also serialize by appending to a buffer it
// is given. A sink whose serde has it serializes every record into one
// buffer of its own, where Serialize makes a slice per record. Append
// must append exactly what Serialize returns.
type Appender[T any] interface {
	Append(b []byte, v T) ([]byte, error)
}
