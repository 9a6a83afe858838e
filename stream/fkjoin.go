package stream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// JoinForeignKey joins each entry of left with the entry of right whose key
// fk extracts from the left value (Kafka Streams' KTable-KTable foreign-key
// join, KIP-213). The result, keyed like left, has a value while the left
// entry exists and right has a value for its foreign key; it changes when
// either side does, including when a left entry moves to another foreign
// key or is deleted.
//
// The tables need not be co-partitioned. As in Kafka Streams, left entries
// subscribe to their foreign key through the internal topic
// "<app>-<name>-subscription-registration-topic", partitioned like right; a
// store there ("<name>-subscription-store") remembers the subscribers of
// each foreign key, and right's value goes back to the left entry through
// "<app>-<name>-subscription-response-topic", partitioned like left.
// Responses carry a hash of the left value they answer, so a response
// overtaken by a later left update is dropped. The result is materialized
// in a store (Materialized, else "<name>-store"). Options: Named,
// Materialized, WithValueSerde (the result's).
func JoinForeignKey[K, V, KO, VO, VR any](left Table[K, V], right Table[KO, VO], fk func(V) KO, joiner func(V, VO) VR, opts ...Option) Table[K, VR] {
	return fkJoin(left, right, fk, func(v V, vo *VO) (VR, bool) {
		if vo == nil {
			var zero VR
			return zero, false
		}
		return joiner(v, *vo), true
	}, left.b.collect(ops.joinForeignKey, opts))
}

// LeftJoinForeignKey is JoinForeignKey keeping every left entry, joined
// with nil while right has no value for its foreign key.
func LeftJoinForeignKey[K, V, KO, VO, VR any](left Table[K, V], right Table[KO, VO], fk func(V) KO, joiner func(V, *VO) VR, opts ...Option) Table[K, VR] {
	return fkJoin(left, right, fk, func(v V, vo *VO) (VR, bool) { return joiner(v, vo), true }, left.b.collect(ops.leftJoinForeignKey, opts))
}

// Subscription instructions, the first byte of a subscription record.
const (
	fkSubscribe   byte = 1 // register (fk, key) and answer with right's value
	fkUnsubscribe byte = 2 // remove (fk, key): the left entry left fk
)

// hashLen is the length of the left-value hashes (FNV-1a, 128 bits).
const hashLen = 16

func valueHash(b []byte) []byte {
	h := fnv.New128a()
	h.Write(b)
	return h.Sum(nil)
}

// Subscription records: key fk; value instruction (1 byte) | left value
// hash (16 bytes) | left key bytes.
// Response records: key the left key; value left value hash (16 bytes) |
// present (1 byte) | right value bytes.
// Subscription store: key uvarint(len(fk)) | fk | left key; value the hash.

func subscriptionKey(fkb, kb []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(fkb)))
	return append(append(b, fkb...), kb...)
}

func fkJoin[K, V, KO, VO, VR any](l Table[K, V], r Table[KO, VO], fk func(V) KO, joiner func(V, *VO) (VR, bool), o *options) Table[K, VR] {
	b := l.b
	base := b.name(o, "KTABLE-FK-JOIN")
	lks, lvs := l.ks, l.vs
	if lks == nil {
		lks = serde.Default[K]()
	}
	if lvs == nil {
		lvs = serde.Default[V]()
	}
	rks, rvs := r.ks, r.vs
	if rks == nil {
		rks = serde.Default[KO]()
	}
	if rvs == nil {
		rvs = serde.Default[VO]()
	}
	_, vrs := serdesOf[K, VR](b, o, nil, nil)
	lg, rg := l.getter, r.getter
	if lg == nil || rg == nil {
		b.errorf("foreign-key join %q: both tables must be lookable up", base)
		return Table[K, VR]{b: b, node: l.node}
	}
	subTopic, respTopic := base+"-subscription-registration-topic", base+"-subscription-response-topic"
	subStore := base + "-subscription-store"
	result := o.storeName
	if result == "" {
		result = base + "-store"
	}
	b.tb.AddRepartitionTopic(subTopic, 0)
	b.tb.AddRepartitionTopic(respTopic, 0)

	// Left side: subscribe each left entry to its foreign key.
	sender, subSink, out := base+"-subscription-send", base+"-subscription-sink", base+"-result"
	topology.AddProcessor(b.tb, sender, func() topology.Processor[any, any, any, any] {
		return &fkSender[K, V, KO, VR]{lks: lks, lvs: lvs, rks: rks, fk: fk, result: result, vrs: vrs, sink: subSink, out: out}
	}, l.node)
	b.tb.AddStore(kvSpec(result, o), sender)
	topology.AddSink(b.tb, subSink, topology.Sink[KO, []byte]{Topic: subTopic, KeySerde: rks, ValueSerde: serde.Bytes}, sender)

	// Right side: remember subscriptions, answer them, and answer again when
	// the right value changes.
	subSrc := base + "-subscription-source"
	topology.AddSource(b.tb, subSrc, topology.Source[KO, []byte]{Topics: []string{subTopic}, KeySerde: rks, ValueSerde: serde.Bytes})
	receiver, rightChange := base+"-subscription-receive", base+"-right-change"
	topology.AddProcessor(b.tb, receiver, func() topology.Processor[KO, []byte, K, []byte] {
		return &fkSubscriptions[K, KO, VO]{store: subStore, lks: lks, rks: rks, rvs: rvs, g: rg}
	}, subSrc)
	topology.AddProcessor(b.tb, rightChange, func() topology.Processor[KO, change[VO], K, []byte] {
		return &fkRightChanges[K, KO, VO]{fkSubscriptions[K, KO, VO]{store: subStore, lks: lks, rks: rks, rvs: rvs, g: rg}}
	}, r.node)
	b.tb.AddStore(topology.StoreSpec{Name: subStore, Kind: topology.KeyValueStore, Logging: !o.noLogging}, receiver, rightChange)
	r.connect(receiver)
	r.connect(rightChange)
	topology.AddSink(b.tb, base+"-response-sink", topology.Sink[K, []byte]{Topic: respTopic, KeySerde: lks, ValueSerde: serde.Bytes}, receiver, rightChange)

	// Left side again: join the responses that still match the left value.
	respSrc := base + "-response-source"
	topology.AddSource(b.tb, respSrc, topology.Source[K, []byte]{Topics: []string{respTopic}, KeySerde: lks, ValueSerde: serde.Bytes})
	resolver := base + "-response-resolve"
	topology.AddProcessor(b.tb, resolver, func() topology.Processor[K, []byte, K, change[VR]] {
		return &fkResolver[K, V, VO, VR]{lks: lks, lvs: lvs, rvs: rvs, vrs: vrs, g: lg, joiner: joiner, result: result}
	}, respSrc)
	l.connect(resolver)
	b.tb.ConnectStore(result, resolver)
	addFunc(b, out, func(ctx topology.Context[K, change[VR]], rec topology.Record[K, change[VR]]) error {
		ctx.Forward(rec)
		return nil
	}, sender, resolver)

	b.copartition(r.sources, []string{subSrc})
	b.copartition(l.sources, []string{respSrc})
	return Table[K, VR]{b: b, node: out, ks: lks, vs: vrs, store: result, getter: storeGetter(result, lks, vrs), sources: l.sources}
}

// fkSender runs on the left table's changes. A left entry that moved away
// from a foreign key (or was deleted) unsubscribes from it; a deleted one
// also deletes its result at once. A new or changed one subscribes to its
// foreign key, whose response then makes its result. It is a raw processor
// because its two children take different types: subscriptions go to the
// sink, result deletions to the result node.
type fkSender[K, V, KO, VR any] struct {
	lks       serde.Serde[K]
	lvs       serde.Serde[V]
	rks       serde.Serde[KO]
	fk        func(V) KO
	result    string
	vrs       serde.Serde[VR]
	sink, out string

	ctx topology.Context[any, any]
	w   tableWriter[K, VR]
}

func (p *fkSender[K, V, KO, VR]) Init(ctx topology.Context[any, any]) error {
	p.ctx = ctx
	return p.w.init(routedCtx[K, change[VR]]{ctx, p.out}, p.result, p.lks, p.vrs)
}

func (p *fkSender[K, V, KO, VR]) subscription(op byte, fk KO, hash, kb []byte, r topology.Record[any, any]) {
	v := append([]byte{op}, hash...)
	p.ctx.ForwardTo(p.sink, topology.Record[any, any]{Key: fk, Value: append(v, kb...), Timestamp: r.Timestamp, Headers: r.Headers})
}

func (p *fkSender[K, V, KO, VR]) Process(r topology.Record[any, any]) error {
	k, _ := r.Key.(K)
	ch := r.Value.(change[V])
	kb, err := p.lks.Serialize(k)
	if err != nil {
		return err
	}
	var oldFK, newFK []byte
	if ch.HasOld {
		if oldFK, err = p.rks.Serialize(p.fk(ch.Old)); err != nil {
			return err
		}
	}
	if ch.HasNew {
		if newFK, err = p.rks.Serialize(p.fk(ch.New)); err != nil {
			return err
		}
	}
	if ch.HasOld && (!ch.HasNew || !bytes.Equal(oldFK, newFK)) {
		p.subscription(fkUnsubscribe, p.fk(ch.Old), make([]byte, hashLen), kb, r)
	}
	if !ch.HasNew {
		return p.w.write(k, nil, r.Timestamp, r.Headers)
	}
	vb, err := p.lvs.Serialize(ch.New)
	if err != nil {
		return err
	}
	p.subscription(fkSubscribe, p.fk(ch.New), valueHash(vb), kb, r)
	return nil
}

func (p *fkSender[K, V, KO, VR]) Close() error { return nil }

// routedCtx narrows a raw context for typed helpers, sending their
// forwards to one child.
type routedCtx[K, V any] struct {
	topology.Context[any, any]
	child string
}

func (c routedCtx[K, V]) Forward(r topology.Record[K, V]) {
	c.Context.ForwardTo(c.child, topology.Record[any, any]{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
}

func (c routedCtx[K, V]) ForwardTo(child string, r topology.Record[K, V]) {
	c.Context.ForwardTo(child, topology.Record[any, any]{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
}

// fkSubscriptions keeps the subscription store of the right side and
// answers subscriptions with right's current value.
type fkSubscriptions[K, KO, VO any] struct {
	store string
	lks   serde.Serde[K]
	rks   serde.Serde[KO]
	rvs   serde.Serde[VO]
	g     *getter[KO, VO]

	subs state.KeyValueStore
	get  func(KO) (VO, int64, bool, error)
	ctx  topology.Context[K, []byte]
}

func (p *fkSubscriptions[K, KO, VO]) Init(ctx topology.Context[K, []byte]) error {
	var ok bool
	if p.subs, ok = ctx.Store(p.store).(state.KeyValueStore); !ok {
		return fmt.Errorf("stream: store %q is not a key-value store", p.store)
	}
	p.ctx = ctx
	var err error
	p.get, err = p.g.open(ctx)
	return err
}

// respond sends right's value vo (nil: none) to the left entry kb whose
// value hashes to hash.
func (p *fkSubscriptions[K, KO, VO]) respond(kb, hash []byte, vo *VO, ts int64, h topology.Headers) error {
	k, err := p.lks.Deserialize(kb)
	if err != nil {
		return err
	}
	v := append(bytes.Clone(hash), 0)
	if vo != nil {
		vb, err := p.rvs.Serialize(*vo)
		if err != nil {
			return err
		}
		v[hashLen] = 1
		v = append(v, vb...)
	}
	p.ctx.Forward(topology.Record[K, []byte]{Key: k, Value: v, Timestamp: ts, Headers: h})
	return nil
}

func (p *fkSubscriptions[K, KO, VO]) Process(r topology.Record[KO, []byte]) error {
	if len(r.Value) < 1+hashLen {
		return fmt.Errorf("stream: subscription record of %d bytes", len(r.Value))
	}
	op, hash, kb := r.Value[0], r.Value[1:1+hashLen], r.Value[1+hashLen:]
	fkb, err := p.rks.Serialize(r.Key)
	if err != nil {
		return err
	}
	sk := subscriptionKey(fkb, kb)
	if op == fkUnsubscribe {
		_, err := p.subs.Delete(sk)
		return err
	}
	if err := p.subs.Put(sk, bytes.Clone(hash)); err != nil {
		return err
	}
	vo, _, ok, err := p.get(r.Key)
	if err != nil {
		return err
	}
	var ptr *VO
	if ok {
		ptr = &vo
	}
	return p.respond(kb, hash, ptr, r.Timestamp, r.Headers)
}

func (p *fkSubscriptions[K, KO, VO]) Close() error { return nil }

// fkRightChanges answers every subscriber of a right key when its value
// changes.
type fkRightChanges[K, KO, VO any] struct {
	fkSubscriptions[K, KO, VO]
}

func (p *fkRightChanges[K, KO, VO]) Process(r topology.Record[KO, change[VO]]) error {
	fkb, err := p.rks.Serialize(r.Key)
	if err != nil {
		return err
	}
	prefix := subscriptionKey(fkb, nil)
	type sub struct{ kb, hash []byte }
	var subs []sub
	it := p.subs.PrefixScan(prefix)
	for it.Next() {
		subs = append(subs, sub{bytes.Clone(it.Key()[len(prefix):]), bytes.Clone(it.Value())})
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, s := range subs {
		if err := p.respond(s.kb, s.hash, r.Value.newPtr(), r.Timestamp, r.Headers); err != nil {
			return err
		}
	}
	return nil
}

// fkResolver joins a response with the left entry it answers, unless the
// entry changed since (its hash differs) or is gone.
type fkResolver[K, V, VO, VR any] struct {
	lks    serde.Serde[K]
	lvs    serde.Serde[V]
	rvs    serde.Serde[VO]
	vrs    serde.Serde[VR]
	g      *getter[K, V]
	joiner func(V, *VO) (VR, bool)
	result string

	get func(K) (V, int64, bool, error)
	w   tableWriter[K, VR]
}

func (p *fkResolver[K, V, VO, VR]) Init(ctx topology.Context[K, change[VR]]) error {
	var err error
	if p.get, err = p.g.open(ctx); err != nil {
		return err
	}
	return p.w.init(ctx, p.result, p.lks, p.vrs)
}

func (p *fkResolver[K, V, VO, VR]) Process(r topology.Record[K, []byte]) error {
	if len(r.Value) < hashLen+1 {
		return fmt.Errorf("stream: subscription response of %d bytes", len(r.Value))
	}
	v, _, ok, err := p.get(r.Key)
	if err != nil || !ok {
		return err // the left entry is gone: its result was deleted with it
	}
	vb, err := p.lvs.Serialize(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(valueHash(vb), r.Value[:hashLen]) {
		return nil // answers an older value of the entry
	}
	var vo *VO
	if r.Value[hashLen] == 1 {
		x, err := p.rvs.Deserialize(r.Value[hashLen+1:])
		if err != nil {
			return err
		}
		vo = &x
	}
	res, ok := p.joiner(v, vo)
	if !ok {
		return p.w.write(r.Key, nil, r.Timestamp, r.Headers)
	}
	return p.w.write(r.Key, &res, r.Timestamp, r.Headers)
}

func (p *fkResolver[K, V, VO, VR]) Close() error { return nil }
