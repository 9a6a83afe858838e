package streamtest

import (
	"encoding/binary"
	"fmt"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// InputTopic pipes typed records into a source topic.
type InputTopic[K, V any] struct {
	d     *Driver
	topic string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// Input returns a typed input for topic.
func Input[K, V any](d *Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, ks: ks, vs: vs}
}

// Pipe serializes and pipes one record.
func (in *InputTopic[K, V]) Pipe(k K, v V, ts int64, headers ...topology.Header) error {
	kb, err := in.ks.Serialize(k)
	if err != nil {
		return err
	}
	vb, err := in.vs.Serialize(v)
	if err != nil {
		return err
	}
	return in.d.Pipe(in.topic, kb, vb, ts, headers...)
}

// Delete pipes a tombstone for k.
func (in *InputTopic[K, V]) Delete(k K, ts int64) error {
	kb, err := in.ks.Serialize(k)
	if err != nil {
		return err
	}
	return in.d.Pipe(in.topic, kb, nil, ts)
}

// TypedRecord is a deserialized output record; Tombstone is set for a null value.
type TypedRecord[K, V any] struct {
	Key       K
	Value     V
	Tombstone bool
	Timestamp int64
}

func (r TypedRecord[K, V]) String() string {
	if r.Tombstone {
		return fmt.Sprintf("%v=<tombstone>@%d", r.Key, r.Timestamp)
	}
	return fmt.Sprintf("%v=%v@%d", r.Key, r.Value, r.Timestamp)
}

// Output deserializes the records written to topic so far.
func Output[K, V any](d *Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) ([]TypedRecord[K, V], error) {
	var out []TypedRecord[K, V]
	for _, r := range d.Output(topic) {
		var tr TypedRecord[K, V]
		var err error
		if tr.Key, err = ks.Deserialize(r.Key); err != nil {
			return nil, err
		}
		if r.Value == nil {
			tr.Tombstone = true
		} else if tr.Value, err = vs.Deserialize(r.Value); err != nil {
			return nil, err
		}
		tr.Timestamp = r.Timestamp
		out = append(out, tr)
	}
	return out, nil
}

// Latest returns the last value per key written to topic (tombstones delete).
func Latest[K comparable, V any](d *Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) (map[K]V, error) {
	rs, err := Output(d, topic, ks, vs)
	if err != nil {
		return nil, err
	}
	m := map[K]V{}
	for _, r := range rs {
		if r.Tombstone {
			delete(m, r.Key)
		} else {
			m[r.Key] = r.Value
		}
	}
	return m, nil
}

// The DSL's stores hold timestamped values: timestamp (8 bytes) | value.
func decodeStored[V any](vs serde.Serde[V], b []byte) (V, int64, error) {
	var zero V
	if len(b) < 8 {
		return zero, 0, fmt.Errorf("streamtest: stored value of %d bytes", len(b))
	}
	v, err := vs.Deserialize(b[8:])
	return v, int64(binary.BigEndian.Uint64(b)), err
}

// KeyValues returns the contents of a DSL key-value store, across all tasks.
func KeyValues[K comparable, V any](d *Driver, store string, ks serde.Serde[K], vs serde.Serde[V]) (map[K]V, error) {
	m := map[K]V{}
	for _, s := range d.Stores(store) {
		kv, ok := s.(state.KeyValueStore)
		if !ok {
			return nil, fmt.Errorf("streamtest: %q is not a key-value store", store)
		}
		it := kv.All()
		for it.Next() {
			k, err := ks.Deserialize(it.Key())
			if err != nil {
				it.Close()
				return nil, err
			}
			v, _, err := decodeStored(vs, it.Value())
			if err != nil {
				it.Close()
				return nil, err
			}
			m[k] = v
		}
		if err := it.Close(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// WindowKey is a key and window start, as window stores hold them.
type WindowKey[K any] struct {
	Key   K
	Start int64
}

// Windows returns the contents of a DSL window store, across all tasks.
func Windows[K comparable, V any](d *Driver, store string, ks serde.Serde[K], vs serde.Serde[V]) (map[WindowKey[K]]V, error) {
	m := map[WindowKey[K]]V{}
	for _, s := range d.Stores(store) {
		ws, ok := s.(state.WindowStore)
		if !ok {
			return nil, fmt.Errorf("streamtest: %q is not a window store", store)
		}
		it := ws.All()
		for it.Next() {
			k, err := ks.Deserialize(it.Key())
			if err != nil {
				it.Close()
				return nil, err
			}
			v, _, err := decodeStored(vs, it.Value())
			if err != nil {
				it.Close()
				return nil, err
			}
			m[WindowKey[K]{k, it.Start()}] = v
		}
		if err := it.Close(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SessionKey is a key and session, as session stores hold them.
type SessionKey[K any] struct {
	Key        K
	Start, End int64
}

// Sessions returns the contents of a DSL session store, across all tasks.
func Sessions[K comparable, V any](d *Driver, store string, ks serde.Serde[K], vs serde.Serde[V]) (map[SessionKey[K]]V, error) {
	m := map[SessionKey[K]]V{}
	for _, s := range d.Stores(store) {
		ss, ok := s.(state.SessionStore)
		if !ok {
			return nil, fmt.Errorf("streamtest: %q is not a session store", store)
		}
		it := ss.FetchRange(nil, nil)
		for it.Next() {
			k, err := ks.Deserialize(it.Key())
			if err != nil {
				it.Close()
				return nil, err
			}
			v, _, err := decodeStored(vs, it.Value())
			if err != nil {
				it.Close()
				return nil, err
			}
			m[SessionKey[K]{k, it.Start(), it.End()}] = v
		}
		if err := it.Close(); err != nil {
			return nil, err
		}
	}
	return m, nil
}
