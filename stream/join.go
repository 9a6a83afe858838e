package stream

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// copartition records that the joined inputs must be co-partitioned.
func (b *Builder) copartition(a, c []string) {
	srcs := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a), c...))))
	if len(srcs) > 1 {
		b.tb.Copartition(srcs...)
	}
}

// joinable repartitions a stream about to be joined if its key may have changed.
func joinable[K, V any](s Stream[K, V], o *options, side string) Stream[K, V] {
	if !s.rekeyed {
		return s
	}
	base := s.b.suffixed(o, side, "KSTREAM-JOIN")
	return repartition(s, &options{}, base)
}

// JoinTable joins each record of s with the value its key has in t when the
// record is processed; records whose key has no value are dropped (Kafka
// Streams' KStream-KTable inner join). Table updates trigger nothing.
func JoinTable[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(V, VT) VR, opts ...Option) Stream[K, VR] {
	return streamTableJoin(s, t, func(v V, vt *VT) (VR, bool) {
		if vt == nil {
			var zero VR
			return zero, false
		}
		return joiner(v, *vt), true
	}, s.b.collect(ops.joinTable, opts))
}

// LeftJoinTable is JoinTable that keeps records whose key has no value in t,
// calling joiner with nil.
func LeftJoinTable[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(V, *VT) VR, opts ...Option) Stream[K, VR] {
	return streamTableJoin(s, t, func(v V, vt *VT) (VR, bool) { return joiner(v, vt), true }, s.b.collect(ops.leftJoinTable, opts))
}

func streamTableJoin[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(V, *VT) (VR, bool), o *options) Stream[K, VR] {
	s = joinable(s, o, "left")
	b := s.b
	name := b.name(o, "KSTREAM-JOIN")
	g := t.getter
	if g == nil {
		b.errorf("join %q: table %q cannot be looked up", name, t.node)
		return Stream[K, VR]{b: b, node: s.node}
	}
	topology.AddProcessor(b.tb, name, func() topology.Processor[K, V, K, VR] {
		return &streamTableJoiner[K, V, VT, VR]{g: g, joiner: joiner}
	}, s.node)
	t.connect(name)
	b.copartition(s.sources, t.sources)
	return Stream[K, VR]{b: b, node: name, ks: s.ks, sources: append(slices.Clone(s.sources), t.sources...)}
}

type streamTableJoiner[K, V, VT, VR any] struct {
	g      *getter[K, VT]
	get    func(K) (VT, int64, bool, error)
	joiner func(V, *VT) (VR, bool)
	ctx    topology.Context[K, VR]
}

func (p *streamTableJoiner[K, V, VT, VR]) Init(ctx topology.Context[K, VR]) error {
	p.ctx = ctx
	var err error
	p.get, err = p.g.open(ctx)
	return err
}

func (p *streamTableJoiner[K, V, VT, VR]) Process(r topology.Record[K, V]) error {
	vt, _, ok, err := p.get(r.Key)
	if err != nil {
		return err
	}
	var ptr *VT
	if ok {
		ptr = &vt
	}
	if out, ok := p.joiner(r.Value, ptr); ok {
		p.ctx.Forward(topology.WithValue(r, out))
	}
	return nil
}

func (p *streamTableJoiner[K, V, VT, VR]) Close() error { return nil }

// GlobalTable is a table every instance holds in full, fed from every
// partition of its topic (Kafka Streams' GlobalKTable). Streams join it by a
// key computed from each record, with no co-partitioning.
type GlobalTable[K, V any] struct {
	b     *Builder
	store string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// StoreName returns the global table's store.
func (g GlobalTable[K, V]) StoreName() string { return g.store }

// GlobalTableOf reads topic as a global table. Options: Named, Materialized.
func GlobalTableOf[K, V any](b *Builder, topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...Option) GlobalTable[K, V] {
	o := b.collect(ops.globalTableOf, opts)
	src := b.name(o, "KTABLE-SOURCE")
	proc := b.suffixed(o, "global", "KTABLE-GLOBAL")
	store := o.storeName
	if store == "" {
		store = src + "-store"
	}
	topology.AddGlobalStore(b.tb, topology.StoreSpec{Name: store, Kind: topology.KeyValueStore}, src,
		topology.Source[K, V]{Topics: []string{topic}, KeySerde: ks, ValueSerde: vs}, proc,
		func() topology.Processor[any, any, struct{}, struct{}] {
			return &globalWriter[K, V]{store: store, ks: ks, vs: vs}
		})
	return GlobalTable[K, V]{b: b, store: store, ks: ks, vs: vs}
}

type globalWriter[K, V any] struct {
	store string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	kv    kvStore[K, V]
}

func (p *globalWriter[K, V]) Init(ctx topology.Context[struct{}, struct{}]) error {
	var err error
	p.kv, err = openKV(ctx, p.store, p.ks, p.vs)
	return err
}

func (p *globalWriter[K, V]) Process(r topology.Record[any, any]) error {
	k, _ := r.Key.(K)
	if r.Value == nil {
		return p.kv.delete(k)
	}
	return p.kv.put(k, r.Value.(V), r.Timestamp)
}

func (p *globalWriter[K, V]) Close() error { return nil }

// JoinGlobal joins each record of s with the value that key(record) has in g;
// records without one are dropped.
func JoinGlobal[K, V, KG, VG, VR any](s Stream[K, V], g GlobalTable[KG, VG], key func(K, V) KG, joiner func(V, VG) VR, opts ...Option) Stream[K, VR] {
	return globalJoin(s, g, key, func(v V, vg *VG) (VR, bool) {
		if vg == nil {
			var zero VR
			return zero, false
		}
		return joiner(v, *vg), true
	}, s.b.collect(ops.joinGlobal, opts))
}

// LeftJoinGlobal is JoinGlobal keeping unmatched records (joiner gets nil).
func LeftJoinGlobal[K, V, KG, VG, VR any](s Stream[K, V], g GlobalTable[KG, VG], key func(K, V) KG, joiner func(V, *VG) VR, opts ...Option) Stream[K, VR] {
	return globalJoin(s, g, key, func(v V, vg *VG) (VR, bool) { return joiner(v, vg), true }, s.b.collect(ops.leftJoinGlobal, opts))
}

func globalJoin[K, V, KG, VG, VR any](s Stream[K, V], g GlobalTable[KG, VG], key func(K, V) KG, joiner func(V, *VG) (VR, bool), o *options) Stream[K, VR] {
	b := s.b
	name := b.name(o, "KSTREAM-GLOBAL-JOIN")
	store, ks, vs := g.store, g.ks, g.vs
	addFuncInit(b, name, func(ctx topology.Context[K, VR]) (func(r topology.Record[K, V]) error, error) {
		kv, err := openKV(ctx, store, ks, vs)
		if err != nil {
			return nil, err
		}
		return func(r topology.Record[K, V]) error {
			vg, _, ok, err := kv.get(key(r.Key, r.Value))
			if err != nil {
				return err
			}
			var ptr *VG
			if ok {
				ptr = &vg
			}
			if out, ok := joiner(r.Value, ptr); ok {
				ctx.Forward(topology.WithValue(r, out))
			}
			return nil
		}, nil
	}, s.node)
	b.tb.ConnectStore(store, name)
	return derive[K, V, K, VR](s, name, false)
}

// addFuncInit adds a processor made by init at task start.
func addFuncInit[KI, VI, KO, VO any](b *Builder, name string, init func(ctx topology.Context[KO, VO]) (func(topology.Record[KI, VI]) error, error), parents ...string) {
	topology.AddProcessor(b.tb, name, func() topology.Processor[KI, VI, KO, VO] { return &initProc[KI, VI, KO, VO]{init: init} }, parents...)
}

type initProc[KI, VI, KO, VO any] struct {
	init func(ctx topology.Context[KO, VO]) (func(topology.Record[KI, VI]) error, error)
	f    func(topology.Record[KI, VI]) error
}

func (p *initProc[KI, VI, KO, VO]) Init(ctx topology.Context[KO, VO]) (err error) {
	p.f, err = p.init(ctx)
	return err
}
func (p *initProc[KI, VI, KO, VO]) Process(r topology.Record[KI, VI]) error { return p.f(r) }
func (p *initProc[KI, VI, KO, VO]) Close() error                            { return nil }

// JoinWindows bound a stream-stream join: a left record at t joins right
// records in [t-Before, t+After]. Records older than stream time minus
// (Before + After + Grace) are dropped as late; an outer join emits an
// unmatched record once no partner for it can arrive any more.
type JoinWindows struct {
	Before, After, Grace time.Duration
}

// JoinWithin returns symmetric join windows: partners at most d apart.
func JoinWithin(d, grace time.Duration) JoinWindows {
	return JoinWindows{Before: d, After: d, Grace: grace}
}

// Join joins two streams on key within w: every pair of records with the
// same key whose timestamps are close enough gives joiner(left, right), with
// the larger of the two timestamps (Kafka Streams' KStream-KStream join).
// Both sides are kept in window stores retaining duplicates.
func Join[K, V1, V2, VR any](l Stream[K, V1], r Stream[K, V2], joiner func(V1, V2) VR, w JoinWindows, opts ...Option) Stream[K, VR] {
	return streamStreamJoin(l, r, func(a *V1, b *V2) VR { return joiner(*a, *b) }, w, false, false, l.b.collect(ops.join, opts))
}

// LeftJoin is Join that also emits each left record that found no partner,
// with joiner(left, nil), once its window has closed.
func LeftJoin[K, V1, V2, VR any](l Stream[K, V1], r Stream[K, V2], joiner func(V1, *V2) VR, w JoinWindows, opts ...Option) Stream[K, VR] {
	return streamStreamJoin(l, r, func(a *V1, b *V2) VR { return joiner(*a, b) }, w, true, false, l.b.collect(ops.leftJoin, opts))
}

// OuterJoin is Join that also emits unmatched records of either side, with
// nil for the missing one, once their window has closed.
func OuterJoin[K, V1, V2, VR any](l Stream[K, V1], r Stream[K, V2], joiner func(*V1, *V2) VR, w JoinWindows, opts ...Option) Stream[K, VR] {
	return streamStreamJoin(l, r, joiner, w, true, true, l.b.collect(ops.outerJoin, opts))
}

// joinShared is the state the two sides of one join share within a task:
// the largest timestamp either side has seen.
type joinShared struct {
	mu sync.Mutex // guards m; each entry is then used by one task's goroutine
	m  map[topology.TaskID]*int64
}

func (s *joinShared) get(id topology.TaskID) *int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[id]
	if !ok {
		v := int64(-1)
		p = &v
		s.m[id] = p
	}
	return p
}

func (s *joinShared) release(id topology.TaskID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func streamStreamJoin[K, V1, V2, VR any](l Stream[K, V1], r Stream[K, V2], joiner func(*V1, *V2) VR, w JoinWindows, leftOuter, rightOuter bool, o *options) Stream[K, VR] {
	l = joinable(l, o, "left")
	r = joinable(r, o, "right")
	b := l.b
	base := b.name(o, "KSTREAM-JOIN")
	ks, v1s := serdesOf(b, &options{}, l.ks, l.vs)
	_, v2s := serdesOf(b, &options{}, r.ks, r.vs)
	before, after, grace := w.Before.Milliseconds(), w.After.Milliseconds(), w.Grace.Milliseconds()
	win := before + after + grace
	retention := time.Duration(win+max(before, after)+1) * time.Millisecond
	lstore, rstore, ostore := base+"-this-store", base+"-other-store", base+"-outer-store"
	wopts := state.WindowOptions{Retention: retention, RetainDuplicates: true, SegmentInterval: o.segment}
	shared := &joinShared{m: map[topology.TaskID]*int64{}}
	cfg := ssJoinConfig{before: before, after: after, win: win, lstore: lstore, rstore: rstore, ostore: ostore, leftOuter: leftOuter, rightOuter: rightOuter, shared: shared}
	lname, rname, merge := base+"-this", base+"-other", base+"-merge"
	topology.AddProcessor(b.tb, lname, func() topology.Processor[K, V1, K, VR] {
		return &ssJoiner[K, V1, V2, VR]{cfg: cfg, ks: ks, thisS: v1s, otherS: v2s, left: true, join: joiner}
	}, l.node)
	topology.AddProcessor(b.tb, rname, func() topology.Processor[K, V2, K, VR] {
		return &ssJoiner[K, V2, V1, VR]{cfg: cfg, ks: ks, thisS: v2s, otherS: v1s, left: false,
			join: func(a *V2, c *V1) VR { return joiner(c, a) }}
	}, r.node)
	addFunc(b, merge, func(ctx topology.Context[K, VR], rec topology.Record[K, VR]) error {
		ctx.Forward(rec)
		return nil
	}, lname, rname)
	spec := func(name string) topology.StoreSpec {
		return topology.StoreSpec{Name: name, Kind: topology.WindowStore, Window: wopts, Logging: !o.noLogging}
	}
	b.tb.AddStore(spec(lstore), lname, rname)
	b.tb.AddStore(spec(rstore), lname, rname)
	if leftOuter || rightOuter {
		b.tb.AddStore(topology.StoreSpec{Name: ostore, Kind: topology.KeyValueStore, Logging: !o.noLogging}, lname, rname)
	}
	b.copartition(l.sources, r.sources)
	return Stream[K, VR]{b: b, node: merge, ks: l.ks, sources: append(slices.Clone(l.sources), r.sources...)}
}

type ssJoinConfig struct {
	before, after, win    int64
	lstore, rstore        string
	ostore                string
	leftOuter, rightOuter bool
	shared                *joinShared
}

// ssJoiner is one side of a stream-stream join. "this" is its side.
//
// The outer store holds unmatched records of outer sides under
// timestamp (8 bytes) | side (1 byte: 0 left, 1 right) | key length (4 bytes) | key | sequence (8 bytes),
// valued by the record's value bytes, so a scan from the start finds the
// oldest first.
type ssJoiner[K, VT, VO, VR any] struct {
	cfg    ssJoinConfig
	ks     serde.Serde[K]
	thisS  serde.Serde[VT]
	otherS serde.Serde[VO]
	left   bool
	join   func(*VT, *VO) VR

	ctx                 topology.Context[K, VR]
	this, other         state.WindowStore
	outer               state.KeyValueStore
	observed            *int64
	seq                 int64
	thisOuter, othOuter bool
}

func (p *ssJoiner[K, VT, VO, VR]) Init(ctx topology.Context[K, VR]) error {
	p.ctx = ctx
	ts, os := p.cfg.lstore, p.cfg.rstore
	p.thisOuter, p.othOuter = p.cfg.leftOuter, p.cfg.rightOuter
	if !p.left {
		ts, os = os, ts
		p.thisOuter, p.othOuter = p.othOuter, p.thisOuter
	}
	var ok bool
	if p.this, ok = ctx.Store(ts).(state.WindowStore); !ok {
		return fmt.Errorf("stream: join store %q missing", ts)
	}
	if p.other, ok = ctx.Store(os).(state.WindowStore); !ok {
		return fmt.Errorf("stream: join store %q missing", os)
	}
	if p.cfg.leftOuter || p.cfg.rightOuter {
		if p.outer, ok = ctx.Store(p.cfg.ostore).(state.KeyValueStore); !ok {
			return fmt.Errorf("stream: join store %q missing", p.cfg.ostore)
		}
	}
	p.observed = p.cfg.shared.get(ctx.TaskID())
	return nil
}

func (p *ssJoiner[K, VT, VO, VR]) side() byte {
	if p.left {
		return 0
	}
	return 1
}

func outerPrefix(ts int64, side byte, kb []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(ts))
	b = append(b, side)
	b = binary.BigEndian.AppendUint32(b, uint32(len(kb)))
	return append(b, kb...)
}

func (p *ssJoiner[K, VT, VO, VR]) Process(r topology.Record[K, VT]) error {
	*p.observed = max(*p.observed, r.Timestamp)
	if r.Timestamp < *p.observed-p.cfg.win {
		p.ctx.Drop(topology.DropLate)
		return nil
	}
	kb, err := p.ks.Serialize(r.Key)
	if err != nil {
		return err
	}
	vb, err := p.thisS.Serialize(r.Value)
	if err != nil {
		return err
	}
	if err := p.this.Put(kb, r.Timestamp, vb); err != nil {
		return err
	}
	from, to := r.Timestamp-p.cfg.before, r.Timestamp+p.cfg.after
	if !p.left {
		from, to = r.Timestamp-p.cfg.after, r.Timestamp+p.cfg.before
	}
	type match struct {
		ts int64
		v  VO
	}
	var ms []match
	it := p.other.FetchRange(kb, from, to)
	for it.Next() {
		v, err := p.otherS.Deserialize(it.Value())
		if err != nil {
			it.Close()
			return err
		}
		ms = append(ms, match{it.Start(), v})
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, m := range ms {
		if p.othOuter {
			if err := p.deletePrefix(outerPrefix(m.ts, 1-p.side(), kb)); err != nil {
				return err
			}
		}
		p.ctx.Forward(topology.Record[K, VR]{Key: r.Key, Value: p.join(&r.Value, &m.v), Timestamp: max(r.Timestamp, m.ts), Headers: r.Headers})
	}
	if len(ms) == 0 && p.thisOuter {
		k := binary.BigEndian.AppendUint64(outerPrefix(r.Timestamp, p.side(), kb), uint64(p.seq))
		p.seq++
		if err := p.outer.Put(k, vb); err != nil {
			return err
		}
	}
	return p.emitUnmatched()
}

func (p *ssJoiner[K, VT, VO, VR]) deletePrefix(prefix []byte) error {
	var keys [][]byte
	it := p.outer.PrefixScan(prefix)
	for it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := p.outer.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// emitUnmatched emits the unmatched records no partner can join any more: a
// record at ts on a side whose window reaches d ahead is final once
// ts + d < stream time − (before + after + grace), since partners that
// could still match it would be late.
func (p *ssJoiner[K, VT, VO, VR]) emitUnmatched() error {
	if p.outer == nil {
		return nil
	}
	type due struct {
		key, value []byte
	}
	var ds []due
	it := p.outer.All()
	for it.Next() {
		k := it.Key()
		ts, side := int64(binary.BigEndian.Uint64(k)), k[8]
		if ts+max(p.cfg.before, p.cfg.after) >= *p.observed-p.cfg.win {
			break
		}
		_ = side
		ds = append(ds, due{append([]byte(nil), k...), append([]byte(nil), it.Value()...)})
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, d := range ds {
		if _, err := p.outer.Delete(d.key); err != nil {
			return err
		}
		ts, side := int64(binary.BigEndian.Uint64(d.key)), d.key[8]
		n := binary.BigEndian.Uint32(d.key[9:])
		k, err := p.ks.Deserialize(d.key[13 : 13+n])
		if err != nil {
			return err
		}
		var out VR
		if side == p.side() {
			v, err := p.thisS.Deserialize(d.value)
			if err != nil {
				return err
			}
			out = p.join(&v, nil)
		} else {
			v, err := p.otherS.Deserialize(d.value)
			if err != nil {
				return err
			}
			out = p.join(nil, &v)
		}
		p.ctx.Forward(topology.Record[K, VR]{Key: k, Value: out, Timestamp: ts})
	}
	return nil
}

func (p *ssJoiner[K, VT, VO, VR]) Close() error {
	p.cfg.shared.release(p.ctx.TaskID())
	return nil
}
