// Package cache holds the record cache that sits in front of key-value and
// window stores: Kafka Streams' cache.max.bytes.buffering. Writes stay in the
// cache until a flush (the runtime flushes before every commit) or until
// the cache is over its byte budget and evicts its least recently used
// entry; so a store and its changelog, and the downstream processors the
// flush listener forwards to, see one update per key per commit instead of
// one per record.
//
// The cache also keeps clean entries: values read from the store below
// (present or absent) and values a flush wrote down. Reading a clean entry
// needs no read below, and writing over one remembers the value below, so
// that flushing the usual read-modify-write of an aggregation need not
// read the store below again to tell the listener the old value. Clean
// entries are never written down, and iterators leave them out (they are
// what the store below holds); they leave the cache by least recently used
// eviction, which for them writes nothing. The store below changes only
// through its cache (Restore drops the key's entry), so a clean entry
// stays what the store below holds (for windows, see WindowStore).
//
// A Cache is a byte budget shared by the cached stores of one goroutine;
// neither it nor its stores are safe for concurrent use.
package cache

import (
	"bytes"
	"container/list"

	"github.com/runnel-dev/runnel/state"
)

// entryOverhead is the bytes an entry is charged beyond the copies of its
// key and its value: the memory of its bookkeeping (the entry, its element
// in the LRU list, its slot in the index map, and the allocator's rounding),
// as TestChargeMatchesMemory measures it. The budget bounds memory only if
// entries are charged what they take: at 96 bytes, a cache at its budget
// took over twice the budget.
const entryOverhead = 224

// Cache is the byte budget and least-recently-used order shared by cached
// stores.
//
// Invariant: size is the sum over entries in lru of their charge, and
// every entry in lru is in its store's index.
type Cache struct {
	max  int64
	size int64
	lru  *list.List // of *entry, most recently used at the front

	hits, misses int64
}

// evicter is a cached store as the shared LRU order sees it.
type evicter interface {
	// evict removes e from the cache. A dirty e is first written down
	// with the entries written before it, in the order they were last
	// written, so that downstream receives a store's updates in the order
	// the records that made them were processed (suppression relies on
	// it: a window's update never arrives after a later window's).
	evict(e *entry) error
	// drop removes e from the cache, writing nothing.
	drop(e *entry)
}

// New returns a cache of at most maxBytes (Kafka Streams'
// cache.max.bytes.buffering; its default is 10 MiB). With maxBytes 0 every
// write goes through at once, as with caching off.
func New(maxBytes int64) *Cache {
	return &Cache{max: maxBytes, lru: list.New()}
}

// Size is the bytes the cache's entries take.
func (c *Cache) Size() int64 { return c.size }

// HitRatio is the fraction of reads the cache answered, for metrics.
func (c *Cache) HitRatio() float64 {
	if c.hits+c.misses == 0 {
		return 0
	}
	return float64(c.hits) / float64(c.hits+c.misses)
}

// evict evicts least recently used entries until the cache is within its
// budget.
func (c *Cache) evict() error {
	for c.size > c.max && c.lru.Len() > 0 {
		e := c.lru.Back().Value.(*entry)
		if err := e.store.evict(e); err != nil {
			return err
		}
	}
	return nil
}

// admitClean makes room for the clean entry e, just added at the front,
// without writing anything down: a read neither writes the store below
// nor reaches the listener. It drops clean entries from the back while the
// cache is over budget; if a dirty entry comes first, it drops e itself.
func (c *Cache) admitClean(e *entry) {
	for c.size > c.max {
		back := c.lru.Back().Value.(*entry)
		if back.ord != nil {
			back = e
		}
		back.store.drop(back)
		if back == e {
			return
		}
	}
}

// mayHold reports whether an entry with n bytes of key and value fits the
// budget at all.
func (c *Cache) mayHold(n int) bool { return int64(n+entryOverhead) <= c.max }

// recharge updates the cache's size for a change of e.
func (c *Cache) recharge(e *entry) {
	n := e.base + int64(len(e.value))
	if e.ord != nil && e.belowKnown {
		n += int64(len(e.below))
	}
	c.size += n - e.bytes
	e.bytes = n
}

// FlushListener receives a cached store's update when it is flushed or
// evicted: the key's new value (nil: deleted), the value it had in the
// store below before (nil: none), and the timestamp of the record that
// made the last update. The DSL forwards table updates from it. The
// slices are only valid during the call.
type FlushListener func(key, newValue, oldValue []byte, timestamp int64)

// entry is one cache entry. Clean (ord nil), value is what the store below
// holds. Dirty, value is a write the store below has not seen, and below,
// if belowKnown, is what the store below holds: known when the entry was
// clean before its first write. A nil value is an absent key; in a dirty
// entry, a pending delete.
//
// Invariant: a clean entry has belowKnown and below equal to value.
type entry struct {
	store evicter
	mk    string // key in its store's index
	key   []byte // KeyValueStore: the key; WindowStore: the window's changelog key
	start int64  // WindowStore: the window start
	base  int64  // what the entry is charged beyond its value (and below)
	bytes int64  // what the entry is charged

	value      []byte
	below      []byte
	belowKnown bool
	ts         int64 // of the record that made the last write

	item *list.Element // in Cache.lru; nil once removed
	ord  *list.Element // in its store's write order; nil: clean
}

// table is the entries of one cached store.
//
// Invariant: index holds the entries of the store in Cache.lru, and order
// exactly those of them that are dirty.
type table struct {
	c     *Cache
	index map[string]*entry
	order *list.List // of *entry, least recently written first
}

func newTable(c *Cache) table {
	return table{c: c, index: map[string]*entry{}, order: list.New()}
}

// write makes e, new or in the cache, hold value written at ts.
func (t *table) write(e *entry, value []byte, ts int64) {
	switch {
	case e.item == nil: // new: what the store below holds is unknown
		e.item = t.c.lru.PushFront(e)
		e.ord = t.order.PushBack(e)
		t.index[e.mk] = e
	case e.ord == nil: // clean: below stays known
		e.below, e.belowKnown = e.value, true
		e.ord = t.order.PushBack(e)
		t.c.lru.MoveToFront(e.item)
	default:
		t.order.MoveToBack(e.ord)
		t.c.lru.MoveToFront(e.item)
	}
	e.value, e.ts = value, ts
	t.c.recharge(e)
}

// copyValue returns a copy of value for the next write of e, which is
// nil for a new entry: into the memory of e's value when nothing else can
// hold that, else new. Something else can when e is clean (its value is
// also what it remembers as below), when snapshot is set (the dirty index
// is kept, and iterators may hold its values), or past the write (a
// value the listener got was only valid during the call). A store's
// repeated writes of one key between flushes, an aggregation's, then
// copy without allocating.
func copyValue(e *entry, value []byte, snapshot bool) []byte {
	if value != nil && e != nil && e.ord != nil && !snapshot && e.value != nil && cap(e.value) >= len(value) {
		return append(e.value[:0], value...)
	}
	return bytes.Clone(value)
}

// addClean puts the new entry e in the cache, clean with value read from
// the store below, if it fits without writing anything down.
func (t *table) addClean(e *entry, value []byte) {
	e.value, e.below, e.belowKnown = value, value, true
	e.item = t.c.lru.PushFront(e)
	t.index[e.mk] = e
	t.c.recharge(e)
	t.c.admitClean(e)
}

// hit returns the entry of mk, if any, as most recently used.
func (t *table) hit(mk []byte) *entry {
	e := t.index[string(mk)]
	if e != nil {
		t.c.hits++
		t.c.lru.MoveToFront(e.item)
	}
	return e
}

// cleaned makes the dirty e clean: the store below now holds its value.
func (t *table) cleaned(e *entry) {
	t.order.Remove(e.ord)
	e.ord = nil
	e.below, e.belowKnown = e.value, true
	t.c.recharge(e)
}

// remove takes e out of the cache.
func (t *table) remove(e *entry) {
	if e.item == nil {
		return
	}
	delete(t.index, e.mk)
	t.c.lru.Remove(e.item)
	if e.ord != nil {
		t.order.Remove(e.ord)
	}
	t.c.size -= e.bytes
	e.item, e.ord, e.bytes = nil, nil, 0
}

// flushThrough flushes the entries of the write order from its front
// through victim. flush must take the entry it is given out of the order.
func (t *table) flushThrough(victim *entry, flush func(*entry) error) error {
	for t.order.Len() > 0 {
		e := t.order.Front().Value.(*entry)
		if err := flush(e); err != nil {
			return err
		}
		if e == victim {
			return nil
		}
	}
	return nil
}

// evict implements evicter.evict for a store whose flush is flush and drop
// drop.
func (t *table) evict(e *entry, flush func(*entry) error, drop func(*entry)) error {
	if e.ord != nil {
		if err := t.flushThrough(e, flush); err != nil {
			return err
		}
	}
	// Unless the listener wrote e again while it was flushed.
	if e.item != nil && e.ord == nil {
		drop(e)
	}
	return nil
}

// KeyValueStore is a state.KeyValueStore that caches writes to another,
// and values read from it. Reads see the cached writes; iterators merge
// them with the store below.
type KeyValueStore struct {
	table
	inner    state.KeyValueStore
	dirty    dirtyIndex[[]byte] // values of the dirty entries, for iterators
	listener FlushListener
	now      state.RecordTime
	flushing *entry // the entry being flushed, whose timestamp the changelog gets
	closed   bool
}

var (
	_ state.KeyValueStore = (*KeyValueStore)(nil)
	_ state.Logged        = (*KeyValueStore)(nil)
)

// NewKeyValueStore puts a cache in front of inner. listener, if not nil,
// receives every flushed update; now gives the timestamp of the record
// being processed (nil: 0), which cache entries keep for the listener and
// the changelog. Install a changelog with SetChangeLogger on the returned
// store, not on inner.
func NewKeyValueStore(c *Cache, inner state.KeyValueStore, listener FlushListener, now state.RecordTime) *KeyValueStore {
	if now == nil {
		now = func() int64 { return 0 }
	}
	return &KeyValueStore{table: newTable(c), inner: inner, dirty: newDirtyIndex(bytes.Compare, func(e *entry) []byte { return e.key }), listener: listener, now: now}
}

// Name implements state.Store.
func (s *KeyValueStore) Name() string { return s.inner.Name() }

// Flush implements state.Store: it writes every dirty entry down, in the
// order they were last written, calling the listener for each, then
// flushes the store below. The entries stay in the cache, clean.
func (s *KeyValueStore) Flush() error {
	for s.order.Len() > 0 {
		if err := s.flushEntry(s.order.Front().Value.(*entry)); err != nil {
			return err
		}
	}
	s.dirty.release(s.order)
	return s.inner.Flush()
}

func (s *KeyValueStore) evict(e *entry) error { return s.table.evict(e, s.flushEntry, s.drop) }

// Close implements state.Store: it flushes, then closes the store below.
func (s *KeyValueStore) Close() error {
	if s.closed {
		return state.ErrClosed
	}
	if err := s.Flush(); err != nil {
		return err
	}
	s.dropAll()
	s.closed = true
	return s.inner.Close()
}

// Discard closes the store dropping its cached writes: they reach neither
// the store below, nor its changelog, nor the listener. The runtime uses it
// when an exactly-once transaction aborts, after which the task's state is
// rebuilt from its committed changelog.
func (s *KeyValueStore) Discard() error {
	if s.closed {
		return state.ErrClosed
	}
	s.dropAll()
	s.closed = true
	return s.inner.Close()
}

func (s *KeyValueStore) dropAll() {
	for _, e := range s.index {
		s.drop(e)
	}
}

// SetFlushListener makes l receive the updates later flushes and evictions
// write (nil: none), replacing the listener given to NewKeyValueStore. The
// DSL's processors install theirs when they are initialized, after the
// task made the store.
func (s *KeyValueStore) SetFlushListener(l FlushListener) { s.listener = l }

// SetChangeLogger implements state.Logged by installing l on the store
// below, stamping the records a flush writes with their entry's timestamp.
func (s *KeyValueStore) SetChangeLogger(l state.ChangeLogger, now state.RecordTime) {
	if now == nil {
		now = func() int64 { return 0 }
	}
	s.now = now
	if lg, ok := s.inner.(state.Logged); ok {
		lg.SetChangeLogger(l, func() int64 {
			if s.flushing != nil {
				return s.flushing.ts
			}
			return now()
		})
	}
}

// Restore implements state.Logged. It drops any cached entry of key.
func (s *KeyValueStore) Restore(key, value []byte) error {
	if e := s.index[string(key)]; e != nil {
		s.drop(e)
	}
	lg, ok := s.inner.(state.Logged)
	if !ok {
		return s.inner.Put(key, value)
	}
	return lg.Restore(key, value)
}

// drop implements evicter.
func (s *KeyValueStore) drop(e *entry) {
	if e.ord != nil {
		s.dirty.delete(e)
	}
	s.remove(e)
}

// flushEntry writes the dirty e to the store below, tells the listener,
// and leaves e clean. The listener gets the value below e remembered, if
// it did; else the store below is read for it.
func (s *KeyValueStore) flushEntry(e *entry) error {
	old := e.below
	if !e.belowKnown {
		var err error
		if old, err = s.inner.Get(e.key); err != nil {
			s.drop(e)
			return err
		}
	}
	// e is clean before the store below and the listener see it: they may
	// read this store, or write it again.
	s.dirty.delete(e)
	s.cleaned(e)
	if e.value == nil && old == nil {
		return nil // deleting what the store below never had: no tombstone
	}
	key, value, ts := e.key, e.value, e.ts
	s.flushing = e
	err := s.inner.Put(key, value)
	s.flushing = nil
	if err != nil {
		s.drop(e) // what the store below holds is unknown
		return err
	}
	if s.listener != nil {
		s.listener(key, value, old, ts)
	}
	return nil
}

// Get implements state.KeyValueStore. A miss is kept as a clean entry if
// it fits without writing anything down.
func (s *KeyValueStore) Get(key []byte) ([]byte, error) {
	if e := s.hit(key); e != nil {
		return bytes.Clone(e.value), nil
	}
	s.c.misses++
	v, err := s.inner.Get(key)
	if err != nil || s.closed || !s.c.mayHold(len(key)+len(v)) {
		return v, err
	}
	k := bytes.Clone(nonNil(key))
	s.addClean(&entry{store: s, mk: string(k), key: k, base: int64(2*len(k) + entryOverhead)}, bytes.Clone(v))
	return v, nil
}

// Put implements state.KeyValueStore.
func (s *KeyValueStore) Put(key, value []byte) error {
	if s.closed {
		return state.ErrClosed
	}
	e := s.index[string(key)]
	value = copyValue(e, value, s.dirty.m != nil)
	if e == nil {
		k := bytes.Clone(nonNil(key))
		e = &entry{store: s, mk: string(k), key: k, base: int64(2*len(k) + entryOverhead)}
	}
	s.write(e, value, s.now())
	s.dirty.set(e)
	return s.c.evict()
}

// PutIfAbsent implements state.KeyValueStore.
func (s *KeyValueStore) PutIfAbsent(key, value []byte) ([]byte, error) {
	old, err := s.Get(key)
	if err != nil || old != nil || value == nil {
		return old, err
	}
	return nil, s.Put(key, value)
}

// Delete implements state.KeyValueStore.
func (s *KeyValueStore) Delete(key []byte) ([]byte, error) {
	old, err := s.Get(key)
	if err != nil {
		return nil, err
	}
	return old, s.Put(key, nil)
}

// ApproximateNumEntries implements state.KeyValueStore by counting the
// merged view.
func (s *KeyValueStore) ApproximateNumEntries() (int64, error) {
	it := s.All()
	var n int64
	for it.Next() {
		n++
	}
	return n, it.Close()
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
