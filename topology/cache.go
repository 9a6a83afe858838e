package topology

import (
	"slices"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/cache"
)

// FlushListener receives the updates a caching store deduplicated, once per
// key per flush: the key's value now and the value it had at the previous
// flush (nil when absent). Keys are in the store's changelog layout (see
// state.WindowChangelogKey). The slices are only valid during the call.
type FlushListener func(key, newValue, oldValue []byte)

// CachingStore is the optional interface of a store with a record cache in
// front: the DSL's processors register a listener and forward the updates
// it receives instead of forwarding each write, so that downstream sees one
// update per key per commit (Kafka Streams' cache.max.bytes.buffering).
type CachingStore interface {
	SetFlushListener(l FlushListener)
}

// Key-value stores are cached by package state/cache. Window stores, which
// it does not cache yet, get cachingWindow: it writes through to the store at
// once (so reads, iterators and the changelog see every write) and only
// defers and deduplicates what is forwarded downstream, which is the part
// the DSL's semantics depend on.
// TODO(state/cache): use a window cache from state/cache when it has one.

type pending struct {
	old []byte // value at the previous flush
	seq int    // order of first write since the last flush
}

type dedup struct {
	dirty    map[string]*pending
	seq      int
	listener FlushListener
}

func (d *dedup) SetFlushListener(l FlushListener) { d.listener = l }

// note records that key is about to change from old.
func (d *dedup) note(key []byte, old func() ([]byte, error)) error {
	if d.dirty == nil {
		d.dirty = map[string]*pending{}
	}
	if _, ok := d.dirty[string(key)]; ok {
		return nil
	}
	o, err := old()
	if err != nil {
		return err
	}
	d.dirty[string(key)] = &pending{old: slices.Clone(o), seq: d.seq}
	d.seq++
	return nil
}

// flush calls the listener for each dirty key, in order of first write.
func (d *dedup) flush(current func(key []byte) ([]byte, error)) error {
	if len(d.dirty) == 0 {
		return nil
	}
	keys := make([]string, 0, len(d.dirty))
	for k := range d.dirty {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return d.dirty[a].seq - d.dirty[b].seq })
	dirty := d.dirty
	d.dirty = nil
	for _, k := range keys {
		now, err := current([]byte(k))
		if err != nil {
			return err
		}
		if d.listener != nil && (now != nil || dirty[k].old != nil) {
			d.listener([]byte(k), now, dirty[k].old)
		}
	}
	return nil
}

// cachedKV lets a processor register the listener of a state/cache store
// after the task made it.
type cachedKV struct {
	*cache.KeyValueStore
	listener FlushListener
}

func (c *cachedKV) SetFlushListener(l FlushListener) { c.listener = l }

type cachingWindow struct {
	state.WindowStore
	dedup
}

func (c *cachingWindow) Put(key []byte, start int64, value []byte) error {
	ck := state.WindowChangelogKey(key, start, 0)
	if err := c.note(ck, func() ([]byte, error) { return c.WindowStore.Fetch(key, start) }); err != nil {
		return err
	}
	return c.WindowStore.Put(key, start, value)
}

func (c *cachingWindow) Flush() error {
	err := c.flush(func(ck []byte) ([]byte, error) {
		k, start, _, err := state.ParseWindowChangelogKey(ck)
		if err != nil {
			return nil, err
		}
		return c.WindowStore.Fetch(k, start)
	})
	if err != nil {
		return err
	}
	return c.WindowStore.Flush()
}

// withCache puts a cache in front of s if its kind supports one.
func withCache(c *cache.Cache, s state.Store, now state.RecordTime) state.Store {
	switch s := s.(type) {
	case state.KeyValueStore:
		kv := &cachedKV{}
		kv.KeyValueStore = cache.NewKeyValueStore(c, s, func(key, newValue, oldValue []byte, _ int64) {
			if kv.listener != nil {
				kv.listener(key, newValue, oldValue)
			}
		}, now)
		return kv
	case state.WindowStore:
		return &cachingWindow{WindowStore: s}
	}
	return s
}
