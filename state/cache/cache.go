// Package cache holds the record cache that sits in front of key-value and
// window stores: Kafka Streams' cache.max.bytes.buffering. Writes stay in the
// cache until a flush (the runtime flushes before every commit) or until
// the cache is over its byte budget and evicts its least recently used
// entry; so a store and its changelog, and the downstream processors the
// flush listener forwards to, see one update per key per commit instead of
// one per record.
//
// A Cache is a byte budget shared by the cached stores of one goroutine;
// neither it nor its stores are safe for concurrent use.
package cache

import (
	"bytes"
	"container/list"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/internal/treap"
)

// entryOverhead is the bytes an entry is charged beyond its key and value,
// roughly the memory of its bookkeeping.
const entryOverhead = 96

// Cache is the byte budget and least-recently-used order shared by cached
// stores.
//
// Invariant: size is the sum over entries in lru of their charge, and
// every entry in lru is in its store's map.
type Cache struct {
	max  int64
	size int64
	lru  *list.List // of *lruItem, most recently used at the front

	hits, misses int64
}

type lruItem struct {
	store flusher
	key   []byte
	bytes int64
}

// flusher is a cached store as the shared LRU order sees it. flushThrough
// writes down, in the order they were last written, the store's entries
// up to and including key's: evicting one entry also flushes the entries
// written before it, so that downstream receives a store's updates in the
// order the records that made them were processed (suppression relies on
// it: a window's update never arrives after a later window's).
type flusher interface {
	flushThrough(key []byte) error
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

// evict flushes least recently used entries until the cache is within its
// budget.
func (c *Cache) evict() error {
	for c.size > c.max && c.lru.Len() > 0 {
		it := c.lru.Back().Value.(*lruItem)
		if err := it.store.flushThrough(it.key); err != nil {
			return err
		}
	}
	return nil
}

// FlushListener receives a cached store's update when it is flushed or
// evicted: the key's new value (nil: deleted), the value it had in the
// store below before (nil: none), and the timestamp of the record that
// made the last update. The DSL forwards table updates from it. The
// slices are only valid during the call.
type FlushListener func(key, newValue, oldValue []byte, timestamp int64)

// cached is one cached write; nil value: a pending delete.
type cached struct {
	value []byte
	ts    int64
	item  *list.Element // in Cache.lru
	ord   *list.Element // in its store's write order; Value is the lru key
}

// flushThrough flushes the entries of a store's write order from its front
// through the one of key.
func flushThrough(order *list.List, key []byte, flushEntry func([]byte) error) error {
	for order.Len() > 0 {
		k := order.Front().Value.([]byte)
		if err := flushEntry(k); err != nil {
			return err
		}
		if bytes.Equal(k, key) {
			return nil
		}
	}
	return nil
}

// KeyValueStore is a state.KeyValueStore that caches writes to another.
// Reads see the cached writes; iterators merge them with the store below.
type KeyValueStore struct {
	c        *Cache
	inner    state.KeyValueStore
	entries  *treap.Map[[]byte, cached]
	order    *list.List // keys of entries, least recently written first
	listener FlushListener
	now      state.RecordTime
	flushing *cached // the entry being flushed, whose timestamp the changelog gets
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
	return &KeyValueStore{c: c, inner: inner, entries: treap.New[[]byte, cached](bytes.Compare), order: list.New(), listener: listener, now: now}
}

// Name implements state.Store.
func (s *KeyValueStore) Name() string { return s.inner.Name() }

// Flush implements state.Store: it writes every cached entry down, in the
// order they were last written, calling the listener for each, then
// flushes the store below.
func (s *KeyValueStore) Flush() error {
	for s.order.Len() > 0 {
		if err := s.flushEntry(s.order.Front().Value.([]byte)); err != nil {
			return err
		}
	}
	return s.inner.Flush()
}

func (s *KeyValueStore) flushThrough(key []byte) error {
	return flushThrough(s.order, key, s.flushEntry)
}

// Close implements state.Store: it flushes, then closes the store below.
func (s *KeyValueStore) Close() error {
	if s.closed {
		return state.ErrClosed
	}
	if err := s.Flush(); err != nil {
		return err
	}
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
	for s.entries.Len() > 0 {
		it := s.entries.Ascend(nil, false)
		it.Next()
		s.drop(it.Key())
	}
	s.closed = true
	return s.inner.Close()
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
	s.drop(key)
	lg, ok := s.inner.(state.Logged)
	if !ok {
		return s.inner.Put(key, value)
	}
	return lg.Restore(key, value)
}

func (s *KeyValueStore) drop(key []byte) {
	if e, ok := s.entries.Delete(key); ok {
		s.c.size -= e.item.Value.(*lruItem).bytes
		s.c.lru.Remove(e.item)
		s.order.Remove(e.ord)
	}
}

// flushEntry writes key's entry to the store below, tells the listener,
// and removes the entry.
func (s *KeyValueStore) flushEntry(key []byte) error {
	e, ok := s.entries.Get(key)
	if !ok {
		return nil
	}
	s.drop(key)
	old, err := s.inner.Get(key)
	if err != nil {
		return err
	}
	if e.value == nil && old == nil {
		return nil // deleting what the store below never had: no tombstone
	}
	s.flushing = &e
	err = s.inner.Put(key, e.value)
	s.flushing = nil
	if err != nil {
		return err
	}
	if s.listener != nil {
		s.listener(key, e.value, old, e.ts)
	}
	return nil
}

// Get implements state.KeyValueStore.
func (s *KeyValueStore) Get(key []byte) ([]byte, error) {
	if e, ok := s.entries.Get(nonNil(key)); ok {
		s.c.hits++
		s.c.lru.MoveToFront(e.item)
		return bytes.Clone(e.value), nil
	}
	s.c.misses++
	return s.inner.Get(key)
}

// Put implements state.KeyValueStore.
func (s *KeyValueStore) Put(key, value []byte) error {
	if s.closed {
		return state.ErrClosed
	}
	key = bytes.Clone(nonNil(key))
	value = bytes.Clone(value)
	e, ok := s.entries.Get(key)
	charge := int64(len(key) + len(value) + entryOverhead)
	if ok {
		item := e.item.Value.(*lruItem)
		s.c.size += charge - item.bytes
		item.bytes = charge
		s.c.lru.MoveToFront(e.item)
		s.order.MoveToBack(e.ord)
	} else {
		e.item = s.c.lru.PushFront(&lruItem{store: s, key: key, bytes: charge})
		e.ord = s.order.PushBack(key)
		s.c.size += charge
	}
	e.value, e.ts = value, s.now()
	s.entries.Set(key, e)
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
