package stream

import (
	"fmt"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// SessionWindows group a key's records into sessions: runs of records each
// at most Gap after the previous one (Kafka Streams' SessionWindows). A
// record that falls between two sessions merges them.
type SessionWindows struct {
	// Gap is the inactivity gap that ends a session.
	Gap time.Duration
	// Grace is how long records are still admitted into a session after
	// it could no longer grow on time: a session ending at e is closed once
	// stream time passes e + Gap + Grace (Kafka Streams' rule). A record
	// whose session, merged with those it joins, would end before stream
	// time − Gap − Grace is dropped and counted (topology.DropLate).
	Grace time.Duration
}

// Sessions returns session windows with an inactivity gap and a grace period.
func Sessions(gap, grace time.Duration) SessionWindows {
	return SessionWindows{Gap: gap, Grace: grace}
}

// SessionWindowedStream is a grouped stream cut into sessions.
type SessionWindowedStream[K, V any] struct {
	g GroupedStream[K, V]
	w SessionWindows
}

// SessionWindowedBy cuts a grouped stream into sessions.
func SessionWindowedBy[K, V any](g GroupedStream[K, V], w SessionWindows) SessionWindowedStream[K, V] {
	return SessionWindowedStream[K, V]{g: g, w: w}
}

// Count counts the records per key and session.
func (s SessionWindowedStream[K, V]) Count(opts ...Option) Table[Windowed[K], int64] {
	return sessionAggregate(s, countFold[K, V]("KSTREAM-COUNT", ops.sessionCount), func(_ K, a, b int64) int64 { return a + b }, opts)
}

// Reduce combines the values per key and session with f, which also merges
// sessions.
func (s SessionWindowedStream[K, V]) Reduce(f func(agg, v V) V, opts ...Option) Table[Windowed[K], V] {
	return sessionAggregate(s, reduceFold[K](f, s.g.valueSerde(), ops.sessionReduce), func(_ K, a, b V) V { return f(a, b) }, opts)
}

// SessionAggregate folds the values per key and session into an
// aggregate, starting from init(); merge combines the aggregates of two
// sessions a record joins into one. The store is a session store keeping
// sessions for gap + grace (or WithRetention): a session ending that long
// before the latest session end is found by no record, as in Kafka
// Streams, whatever the store's segments still hold.
//
// Each update is forwarded with the key's session. When sessions merge, the
// merged-away ones are forwarded as deletions (tombstones once written to a
// topic) and the merged session as a new value; a record inside an existing
// session updates it in place.
func SessionAggregate[K, V, A any](s SessionWindowedStream[K, V], init func() A, f func(key K, value V, agg A) A, merge func(key K, a, b A) A, opts ...Option) Table[Windowed[K], A] {
	return sessionAggregate(s, aggregateFold(init, f, ops.sessionAggregate), merge, opts)
}

func sessionAggregate[K, V, A any](s SessionWindowedStream[K, V], fd fold[K, V, A], merge func(K, A, A) A, opts []Option) Table[Windowed[K], A] {
	b := s.g.s.b
	o, as := fd.options(b, opts)
	init, f, prefix := fd.init, fd.f, fd.prefix
	in := s.g.input(o)
	ks, _ := serdesOf(b, &options{}, s.g.keySerde(), s.g.valueSerde())
	name := b.name(o, prefix)
	store := b.storeName(o, s.g.name)
	w := s.w
	if w.Gap <= 0 {
		b.errorf("session aggregation %q: inactivity gap must be positive", name)
		w.Gap = time.Millisecond
	}
	retention := max(o.retention, w.Gap+w.Grace)
	topology.AddProcessor(b.tb, name, func() topology.Processor[K, V, Windowed[K], change[A]] {
		return &sessionAgg[K, V, A]{store: store, ks: ks, as: as, init: init, f: f, merge: merge,
			gap: w.Gap.Milliseconds(), grace: w.Grace.Milliseconds(), retention: retention.Milliseconds(), observed: -1}
	}, in.node)
	b.tb.AddStore(topology.StoreSpec{Name: store, Kind: topology.SessionStore, Logging: !o.noLogging, Caching: !o.noCaching,
		Session: state.SessionOptions{Retention: retention, SegmentInterval: o.segment}}, name)
	// A session ending at e can still grow by a record at e + gap, which is
	// admitted while its merged session ends at or after stream time −
	// grace − gap: while stream time is at most e + 2 × gap + grace. (Only a
	// record bridging it to a later session, with a retention longer than
	// the default, can change it after that.)
	closeAfter := (2*w.Gap + w.Grace).Milliseconds() + 1
	return Table[Windowed[K], A]{b: b, node: name, ks: WindowedSerde(ks), vs: as, store: store, sources: in.sources,
		window: &windowInfo{closeAt: func(k any) int64 { return k.(Windowed[K]).End + closeAfter }}}
}

type sessionAgg[K, V, A any] struct {
	store      string
	ks         serde.Serde[K]
	as         serde.Serde[A]
	init       func() A
	f          func(K, V, A, bool) A
	merge      func(K, A, A) A
	gap, grace int64
	retention  int64 // the store's
	observed   int64 // largest timestamp this processor has seen

	s   state.SessionStore
	ctx topology.Context[Windowed[K], change[A]]
}

func (p *sessionAgg[K, V, A]) Init(ctx topology.Context[Windowed[K], change[A]]) error {
	s, ok := ctx.Store(p.store).(state.SessionStore)
	if !ok {
		return fmt.Errorf("stream: store %q is not a session store", p.store)
	}
	p.s, p.ctx = s, ctx
	return nil
}

type session[A any] struct {
	start, end int64
	agg        A
}

func (p *sessionAgg[K, V, A]) Process(r topology.Record[K, V]) error {
	ts := r.Timestamp
	// The latest session end put into the store: a session ending a
	// retention before it has expired. The store drops whole segments, so
	// it may still hold one; Kafka Streams' stores hide it, and so does
	// this, so that what merges does not depend on segment sizes.
	expired := p.observed - p.retention
	p.observed = max(p.observed, ts)
	kb, err := p.ks.Serialize(r.Key)
	if err != nil {
		return err
	}
	var found []session[A]
	it := p.s.FindSessions(kb, max(ts-p.gap, expired+1), ts+p.gap)
	for it.Next() {
		a, _, err := decodeTS(p.as, it.Value())
		if err != nil {
			it.Close()
			return err
		}
		found = append(found, session[A]{it.Start(), it.End(), a})
	}
	if err := it.Close(); err != nil {
		return err
	}
	start, end := ts, ts
	var agg A
	has := p.init != nil
	if has {
		agg = p.init()
	}
	for _, s := range found {
		start, end = min(start, s.start), max(end, s.end)
		if has {
			agg = p.merge(r.Key, agg, s.agg)
		} else {
			agg, has = s.agg, true
		}
	}
	if end < p.observed-p.grace-p.gap { // Kafka Streams' rule
		p.ctx.Drop(topology.DropLate)
		return nil
	}
	var ch change[A]
	for _, s := range found {
		if s.start == start && s.end == end {
			ch.Old, ch.HasOld = s.agg, true // updated in place
			continue
		}
		if err := p.s.Remove(kb, s.start, s.end); err != nil {
			return err
		}
		p.ctx.Forward(topology.Record[Windowed[K], change[A]]{Key: Windowed[K]{Key: r.Key, Start: s.start, End: s.end},
			Value: change[A]{Old: s.agg, HasOld: true}, Timestamp: s.end, Headers: r.Headers})
	}
	ch.New, ch.HasNew = p.f(r.Key, r.Value, agg, !has), true
	vb, err := encodeTS(p.as, ch.New, end)
	if err != nil {
		return err
	}
	if err := p.s.Put(kb, start, end, vb); err != nil {
		return err
	}
	p.ctx.Forward(topology.Record[Windowed[K], change[A]]{Key: Windowed[K]{Key: r.Key, Start: start, End: end},
		Value: ch, Timestamp: end, Headers: r.Headers})
	return nil
}

func (p *sessionAgg[K, V, A]) Close() error { return nil }
