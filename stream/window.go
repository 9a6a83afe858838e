package stream

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// Windowed is a key within a window, times in milliseconds: [Start, End)
// for time windows (tumbling, hopping), [Start, End] for sliding windows,
// and for session windows the session's first and last record times
// [Start, End], as in Kafka Streams.
type Windowed[K any] struct {
	Key        K
	Start, End int64
}

func (w Windowed[K]) String() string { return fmt.Sprintf("%v@[%d,%d)", w.Key, w.Start, w.End) }

// WindowedSerde encodes a windowed key as the inner key's bytes followed by
// start and end (each int64, 8 bytes big-endian).
func WindowedSerde[K any](inner serde.Serde[K]) serde.Serde[Windowed[K]] {
	return serde.Func(func(w Windowed[K]) ([]byte, error) {
		b, err := inner.Serialize(w.Key)
		if err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint64(b, uint64(w.Start))
		return binary.BigEndian.AppendUint64(b, uint64(w.End)), nil
	}, func(b []byte) (Windowed[K], error) {
		var w Windowed[K]
		if len(b) < 16 {
			return w, fmt.Errorf("stream: windowed key of %d bytes", len(b))
		}
		n := len(b) - 16
		k, err := inner.Deserialize(b[:n])
		w.Key, w.Start, w.End = k, int64(binary.BigEndian.Uint64(b[n:])), int64(binary.BigEndian.Uint64(b[n+8:]))
		return w, err
	})
}

// TimeWindows are fixed-size windows: tumbling when they advance by their
// size, hopping when by less (Kafka Streams' TimeWindows). Windows start at
// multiples of the advance since the epoch.
type TimeWindows struct {
	Size    time.Duration
	Advance time.Duration // default Size: tumbling
	// Grace is how long after a window ends records are still admitted into
	// it; later ones are dropped and counted (topology.DropLate).
	Grace time.Duration
}

// Tumbling returns tumbling windows of size with a grace period.
func Tumbling(size, grace time.Duration) TimeWindows { return TimeWindows{Size: size, Grace: grace} }

// Hopping returns windows of size starting every advance, with a grace period.
func Hopping(size, advance, grace time.Duration) TimeWindows {
	return TimeWindows{Size: size, Advance: advance, Grace: grace}
}

func (w TimeWindows) advance() int64 {
	if w.Advance <= 0 {
		return w.Size.Milliseconds()
	}
	return w.Advance.Milliseconds()
}

// starts appends to dst the starts of the windows holding ts, oldest
// first. The caller passes the last result back ([:0]): a hopping window
// costs no allocation per record.
func (w TimeWindows) starts(dst []int64, ts int64) []int64 {
	size, adv := w.Size.Milliseconds(), w.advance()
	first := max(ts-size+adv, 0) / adv * adv
	if ts-size+adv < 0 {
		first = 0
	}
	out := dst
	for s := first; s <= ts; s += adv {
		if s+size > ts {
			out = append(out, s)
		}
	}
	return out
}

// windowInfo tells Suppress when a windowed table's window closes.
type windowInfo struct {
	// closeAt is the stream time at which the window of a key (a
	// Windowed[K]) is final: no record can change it any more.
	closeAt func(key any) int64
}

// TimeWindowedStream is a grouped stream cut into time windows.
type TimeWindowedStream[K, V any] struct {
	g GroupedStream[K, V]
	w TimeWindows
}

// WindowedBy cuts a grouped stream into time windows. (It is a function, not
// a method, because windowed results have the key type Windowed[K], and Go
// forbids the method sets of generic types from growing type arguments.)
func WindowedBy[K, V any](g GroupedStream[K, V], w TimeWindows) TimeWindowedStream[K, V] {
	return TimeWindowedStream[K, V]{g: g, w: w}
}

// Count counts the records per key and window.
func (t TimeWindowedStream[K, V]) Count(opts ...Option) Table[Windowed[K], int64] {
	return windowedAggregate(t, countFold[K, V]("KSTREAM-AGGREGATE", ops.windowCount), opts)
}

// Reduce combines the values per key and window with f.
func (t TimeWindowedStream[K, V]) Reduce(f func(agg, v V) V, opts ...Option) Table[Windowed[K], V] {
	return windowedAggregate(t, reduceFold[K](f, t.g.valueSerde(), ops.windowReduce), opts)
}

// WindowedAggregate folds the values per key and window into an aggregate.
// The store is a window store retaining windows for size + grace (or
// WithRetention). Each update is forwarded with the key's window; records
// too late for a window are dropped and counted per window, as Kafka
// Streams does.
func WindowedAggregate[K, V, A any](t TimeWindowedStream[K, V], init func() A, f func(key K, value V, agg A) A, opts ...Option) Table[Windowed[K], A] {
	return windowedAggregate(t, aggregateFold(init, f, ops.windowAggregate), opts)
}

func windowedAggregate[K, V, A any](t TimeWindowedStream[K, V], fd fold[K, V, A], opts []Option) Table[Windowed[K], A] {
	b := t.g.s.b
	o, as := fd.options(b, opts)
	init, f, prefix := fd.init, fd.f, fd.prefix
	in := t.g.input(o)
	ks, _ := serdesOf(b, &options{}, t.g.keySerde(), t.g.valueSerde())
	name := b.name(o, prefix)
	store := b.storeName(o, t.g.name)
	w := t.w
	if w.Size <= 0 {
		b.errorf("windowed aggregation %q: window size must be positive", name)
		w.Size = time.Millisecond
	}
	retention := max(o.retention, w.Size+w.Grace)
	topology.AddProcessor(b.tb, name, func() topology.Processor[K, V, Windowed[K], change[A]] {
		return &windowAgg[K, V, A]{store: store, ks: ks, as: as, init: init, f: f, w: w, observed: -1}
	}, in.node)
	b.tb.AddStore(topology.StoreSpec{Name: store, Kind: topology.WindowStore, Logging: !o.noLogging, Caching: !o.noCaching,
		Window: state.WindowOptions{Retention: retention, SegmentInterval: o.segment}}, name)
	size := w.Size.Milliseconds()
	return Table[Windowed[K], A]{b: b, node: name, ks: WindowedSerde(ks), vs: as, store: store, sources: in.sources,
		window: &windowInfo{closeAt: func(k any) int64 { return k.(Windowed[K]).Start + size + w.Grace.Milliseconds() }}}
}

type windowAgg[K, V, A any] struct {
	store    string
	ks       serde.Serde[K]
	as       serde.Serde[A]
	init     func() A
	f        func(K, V, A, bool) A
	w        TimeWindows
	observed int64   // largest timestamp this processor has seen
	starts   []int64 // the starts of the record's windows, reused
	sc       scratch

	s      state.WindowStore
	ctx    topology.Context[Windowed[K], change[A]]
	cached bool
	// af, when A holds no pointers, fetches windows into old: nothing
	// decoded from it can outlive the next record's fetch into the same
	// buffer.
	af  state.WindowAppendFetcher
	old []byte
}

func (p *windowAgg[K, V, A]) Init(ctx topology.Context[Windowed[K], change[A]]) error {
	s, ok := ctx.Store(p.store).(state.WindowStore)
	if !ok {
		return fmt.Errorf("stream: store %q is not a window store", p.store)
	}
	p.s, p.ctx = s, ctx
	if af, ok := s.(state.WindowAppendFetcher); ok && !hasPointers(reflect.TypeFor[A]()) {
		p.af = af
	}
	size := p.w.Size.Milliseconds()
	if c, ok := ctx.Store(p.store).(topology.CachingStore); ok {
		p.cached = true
		c.SetFlushListener(windowFlushListener(ctx, p.ks, p.as, size))
	}
	return nil
}

func (p *windowAgg[K, V, A]) Process(r topology.Record[K, V]) error {
	p.observed = max(p.observed, r.Timestamp)
	size, grace := p.w.Size.Milliseconds(), p.w.Grace.Milliseconds()
	closeBefore := p.observed - grace // windows ending at or before this are closed
	kb, err := serializeKey(&p.sc, p.ks, r.Key)
	if err != nil {
		return err
	}
	p.starts = p.w.starts(p.starts[:0], r.Timestamp)
	for _, start := range p.starts {
		end := start + size
		if end <= closeBefore {
			p.ctx.Drop(topology.DropLate)
			continue
		}
		ob, err := p.fetch(kb, start)
		if err != nil {
			return err
		}
		var ch change[A]
		ts := r.Timestamp
		if ob != nil {
			var ots int64
			if ch.Old, ots, err = decodeTS(p.as, ob); err != nil {
				return err
			}
			ch.HasOld = true
			ts = max(ts, ots)
		} else if p.init != nil {
			ch.Old = p.init()
		}
		ch.New, ch.HasNew = p.f(r.Key, r.Value, ch.Old, ob == nil), true
		nb, err := encodeValue(&p.sc, p.as, ch.New, ts)
		if err != nil {
			return err
		}
		if err := p.s.Put(kb, start, nb); err != nil {
			return err
		}
		if !p.cached {
			if !ch.HasOld {
				var zero A
				ch.Old = zero
			}
			p.ctx.Forward(topology.Record[Windowed[K], change[A]]{Key: Windowed[K]{Key: r.Key, Start: start, End: end}, Value: ch, Timestamp: ts, Headers: r.Headers})
		}
	}
	return nil
}

// fetch returns the value of kb's window at start, or nil.
func (p *windowAgg[K, V, A]) fetch(kb []byte, start int64) ([]byte, error) {
	if p.af == nil {
		return p.s.Fetch(kb, start)
	}
	out, ok, err := p.af.AppendFetch(p.old[:0], kb, start)
	if !ok || err != nil {
		return nil, err
	}
	p.old = out
	return out, nil
}

// hasPointers reports whether a value of type t can refer to memory
// outside itself, such as the bytes it was decoded from.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	}
	return true
}

func (p *windowAgg[K, V, A]) Close() error { return nil }
