package cache

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math"

	"github.com/runnel-dev/runnel/state"
)

// windowKey orders cached windows as window stores return them: by key
// bytes, then start.
type windowKey struct {
	key   []byte
	start int64
}

func compareWindowKeys(a, b windowKey) int {
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Compare(a.start, b.start)
}

// WindowStore is a state.WindowStore that caches writes to another, one
// entry per (key, window start): between flushes, a window updated by many
// records reaches the store below, its changelog and the listener once.
// It also caches the windows read from the store below. Reads see the
// cached writes; iterators merge them with the store below.
//
// A clean entry of a window the cache holds live is what the store below
// holds: the store below expires windows as its observed stream time
// advances, which it does only through writes and restores that pass
// through the cache, which observed them first. Its observed time can be
// ahead of the cache's from the start, though (a store reopened on disk
// keeps its own): a flushed write it ignores for that reason is not kept
// as clean (see writeTap).
//
// A read of a window the cache does not hold reaches the store below only
// if that store may hold it (see belowUpTo): an aggregation's first read
// of each new window, most of a hopping window's reads, costs no point
// read below.
//
// Stores that retain duplicates (stream-stream join buffers) are not
// cached: their writes go through at once.
type WindowStore struct {
	table
	inner    state.WindowStore
	opts     state.WindowOptions
	dirty    dirtyIndex[windowKey] // values of the dirty entries, for iterators
	listener FlushListener
	now      state.RecordTime
	flushing *entry
	tap      *writeTap // on the store below if it is Logged; nil: it is not, or is not cached
	observed int64     // largest window start put or restored
	// belowUpTo bounds the windows of the store below that the cache
	// does not hold: it is the store's observed time when the cache
	// opened (math.MaxInt64 for a store that does not tell it), raised to
	// the start of every window restored and of every entry dropped
	// while the store below may hold its window.
	//
	// Invariant: every window the store below holds whose start is after
	// belowUpTo has an entry in the index.
	belowUpTo int64
	closed    bool
	scratch   []byte // for index keys
	// last is the entry the last read found or made: an aggregation's
	// write follows its read of the same window, and finds the entry
	// here without a second lookup in the index. It may have left the
	// cache since (item nil).
	last *entry
}

var (
	_ state.WindowAppendFetcher = (*WindowStore)(nil)
	_ state.WindowStore         = (*WindowStore)(nil)
	_ state.Logged              = (*WindowStore)(nil)
)

// NewWindowStore puts a cache in front of inner, which was opened with
// opts. The listener receives flushed updates with keys in the window
// changelog layout (state.WindowChangelogKey with seq 0); now is as for
// NewKeyValueStore.
func NewWindowStore(c *Cache, inner state.WindowStore, opts state.WindowOptions, listener FlushListener, now state.RecordTime) *WindowStore {
	if now == nil {
		now = func() int64 { return 0 }
	}
	s := &WindowStore{
		table: newTable(c), inner: inner, opts: opts.EnsureDefaults(), listener: listener, now: now,
		observed: state.NoObservedTime, belowUpTo: math.MaxInt64,
	}
	if ot, ok := inner.(state.ObservedTimer); ok && !s.opts.RetainDuplicates { // else writes go through
		s.belowUpTo = ot.ObservedTime()
	}
	s.dirty = newDirtyIndex(compareWindowKeys, func(e *entry) windowKey { return windowKey{s.keyOf(e), e.start} })
	if lg, ok := inner.(state.Logged); ok && !s.opts.RetainDuplicates {
		s.tap = &writeTap{}
		lg.SetChangeLogger(s.tap, s.stamp)
	}
	return s
}

// writeTap is the ChangeLogger the cache installs on a Logged store below
// to learn whether a write it flushes is made. A window store ignores a
// write to a window it has expired, and its observed stream time can be
// ahead of the cache's: a store reopened on disk keeps its own, while the
// cache starts afresh. A Logged store logs exactly the writes it makes.
type writeTap struct {
	l     state.ChangeLogger // the runtime's; nil: none
	wrote bool
}

// LogChange implements state.ChangeLogger.
func (t *writeTap) LogChange(key, value []byte, timestamp int64) {
	t.wrote = true
	if t.l != nil {
		t.l.LogChange(key, value, timestamp)
	}
}

// stamp is the timestamp of the store below's changelog records: the
// flushed entry's.
func (s *WindowStore) stamp() int64 {
	if s.flushing != nil {
		return s.flushing.ts
	}
	return s.now()
}

// Name implements state.Store.
func (s *WindowStore) Name() string { return s.inner.Name() }

// SetFlushListener replaces the listener (see KeyValueStore.SetFlushListener).
func (s *WindowStore) SetFlushListener(l FlushListener) { s.listener = l }

// expired reports whether windows starting at start are past retention.
func (s *WindowStore) expired(start int64) bool {
	seg := state.SegmentID(start, s.opts.SegmentInterval.Milliseconds())
	return seg < state.MinLiveSegment(s.observed, s.opts.Retention, s.opts.SegmentInterval)
}

func (s *WindowStore) observe(start int64) {
	if s.observed == state.NoObservedTime || start > s.observed {
		s.observed = start
	}
}

// Put implements state.WindowStore.
func (s *WindowStore) Put(key []byte, start int64, value []byte) error {
	if s.closed {
		return state.ErrClosed
	}
	if s.opts.RetainDuplicates {
		return s.inner.Put(key, start, value)
	}
	s.observe(start)
	if s.expired(start) {
		return nil
	}
	e := s.lookup(key, start)
	value = copyValue(e, value, s.dirty.m != nil)
	if e == nil {
		e = s.newEntry(key, start)
		// Its flush need not read what it replaces below.
		e.belowKnown = !s.mayBeBelow(start)
	}
	s.write(e, value, s.now())
	s.dirty.set(e)
	return s.c.evict()
}

// lookup returns the cached entry of key's window at start, or nil.
func (s *WindowStore) lookup(key []byte, start int64) *entry {
	if e := s.last; e != nil && e.item != nil && e.start == start && bytes.Equal(s.keyOf(e), key) {
		return e
	}
	return s.index[string(s.indexKey(key, start))]
}

// hit returns the cached entry of key's window at start, if any, as most
// recently used, and remembers it as the last read's.
func (s *WindowStore) hit(key []byte, start int64) *entry {
	e := s.table.hit(s.indexKey(key, start))
	if e != nil {
		s.last = e
	}
	return e
}

// addClean caches what a read found below (see table.addClean) and
// remembers the entry as the last read's.
func (s *WindowStore) addClean(e *entry, value []byte) {
	s.table.addClean(e, value)
	s.last = e
}

// indexKey is the key in the index of key's window at start, in scratch.
func (s *WindowStore) indexKey(key []byte, start int64) []byte {
	s.scratch = binary.BigEndian.AppendUint64(append(s.scratch[:0], key...), uint64(start))
	return s.scratch
}

// newEntry returns an entry, not yet in the cache, for key's window at
// start.
func (s *WindowStore) newEntry(key []byte, start int64) *entry {
	ck := state.WindowChangelogKey(key, start, 0)
	mk := string(s.indexKey(key, start))
	return &entry{
		store: s, mk: mk, key: ck, start: start,
		base: int64(len(mk) + len(ck) + entryOverhead),
	}
}

// keyOf returns the key of e's window, which its changelog key begins with.
func (s *WindowStore) keyOf(e *entry) []byte {
	n := len(e.key) - 12
	return e.key[:n:n]
}

// mayBeBelow reports whether the store below may hold a window starting
// at start that the cache does not hold.
func (s *WindowStore) mayBeBelow(start int64) bool { return start <= s.belowUpTo }

// forget notes that the store below may hold a window at start that the
// cache no longer holds.
func (s *WindowStore) forget(start int64) { s.belowUpTo = max(s.belowUpTo, start) }

// drop implements evicter. Only a clean entry of an absent window leaves
// nothing below that the cache does not know of.
func (s *WindowStore) drop(e *entry) {
	if e.ord != nil || e.value != nil {
		s.forget(e.start)
	}
	if e.ord != nil {
		s.dirty.delete(e)
	}
	s.remove(e)
}

func (s *WindowStore) evict(e *entry) error { return s.table.evict(e, s.flushEntry, s.drop) }

// flushEntry writes the dirty e down, tells the listener and leaves e
// clean (see KeyValueStore.flushEntry).
//
// A window that expired by the cache's observed time since it was written
// is still written down and forwarded: its update is a result downstream
// (a suppression emits it as the window's final one) that no later write
// can repeat. Expiry is the store below's business; it observed the writes
// flushed before this one only, so it takes the write unless it was
// reopened ahead of the cache. The entry is then dropped, as no read can
// want it.
func (s *WindowStore) flushEntry(e *entry) error {
	key, start := s.keyOf(e), e.start
	old := e.below
	if !e.belowKnown {
		var err error
		if old, err = s.inner.Fetch(key, start); err != nil {
			s.drop(e)
			return err
		}
	}
	s.dirty.delete(e)
	s.cleaned(e)
	if e.value == nil && old == nil {
		return nil
	}
	ck, value, ts := e.key, e.value, e.ts
	if s.tap != nil {
		s.tap.wrote = false
	}
	s.flushing = e
	err := s.inner.Put(key, start, value)
	s.flushing = nil
	if err != nil || s.tap == nil || !s.tap.wrote || s.expired(start) {
		// What the store below holds is unknown (though the entry is
		// clean now), or no read wants it.
		s.forget(start)
		s.drop(e)
	}
	if err != nil {
		return err
	}
	if s.listener != nil {
		s.listener(ck, value, old, ts)
	}
	return nil
}

// Flush implements state.Store: it writes every dirty window down, in
// the order they were last written, calling the listener for each, then
// flushes the store below. The entries stay in the cache, clean.
func (s *WindowStore) Flush() error {
	for s.order.Len() > 0 {
		if err := s.flushEntry(s.order.Front().Value.(*entry)); err != nil {
			return err
		}
	}
	s.dirty.release(s.order)
	return s.inner.Flush()
}

// Close implements state.Store: it flushes, then closes the store below.
func (s *WindowStore) Close() error {
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

func (s *WindowStore) dropAll() {
	for _, e := range s.index {
		s.drop(e)
	}
}

// Discard closes the store dropping its cached writes (see
// KeyValueStore.Discard).
func (s *WindowStore) Discard() error {
	if s.closed {
		return state.ErrClosed
	}
	s.dropAll()
	s.closed = true
	return s.inner.Close()
}

// SetChangeLogger implements state.Logged (see KeyValueStore.SetChangeLogger).
func (s *WindowStore) SetChangeLogger(l state.ChangeLogger, now state.RecordTime) {
	if now == nil {
		now = func() int64 { return 0 }
	}
	s.now = now
	if s.tap != nil {
		s.tap.l = l
	} else if lg, ok := s.inner.(state.Logged); ok {
		lg.SetChangeLogger(l, s.stamp)
	}
}

// Restore implements state.Logged. It drops any cached entry of the window.
func (s *WindowStore) Restore(key, value []byte) error {
	k, start, _, err := state.ParseWindowChangelogKey(key)
	if err != nil {
		return err
	}
	if e := s.index[string(s.indexKey(k, start))]; e != nil {
		s.drop(e)
	}
	s.forget(start)
	s.observe(start)
	lg, ok := s.inner.(state.Logged)
	if !ok {
		return s.inner.Put(k, start, value)
	}
	return lg.Restore(key, value)
}

// Fetch implements state.WindowStore. A miss is kept as a clean entry if
// it fits without writing anything down.
func (s *WindowStore) Fetch(key []byte, start int64) ([]byte, error) {
	if s.expired(start) {
		return nil, nil
	}
	if e := s.hit(key, start); e != nil {
		return bytes.Clone(e.value), nil
	}
	s.c.misses++
	var v []byte
	var err error
	if s.mayBeBelow(start) {
		v, err = s.inner.Fetch(key, start)
	}
	if err != nil || s.closed || s.opts.RetainDuplicates || !s.c.mayHold(len(key)+8+len(v)) {
		return v, err
	}
	s.addClean(s.newEntry(key, start), bytes.Clone(v))
	return v, nil
}

// AppendFetch implements state.WindowAppendFetcher: Fetch without the
// copy of a cached value, and, on a miss, keeping the store's own copy.
func (s *WindowStore) AppendFetch(dst, key []byte, start int64) ([]byte, bool, error) {
	if s.expired(start) {
		return dst, false, nil
	}
	if e := s.hit(key, start); e != nil {
		if e.value == nil {
			return dst, false, nil
		}
		return append(dst, e.value...), true, nil
	}
	s.c.misses++
	var v []byte
	if s.mayBeBelow(start) {
		var err error
		if v, err = s.inner.Fetch(key, start); err != nil {
			return dst, false, err
		}
	}
	if !s.closed && !s.opts.RetainDuplicates && s.c.mayHold(len(key)+8+len(v)) {
		s.addClean(s.newEntry(key, start), v) // Fetch's result is the caller's
	}
	if v == nil {
		return dst, false, nil
	}
	return append(dst, v...), true, nil
}

// FetchRange implements state.WindowStore.
func (s *WindowStore) FetchRange(key []byte, timeFrom, timeTo int64) state.WindowIterator {
	key = nonNil(key)
	return s.merge(key, key, timeFrom, timeTo, s.inner.FetchRange(key, timeFrom, timeTo))
}

// FetchKeyRange implements state.WindowStore.
func (s *WindowStore) FetchKeyRange(keyFrom, keyTo []byte, timeFrom, timeTo int64) state.WindowIterator {
	return s.merge(keyFrom, keyTo, timeFrom, timeTo, s.inner.FetchKeyRange(keyFrom, keyTo, timeFrom, timeTo))
}

// FetchAll implements state.WindowStore.
func (s *WindowStore) FetchAll(timeFrom, timeTo int64) state.WindowIterator {
	return s.merge(nil, nil, timeFrom, timeTo, s.inner.FetchAll(timeFrom, timeTo))
}

// All implements state.WindowStore.
func (s *WindowStore) All() state.WindowIterator {
	return s.merge(nil, nil, math.MinInt64, math.MaxInt64, s.inner.All())
}

// cachedWindow is one cached window in an iterator's snapshot.
type cachedWindow struct {
	k     windowKey
	value []byte // nil: a pending delete
}

// merge iterates over the cached windows in the key and time ranges (nil
// key bounds are unbounded) merged with the store's own iterator.
func (s *WindowStore) merge(keyFrom, keyTo []byte, timeFrom, timeTo int64, inner state.WindowIterator) state.WindowIterator {
	var snap []cachedWindow
	if keyFrom == nil || keyTo == nil || bytes.Compare(keyFrom, keyTo) <= 0 {
		it := s.dirty.sorted(s.order).Ascend(windowKey{key: nonNil(keyFrom), start: math.MinInt64}, true)
		for it.Next() {
			k := it.Key()
			if keyTo != nil && bytes.Compare(k.key, keyTo) > 0 {
				break
			}
			if k.start < timeFrom || k.start > timeTo || s.expired(k.start) {
				continue
			}
			snap = append(snap, cachedWindow{k, it.Value()})
		}
	}
	return &windowMerge{cache: snap, inner: inner, pos: -1, expired: s.expired}
}

// windowMerge merges a cache snapshot with the store's iterator; cached
// entries win, cached deletes hide the store's windows.
type windowMerge struct {
	cache    []cachedWindow
	pos      int // index of the last cache entry consumed
	inner    state.WindowIterator
	innerOK  bool
	started  bool
	useCache bool
	advInner bool
	// expired hides the store's windows that expired by the cache's
	// observed time, which runs ahead of the store's until a flush.
	expired func(start int64) bool
}

func (m *windowMerge) nextInner() {
	for m.innerOK = m.inner.Next(); m.innerOK && m.expired(m.inner.Start()); m.innerOK = m.inner.Next() {
	}
}

func (m *windowMerge) Next() bool {
	if !m.started {
		m.started = true
		m.nextInner()
	} else if m.advInner {
		m.nextInner()
	}
	m.advInner = false
	for {
		cacheOK := m.pos+1 < len(m.cache)
		switch {
		case !cacheOK && !m.innerOK:
			return false
		case !cacheOK:
			m.useCache, m.advInner = false, true
			return true
		case m.innerOK:
			c := compareWindowKeys(m.cache[m.pos+1].k, windowKey{m.inner.Key(), m.inner.Start()})
			if c > 0 {
				m.useCache, m.advInner = false, true
				return true
			}
			if c == 0 {
				m.nextInner() // the cache's entry replaces the store's
			}
		}
		m.pos++
		if m.cache[m.pos].value != nil {
			m.useCache = true
			return true
		}
	}
}

func (m *windowMerge) Key() []byte {
	if m.useCache {
		return m.cache[m.pos].k.key
	}
	return m.inner.Key()
}

func (m *windowMerge) Start() int64 {
	if m.useCache {
		return m.cache[m.pos].k.start
	}
	return m.inner.Start()
}

func (m *windowMerge) Value() []byte {
	if m.useCache {
		return m.cache[m.pos].value
	}
	return m.inner.Value()
}

func (m *windowMerge) Err() error   { return m.inner.Err() }
func (m *windowMerge) Close() error { return m.inner.Close() }
