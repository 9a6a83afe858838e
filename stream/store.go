package stream

import (
	"encoding/binary"
	"fmt"

	"github.com/runnel-dev/runnel/internal/tsvalue"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// encodeTS and decodeTS are the stores' timestamped value format
// (internal/tsvalue).
func encodeTS[V any](vs serde.Serde[V], v V, ts int64) ([]byte, error) {
	return tsvalue.Encode(vs, v, ts)
}

func decodeTS[V any](vs serde.Serde[V], b []byte) (V, int64, error) {
	return tsvalue.Decode(vs, b)
}

// scratch are a processor's buffers for the keys and values it hands to
// its stores, which copy what they are given: reused from record to
// record, they make serializing with the built-in serdes (which append)
// cost no allocation.
type scratch struct{ key, value []byte }

// serializeKey serializes k with ks into the key buffer where ks appends.
// The result is valid until the next call.
func serializeKey[K any](sc *scratch, ks serde.Serde[K], k K) ([]byte, error) {
	a, ok := ks.(topology.Appender[K])
	if !ok {
		return ks.Serialize(k)
	}
	b, err := a.Append(sc.key[:0], k)
	if err != nil {
		return nil, err
	}
	if b == nil {
		b = []byte{} // a key serialized empty is the empty key
	}
	sc.key = b
	return b, nil
}

// encodeValue is encodeTS into the value buffer, valid until the next
// call.
func encodeValue[V any](sc *scratch, vs serde.Serde[V], v V, ts int64) ([]byte, error) {
	b, err := tsvalue.Append(sc.value[:0], vs, v, ts)
	if err != nil {
		return nil, err
	}
	sc.value = b
	return b, nil
}

// kvStore is a typed view of a key-value store holding timestamped values.
type kvStore[K, V any] struct {
	s  state.KeyValueStore
	ks serde.Serde[K]
	vs serde.Serde[V]
	sc *scratch
}

func openKV[K, V any](ctx interface{ Store(string) any }, name string, ks serde.Serde[K], vs serde.Serde[V]) (kvStore[K, V], error) {
	s, ok := ctx.Store(name).(state.KeyValueStore)
	if !ok {
		return kvStore[K, V]{}, fmt.Errorf("stream: store %q is not a connected key-value store", name)
	}
	return kvStore[K, V]{s: s, ks: ks, vs: vs, sc: &scratch{}}, nil
}

func (s kvStore[K, V]) get(k K) (v V, ts int64, ok bool, err error) {
	kb, err := serializeKey(s.sc, s.ks, k)
	if err != nil {
		return v, 0, false, err
	}
	b, err := s.s.Get(kb)
	if err != nil || b == nil {
		return v, 0, false, err
	}
	v, ts, err = decodeTS(s.vs, b)
	return v, ts, err == nil, err
}

func (s kvStore[K, V]) put(k K, v V, ts int64) error {
	kb, err := serializeKey(s.sc, s.ks, k)
	if err != nil {
		return err
	}
	vb, err := encodeValue(s.sc, s.vs, v, ts)
	if err != nil {
		return err
	}
	return s.s.Put(kb, vb)
}

func (s kvStore[K, V]) delete(k K) error {
	kb, err := serializeKey(s.sc, s.ks, k)
	if err != nil {
		return err
	}
	_, err = s.s.Delete(kb)
	return err
}

// change is a table update flowing between table processors: the key's new
// value and its previous one, each possibly absent (Kafka Streams' Change).
type change[V any] struct {
	New, Old       V
	HasNew, HasOld bool
}

func (c change[V]) newPtr() *V {
	if !c.HasNew {
		return nil
	}
	return &c.New
}

func (c change[V]) oldPtr() *V {
	if !c.HasOld {
		return nil
	}
	return &c.Old
}

// tableWriter writes a table's store and forwards its changes downstream:
// at once without a cache, or when the cache flushes with one.
type tableWriter[K, V any] struct {
	kv     kvStore[K, V]
	ctx    topology.Context[K, change[V]]
	cached bool
}

func (w *tableWriter[K, V]) init(ctx topology.Context[K, change[V]], store string, ks serde.Serde[K], vs serde.Serde[V]) error {
	kv, err := openKV(ctx, store, ks, vs)
	if err != nil {
		return err
	}
	w.kv, w.ctx = kv, ctx
	if c, ok := ctx.Store(store).(topology.CachingStore); ok {
		w.cached = true
		c.SetFlushListener(func(kb, nb, ob []byte, _ int64) {
			k, err := ks.Deserialize(kb)
			if err != nil {
				return
			}
			var ch change[V]
			var ts int64
			if nb != nil {
				ch.New, ts, _ = decodeTS(vs, nb)
				ch.HasNew = true
			}
			if ob != nil {
				var ots int64
				ch.Old, ots, _ = decodeTS(vs, ob)
				ch.HasOld = true
				if nb == nil {
					ts = ots
				}
			}
			ctx.Forward(topology.Record[K, change[V]]{Key: k, Value: ch, Timestamp: ts})
		})
	}
	return nil
}

// write sets k to newV (absent: delete) and forwards the change.
func (w *tableWriter[K, V]) write(k K, newV *V, ts int64, h topology.Headers) error {
	old, _, hasOld, err := w.kv.get(k)
	if err != nil {
		return err
	}
	if newV == nil {
		if !hasOld {
			return nil
		}
		err = w.kv.delete(k)
	} else {
		err = w.kv.put(k, *newV, ts)
	}
	if err != nil || w.cached {
		return err
	}
	ch := change[V]{Old: old, HasOld: hasOld}
	if newV != nil {
		ch.New, ch.HasNew = *newV, true
	}
	w.ctx.Forward(topology.Record[K, change[V]]{Key: k, Value: ch, Timestamp: ts, Headers: h})
	return nil
}

// changeSerde encodes a change for repartition topics:
//
//	flags (1 byte: 1 = new present, 2 = old present) | old length (uvarint) | old | new
type changeSerde[V any] struct{ vs serde.Serde[V] }

func (c changeSerde[V]) Serialize(ch change[V]) ([]byte, error) {
	var flags byte
	var ob, nb []byte
	var err error
	if ch.HasNew {
		flags |= 1
		if nb, err = c.vs.Serialize(ch.New); err != nil {
			return nil, err
		}
	}
	if ch.HasOld {
		flags |= 2
		if ob, err = c.vs.Serialize(ch.Old); err != nil {
			return nil, err
		}
	}
	out := []byte{flags}
	out = binary.AppendUvarint(out, uint64(len(ob)))
	out = append(out, ob...)
	return append(out, nb...), nil
}

func (c changeSerde[V]) Deserialize(b []byte) (change[V], error) {
	var ch change[V]
	if len(b) < 1 {
		return ch, fmt.Errorf("stream: empty change")
	}
	flags := b[0]
	n, w := binary.Uvarint(b[1:])
	if w <= 0 || uint64(len(b)-1-w) < n {
		return ch, fmt.Errorf("stream: corrupt change")
	}
	ob, nb := b[1+w:1+w+int(n)], b[1+w+int(n):]
	var err error
	if flags&1 != 0 {
		ch.HasNew = true
		if ch.New, err = c.vs.Deserialize(nb); err != nil {
			return ch, err
		}
	}
	if flags&2 != 0 {
		ch.HasOld = true
		if ch.Old, err = c.vs.Deserialize(ob); err != nil {
			return ch, err
		}
	}
	return ch, nil
}

func kvSpec(name string, o *options) topology.StoreSpec {
	return topology.StoreSpec{Name: name, Kind: topology.KeyValueStore, Logging: !o.noLogging, Caching: !o.noCaching}
}
