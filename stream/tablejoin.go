package stream

import (
	"slices"

	"github.com/runnel-dev/runnel/topology"
)

// JoinTables joins two tables on key: the result has a value for a key
// while both inputs do (Kafka Streams' KTable-KTable inner join). An update on
// either side is joined with the other side's current value. The result is
// not materialized unless Materialized names a store; lookups go to the
// inputs' stores.
func JoinTables[K, V1, V2, VR any](l Table[K, V1], r Table[K, V2], joiner func(V1, V2) VR, opts ...Option) Table[K, VR] {
	return tableTableJoin(l, r, func(a *V1, b *V2) (VR, bool) {
		if a == nil || b == nil {
			var zero VR
			return zero, false
		}
		return joiner(*a, *b), true
	}, l.b.collect(ops.joinTables, opts))
}

// LeftJoinTables keeps every key of l, joining with nil where r has none.
func LeftJoinTables[K, V1, V2, VR any](l Table[K, V1], r Table[K, V2], joiner func(V1, *V2) VR, opts ...Option) Table[K, VR] {
	return tableTableJoin(l, r, func(a *V1, b *V2) (VR, bool) {
		if a == nil {
			var zero VR
			return zero, false
		}
		return joiner(*a, b), true
	}, l.b.collect(ops.leftJoinTables, opts))
}

// OuterJoinTables keeps every key of either table, with nil for a missing side.
func OuterJoinTables[K, V1, V2, VR any](l Table[K, V1], r Table[K, V2], joiner func(*V1, *V2) VR, opts ...Option) Table[K, VR] {
	return tableTableJoin(l, r, func(a *V1, b *V2) (VR, bool) {
		if a == nil && b == nil {
			var zero VR
			return zero, false
		}
		return joiner(a, b), true
	}, l.b.collect(ops.outerJoinTables, opts))
}

func tableTableJoin[K, V1, V2, VR any](l Table[K, V1], r Table[K, V2], joiner func(*V1, *V2) (VR, bool), o *options) Table[K, VR] {
	b := l.b
	base := b.name(o, "KTABLE-JOIN")
	lname, rname, merge := base+"-this", base+"-other", base+"-merge"
	lg, rg := l.getter, r.getter
	if lg == nil || rg == nil {
		b.errorf("join %q: both tables must be lookable up", base)
		return Table[K, VR]{b: b, node: l.node}
	}
	addFuncInit(b, lname, func(ctx topology.Context[K, change[VR]]) (func(topology.Record[K, change[V1]]) error, error) {
		get, err := rg.open(ctx)
		if err != nil {
			return nil, err
		}
		return func(rec topology.Record[K, change[V1]]) error {
			v2, _, ok, err := get(rec.Key)
			if err != nil {
				return err
			}
			var p2 *V2
			if ok {
				p2 = &v2
			}
			forwardJoined(ctx, rec, joiner, rec.Value.newPtr(), p2, rec.Value.oldPtr(), p2)
			return nil
		}, nil
	}, l.node)
	addFuncInit(b, rname, func(ctx topology.Context[K, change[VR]]) (func(topology.Record[K, change[V2]]) error, error) {
		get, err := lg.open(ctx)
		if err != nil {
			return nil, err
		}
		return func(rec topology.Record[K, change[V2]]) error {
			v1, _, ok, err := get(rec.Key)
			if err != nil {
				return err
			}
			var p1 *V1
			if ok {
				p1 = &v1
			}
			forwardJoined(ctx, rec, joiner, p1, rec.Value.newPtr(), p1, rec.Value.oldPtr())
			return nil
		}, nil
	}, r.node)
	r.connect(lname)
	l.connect(rname)
	addFunc(b, merge, func(ctx topology.Context[K, change[VR]], rec topology.Record[K, change[VR]]) error {
		ctx.Forward(rec)
		return nil
	}, lname, rname)
	b.copartition(l.sources, r.sources)
	out := Table[K, VR]{b: b, node: merge, ks: l.ks, sources: append(slices.Clone(l.sources), r.sources...)}
	_, out.vs = serdesOf[K, VR](b, o, nil, nil)
	out.getter = &getter[K, VR]{stores: append(slices.Clone(lg.stores), rg.stores...), open: func(ctx storeLookup) (func(K) (VR, int64, bool, error), error) {
		g1, err := lg.open(ctx)
		if err != nil {
			return nil, err
		}
		g2, err := rg.open(ctx)
		if err != nil {
			return nil, err
		}
		return func(k K) (VR, int64, bool, error) {
			var zero VR
			v1, t1, ok1, err := g1(k)
			if err != nil {
				return zero, 0, false, err
			}
			v2, t2, ok2, err := g2(k)
			if err != nil {
				return zero, 0, false, err
			}
			var p1 *V1
			var p2 *V2
			if ok1 {
				p1 = &v1
			}
			if ok2 {
				p2 = &v2
			}
			res, ok := joiner(p1, p2)
			return res, max(t1, t2), ok, nil
		}, nil
	}}
	if o.storeName != "" {
		return materialize(out, o)
	}
	return out
}

func forwardJoined[K, V, V1, V2, VR any](ctx topology.Context[K, change[VR]], rec topology.Record[K, V], joiner func(*V1, *V2) (VR, bool), n1 *V1, n2 *V2, o1 *V1, o2 *V2) {
	var ch change[VR]
	ch.New, ch.HasNew = joiner(n1, n2)
	ch.Old, ch.HasOld = joiner(o1, o2)
	if ch.HasNew || ch.HasOld {
		ctx.Forward(topology.WithValue(rec, ch))
	}
}
