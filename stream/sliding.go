package stream

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// SlidingWindows are windows of a fixed size defined by the records'
// timestamps rather than by the epoch (Kafka Streams' SlidingWindows): two
// records fall in a common window when they are at most Size apart. The
// windows aggregated are, for each record at t, [t-Size, t] (ending at the
// record) and [t+1, t+1+Size] (starting right after it) when that one holds
// records: every distinct set of records some window of the size covers.
// Both ends are inclusive. As in Kafka Streams, no window starts before 0:
// a record earlier than Size falls in [0, Size] instead.
type SlidingWindows struct {
	// Size is the largest time difference of two records in one window
	// (Kafka Streams' timeDifference).
	Size time.Duration
	// Grace is how long after a window ends records are still admitted into
	// it; a record all of whose windows closed is dropped and counted
	// (topology.DropLate).
	Grace time.Duration
}

// Sliding returns sliding windows of size with a grace period.
func Sliding(size, grace time.Duration) SlidingWindows {
	return SlidingWindows{Size: size, Grace: grace}
}

// SlidingWindowedStream is a grouped stream cut into sliding windows.
type SlidingWindowedStream[K, V any] struct {
	g GroupedStream[K, V]
	w SlidingWindows
}

// SlidingWindowedBy cuts a grouped stream into sliding windows.
func SlidingWindowedBy[K, V any](g GroupedStream[K, V], w SlidingWindows) SlidingWindowedStream[K, V] {
	return SlidingWindowedStream[K, V]{g: g, w: w}
}

// Count counts the records per key and window.
func (s SlidingWindowedStream[K, V]) Count(opts ...Option) Table[Windowed[K], int64] {
	return slidingAggregate(s, countFold[K, V]("KSTREAM-COUNT", ops.slidingCount), opts)
}

// Reduce combines the values per key and window with f.
func (s SlidingWindowedStream[K, V]) Reduce(f func(agg, v V) V, opts ...Option) Table[Windowed[K], V] {
	return slidingAggregate(s, reduceFold[K](f, s.g.valueSerde(), ops.slidingReduce), opts)
}

// SlidingAggregate folds the values per key and sliding window into an
// aggregate, starting from init().
//
// A record updates the windows that exist and hold it, and creates the
// windows it makes appear, computing those from the key's records, which a
// second window store ("<store>-records", retaining 2 × size + grace) keeps:
// windows that already exist are folded in arrival order, new ones in
// timestamp order. Each update is forwarded with its window, timestamped
// with the window's latest record.
func SlidingAggregate[K, V, A any](s SlidingWindowedStream[K, V], init func() A, f func(key K, value V, agg A) A, opts ...Option) Table[Windowed[K], A] {
	return slidingAggregate(s, aggregateFold(init, f, ops.slidingAggregate), opts)
}

func slidingAggregate[K, V, A any](s SlidingWindowedStream[K, V], fd fold[K, V, A], opts []Option) Table[Windowed[K], A] {
	b := s.g.s.b
	o, as := fd.options(b, opts)
	init, f, prefix := fd.init, fd.f, fd.prefix
	in := s.g.input(o)
	ks, vs := serdesOf(b, &options{}, s.g.keySerde(), s.g.valueSerde())
	name := b.name(o, prefix)
	store := b.storeName(o, s.g.name)
	records := store + "-records"
	w := s.w
	if w.Size <= 0 {
		b.errorf("sliding aggregation %q: window size must be positive", name)
		w.Size = time.Millisecond
	}
	size, grace := w.Size.Milliseconds(), w.Grace.Milliseconds()
	topology.AddProcessor(b.tb, name, func() topology.Processor[K, V, Windowed[K], change[A]] {
		return &slidingAgg[K, V, A]{store: store, records: records, ks: ks, vs: vs, as: as, init: init, f: f,
			size: size, grace: grace, observed: -1}
	}, in.node)
	b.tb.AddStore(topology.StoreSpec{Name: store, Kind: topology.WindowStore, Logging: !o.noLogging, Caching: !o.noCaching,
		Window: state.WindowOptions{Retention: max(o.retention, w.Size+w.Grace+time.Millisecond), SegmentInterval: o.segment}}, name)
	b.tb.AddStore(topology.StoreSpec{Name: records, Kind: topology.WindowStore, Logging: !o.noLogging,
		Window: state.WindowOptions{Retention: 2*w.Size + w.Grace + 2*time.Millisecond, SegmentInterval: o.segment, RetainDuplicates: true}}, name)
	return Table[Windowed[K], A]{b: b, node: name, ks: WindowedSerde(ks), vs: as, store: store, sources: in.sources,
		window: &windowInfo{closeAt: func(k any) int64 { return k.(Windowed[K]).End + grace + 1 }}}
}

type slidingAgg[K, V, A any] struct {
	store, records string
	ks             serde.Serde[K]
	vs             serde.Serde[V]
	as             serde.Serde[A]
	init           func() A
	f              func(K, V, A, bool) A
	size, grace    int64
	observed       int64 // largest timestamp this processor has seen

	s, recs state.WindowStore
	ctx     topology.Context[Windowed[K], change[A]]
	cached  bool
}

func (p *slidingAgg[K, V, A]) Init(ctx topology.Context[Windowed[K], change[A]]) error {
	var ok bool
	if p.s, ok = ctx.Store(p.store).(state.WindowStore); !ok {
		return fmt.Errorf("stream: store %q is not a window store", p.store)
	}
	if p.recs, ok = ctx.Store(p.records).(state.WindowStore); !ok {
		return fmt.Errorf("stream: store %q is not a window store", p.records)
	}
	p.ctx = ctx
	if c, ok := ctx.Store(p.store).(topology.CachingStore); ok {
		p.cached = true
		c.SetFlushListener(windowFlushListener(ctx, p.ks, p.as, p.size))
	}
	return nil
}

// windowFlushListener forwards the updates a window store's cache flushes,
// for windows of size ms.
func windowFlushListener[K, A any](ctx topology.Context[Windowed[K], change[A]], ks serde.Serde[K], as serde.Serde[A], size int64) topology.FlushListener {
	return func(ck, nb, ob []byte, _ int64) {
		kb, start, _, err := state.ParseWindowChangelogKey(ck)
		if err != nil {
			return
		}
		k, err := ks.Deserialize(kb)
		if err != nil {
			return
		}
		var ch change[A]
		var ts int64
		if nb != nil {
			ch.New, ts, _ = decodeTS(as, nb)
			ch.HasNew = true
		}
		if ob != nil {
			var ots int64
			ch.Old, ots, _ = decodeTS(as, ob)
			ch.HasOld = true
			if nb == nil {
				ts = ots
			}
		}
		ctx.Forward(topology.Record[Windowed[K], change[A]]{Key: Windowed[K]{Key: k, Start: start, End: start + size}, Value: ch, Timestamp: ts})
	}
}

type rawRecord[V any] struct {
	ts int64
	v  V
}

func (p *slidingAgg[K, V, A]) Process(r topology.Record[K, V]) error {
	t := r.Timestamp
	p.observed = max(p.observed, t)
	// Windows include their end: one ending before closeTime is closed.
	closeTime := p.observed - p.grace
	if t+p.size < closeTime {
		p.ctx.Drop(topology.DropLate)
		return nil
	}
	kb, err := p.ks.Serialize(r.Key)
	if err != nil {
		return err
	}
	vb, err := p.vs.Serialize(r.Value)
	if err != nil {
		return err
	}
	if err := p.recs.Put(kb, t, vb); err != nil {
		return err
	}
	// The key's records that can share a window with t, in timestamp order.
	var recs []rawRecord[V]
	it := p.recs.FetchRange(kb, t-p.size-1, t+p.size+1)
	for it.Next() {
		v, err := p.vs.Deserialize(it.Value())
		if err != nil {
			it.Close()
			return err
		}
		recs = append(recs, rawRecord[V]{it.Start(), v})
	}
	if err := it.Close(); err != nil {
		return err
	}
	// Windows holding t that exist: fold the record in.
	type agg struct {
		a  A
		ts int64
	}
	existing := map[int64]agg{}
	wit := p.s.FetchRange(kb, t-p.size, t)
	for wit.Next() {
		a, ts, err := decodeTS(p.as, wit.Value())
		if err != nil {
			wit.Close()
			return err
		}
		existing[wit.Start()] = agg{a, ts}
	}
	if err := wit.Close(); err != nil {
		return err
	}
	for _, start := range slices.Sorted(maps.Keys(existing)) {
		if start+p.size < closeTime {
			continue
		}
		old := existing[start]
		n := p.f(r.Key, r.Value, old.a, false)
		if err := p.put(r, kb, start, &old.a, n, max(old.ts, t)); err != nil {
			return err
		}
	}
	// Windows t makes appear: the one ending at t, those starting right
	// after earlier records that now hold t, and the one starting right
	// after t if later records arrived first.
	created := map[int64]bool{}
	create := func(start int64) error {
		if _, ok := existing[start]; ok || created[start] || start+p.size < closeTime {
			return nil
		}
		created[start] = true
		var a A
		first, latest := true, int64(-1)
		if p.init != nil {
			a, first = p.init(), false
		}
		for _, rec := range recs {
			if rec.ts >= start && rec.ts <= start+p.size {
				a, first, latest = p.f(r.Key, rec.v, a, first), false, rec.ts
			}
		}
		if latest < 0 {
			return nil
		}
		return p.put(r, kb, start, nil, a, latest)
	}
	// No window starts before 0 (Kafka Streams): a record earlier than size
	// falls in [0, size], which holds every early record.
	if err := create(max(0, t-p.size)); err != nil {
		return err
	}
	for _, rec := range recs {
		if rec.ts >= t-p.size-1 && rec.ts < t {
			if err := create(rec.ts + 1); err != nil {
				return err
			}
		}
	}
	for _, rec := range recs {
		if rec.ts > t && rec.ts <= t+1+p.size {
			if b, err := p.s.Fetch(kb, t+1); err != nil || b != nil {
				return err
			}
			return create(t + 1)
		}
	}
	return nil
}

// put stores a window's new aggregate and forwards the change, unless a
// cache will.
func (p *slidingAgg[K, V, A]) put(r topology.Record[K, V], kb []byte, start int64, old *A, n A, ts int64) error {
	nb, err := encodeTS(p.as, n, ts)
	if err != nil {
		return err
	}
	if err := p.s.Put(kb, start, nb); err != nil {
		return err
	}
	if p.cached {
		return nil
	}
	ch := change[A]{New: n, HasNew: true}
	if old != nil {
		ch.Old, ch.HasOld = *old, true
	}
	p.ctx.Forward(topology.Record[Windowed[K], change[A]]{Key: Windowed[K]{Key: r.Key, Start: start, End: start + p.size},
		Value: ch, Timestamp: ts, Headers: r.Headers})
	return nil
}

func (p *slidingAgg[K, V, A]) Close() error { return nil }
