package stream

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// Suppression says how long Suppress holds back a table's updates.
type Suppression struct {
	windowCloses bool
	limit        time.Duration
	wallIdle     time.Duration // > 0: windows also close by wall clock
}

// UntilWindowCloses holds each window's updates until the window closes and
// then emits its final result, exactly once. Only for tables of windowed
// aggregations. A time window closes when stream time reaches its end plus
// grace; a sliding window when stream time passes its end plus grace; a
// session when stream time passes its end plus twice the gap plus grace,
// the last time a record can extend it (see SessionWindows.Grace). With
// the default retention a closed session has left the store; retained
// longer (WithRetention), it can still be merged, as in Kafka Streams, by
// a late record bridging it to a live session: the merged session has a
// result of its own.
func UntilWindowCloses() Suppression { return Suppression{windowCloses: true} }

// WallClockClose makes an UntilWindowCloses suppression also close windows
// by wall-clock time, so that the last windows' final results come out when
// input stops (stream time only moves with records, so without it they wait
// for the next record). Default off, as in Kafka Streams, which has no such
// setting.
//
// Once the suppression has received no update for idle of wall-clock time,
// it takes wall-clock time minus idle as a lower bound on stream time: a
// wall-clock punctuation (every idle, at most every second) emits the final
// results of the windows whose end plus grace is at or before now − idle.
// An update that arrives later for a window that may have been closed that
// way (its end plus grace at or before the bound of the last such
// punctuation that emitted something) is dropped as late (DropLate), so
// every window still emits one final result; the bound is kept in the
// suppression's store, so a restarted task keeps to it.
//
// Choose idle larger than how far record timestamps may lag behind the wall
// clock, and larger than the commit interval when a record cache holds
// updates back (the cache forwards them on commit): while updates keep
// coming, nothing closes by wall clock, and a record that lags more than
// idle after a pause is late. The runtime advances wall-clock time on every
// turn of its loop, which polls no longer than the commit interval.
func (s Suppression) WallClockClose(idle time.Duration) Suppression {
	s.wallIdle = idle
	return s
}

// UntilTimeLimit holds each key's updates for d of stream time after the
// first one and then emits the latest (rate limiting).
func UntilTimeLimit(d time.Duration) Suppression { return Suppression{limit: d} }

// Suppress holds back the table's updates as s says (Kafka Streams'
// KTable.suppress). The buffer is a key-value store (named by Materialized,
// else "<name>-store") whose changelog lets a restarted task resume it.
// Stream time, for suppression, is the largest timestamp of the updates the
// suppression has seen. Options: Named, Materialized, WithoutLogging.
func (t Table[K, V]) Suppress(s Suppression, opts ...Option) Table[K, V] {
	b := t.b
	o := b.collect(ops.suppress, opts)
	name := b.name(o, "KTABLE-SUPPRESS")
	store := o.storeName
	if store == "" {
		store = name + "-store"
	}
	if s.windowCloses && t.window == nil {
		b.errorf("suppress %q: UntilWindowCloses needs a windowed table", name)
		return t
	}
	if s.wallIdle < 0 || (s.wallIdle > 0 && !s.windowCloses) {
		b.errorf("suppress %q: WallClockClose needs UntilWindowCloses and a positive idle time", name)
		return t
	}
	ks, vs, win := t.ks, t.vs, t.window
	if ks == nil {
		ks = serde.Default[K]()
	}
	topology.AddProcessor(b.tb, name, func() topology.Processor[K, change[V], K, change[V]] {
		return &suppressor[K, V]{store: store, ks: ks, cs: changeSerde[V]{vs}, s: s, win: win, observed: -1, closedTo: math.MinInt64}
	}, t.node)
	spec := kvSpec(store, o)
	spec.Caching = false
	b.tb.AddStore(spec, name)
	t.node, t.store, t.getter = name, "", nil
	return t
}

// The buffer's keys are emit time (int64, 8 bytes big-endian) | key bytes, so
// a scan from the start finds what is due first; values are timestamped
// changes. index maps key bytes to emit time; it is rebuilt from the store on
// Init. With WallClockClose, the empty key (which sorts first, and which no
// buffered entry has) holds closedTo, 8 bytes big-endian.
type suppressor[K, V any] struct {
	store    string
	ks       serde.Serde[K]
	cs       changeSerde[V]
	s        Suppression
	win      *windowInfo
	observed int64
	// closedTo is the wall-clock bound (now − idle) of the last wall-clock
	// punctuation that emitted a window: updates of windows closing at or
	// before it are late. Invariant: every buffered entry's emit time is
	// above it.
	closedTo   int64
	lastUpdate int64 // wall-clock time of the last update received

	buf   state.KeyValueStore
	index map[string]int64
	// minAt is a lower bound on the buffered entries' emit times (exact
	// after an evict or Init): evict scans only when something may be due,
	// and from there. A scan from the buffer's start would pass, in a
	// Pebble store, the tombstones of every entry emitted since the last
	// compaction, once per update.
	minAt int64
	ctx   topology.Context[K, change[V]]
}

func bufKey(at int64, kb []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(kb)), uint64(at)), kb...)
}

func (p *suppressor[K, V]) Init(ctx topology.Context[K, change[V]]) error {
	buf, ok := ctx.Store(p.store).(state.KeyValueStore)
	if !ok {
		return fmt.Errorf("stream: store %q is not a key-value store", p.store)
	}
	p.buf, p.ctx, p.index, p.minAt = buf, ctx, map[string]int64{}, math.MaxInt64
	if p.s.wallIdle > 0 {
		p.lastUpdate = ctx.WallClockTime() // idle time counts from the start
		ctx.Schedule(min(p.s.wallIdle, time.Second), topology.WallClockTime, p.closeByWallClock)
	}
	it := buf.All()
	defer it.Close()
	for it.Next() {
		k := it.Key()
		if len(k) == 0 && len(it.Value()) == 8 {
			p.closedTo = int64(binary.BigEndian.Uint64(it.Value()))
			continue
		}
		if len(k) < 8 {
			return fmt.Errorf("stream: suppression buffer key of %d bytes", len(k))
		}
		at := int64(binary.BigEndian.Uint64(k))
		p.index[string(k[8:])] = at
		p.minAt = min(p.minAt, at)
		_, ts, err := decodeTS(p.cs, it.Value())
		if err != nil {
			return err
		}
		p.observed = max(p.observed, ts)
	}
	return it.Err()
}

func (p *suppressor[K, V]) Process(r topology.Record[K, change[V]]) error {
	p.observed = max(p.observed, r.Timestamp)
	p.lastUpdate = p.ctx.WallClockTime()
	kb, err := p.ks.Serialize(r.Key)
	if err != nil {
		return err
	}
	ch := r.Value
	at, buffered := p.index[string(kb)]
	if buffered {
		old, err := p.buf.Get(bufKey(at, kb))
		if err != nil {
			return err
		}
		if old != nil {
			prev, _, err := decodeTS(p.cs, old)
			if err != nil {
				return err
			}
			ch.Old, ch.HasOld = prev.Old, prev.HasOld // keep the value from before the first held update
		}
	} else if p.s.windowCloses {
		at = p.win.closeAt(r.Key)
		if at <= p.closedTo {
			p.ctx.Drop(topology.DropLate) // closed by wall clock already
			return nil
		}
	} else {
		at = r.Timestamp + p.s.limit.Milliseconds()
	}
	vb, err := encodeTS[change[V]](p.cs, ch, r.Timestamp)
	if err != nil {
		return err
	}
	if err := p.buf.Put(bufKey(at, kb), vb); err != nil {
		return err
	}
	p.index[string(kb)] = at
	p.minAt = min(p.minAt, at)
	_, err = p.evict(p.observed)
	return err
}

// closeByWallClock is the WallClockClose punctuation: after idle without
// updates, it emits the windows closing at or before now − idle.
func (p *suppressor[K, V]) closeByWallClock(now int64) error {
	idle := p.s.wallIdle.Milliseconds()
	if now-p.lastUpdate < idle {
		return nil
	}
	bound := now - idle
	if bound <= p.closedTo {
		return nil
	}
	n, err := p.evict(bound)
	if err != nil || n == 0 {
		return err
	}
	p.closedTo = bound
	return p.buf.Put([]byte{}, binary.BigEndian.AppendUint64(nil, uint64(bound)))
}

// evict emits and removes the entries due at time upTo, in order of emit
// time, then key bytes, and returns how many it removed.
func (p *suppressor[K, V]) evict(upTo int64) (int, error) {
	if p.minAt > upTo {
		return 0, nil
	}
	type due struct{ key, value []byte }
	var ds []due
	it := p.buf.Range(bufKey(p.minAt, nil), nil)
	p.minAt = math.MaxInt64 // until a buffered entry not due says otherwise
	for it.Next() {
		if len(it.Key()) < 8 {
			continue // closedTo
		}
		if at := int64(binary.BigEndian.Uint64(it.Key())); at > upTo {
			p.minAt = at
			break
		}
		ds = append(ds, due{append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)})
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	for _, d := range ds {
		if _, err := p.buf.Delete(d.key); err != nil {
			return 0, err
		}
		delete(p.index, string(d.key[8:]))
		k, err := p.ks.Deserialize(d.key[8:])
		if err != nil {
			return 0, err
		}
		ch, ts, err := decodeTS(p.cs, d.value)
		if err != nil {
			return 0, err
		}
		if p.s.windowCloses && !ch.HasNew {
			continue // a window deleted before it closed (a merged-away session): never seen downstream
		}
		p.ctx.Forward(topology.Record[K, change[V]]{Key: k, Value: ch, Timestamp: ts})
	}
	return len(ds), nil
}

func (p *suppressor[K, V]) Close() error { return nil }
