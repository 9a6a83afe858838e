package cache

import (
	"bytes"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/internal/treap"
)

// Range implements state.KeyValueStore.
func (s *KeyValueStore) Range(from, to []byte) state.Iterator {
	return s.merge(from, to, nil, false, s.inner.Range(from, to))
}

// ReverseRange implements state.KeyValueStore.
func (s *KeyValueStore) ReverseRange(from, to []byte) state.Iterator {
	return s.merge(from, to, nil, true, s.inner.ReverseRange(from, to))
}

// All implements state.KeyValueStore.
func (s *KeyValueStore) All() state.Iterator {
	return s.merge(nil, nil, nil, false, s.inner.All())
}

// ReverseAll implements state.KeyValueStore.
func (s *KeyValueStore) ReverseAll() state.Iterator {
	return s.merge(nil, nil, nil, true, s.inner.ReverseAll())
}

// PrefixScan implements state.KeyValueStore.
func (s *KeyValueStore) PrefixScan(prefix []byte) state.Iterator {
	return s.merge(prefix, nil, nonNil(prefix), false, s.inner.PrefixScan(prefix))
}

// merge iterates over the dirty entries in [from, to] (or with prefix)
// merged with the store's own iterator: cached writes win, and cached
// deletes hide the store's keys. Clean entries are what the store's
// iterator returns already.
func (s *KeyValueStore) merge(from, to, prefix []byte, reverse bool, inner state.Iterator) state.Iterator {
	m := &mergeIter{inner: inner, reverse: reverse}
	if from != nil && to != nil && bytes.Compare(from, to) > 0 {
		return m // inner is empty too
	}
	if reverse {
		m.cache = s.dirty.sorted(s.order).Descend(to, to != nil)
		m.stop = func(k []byte) bool { return from != nil && bytes.Compare(k, from) < 0 }
	} else {
		m.cache = s.dirty.sorted(s.order).Ascend(from, from != nil)
		m.stop = func(k []byte) bool {
			return (to != nil && bytes.Compare(k, to) > 0) || (prefix != nil && !bytes.HasPrefix(k, prefix))
		}
	}
	return m
}

// mergeIter merges a snapshot of the cache's writes with the store's
// iterator.
type mergeIter struct {
	cache     *treap.Iter[[]byte, []byte]
	stop      func([]byte) bool
	inner     state.Iterator
	reverse   bool
	cacheOK   bool // cache is positioned on an entry
	innerOK   bool
	started   bool
	useCache  bool // the current pair is the cache's
	advCache  bool // advance cache on the next Next
	advInner  bool
	innerDone bool
	cacheDone bool
}

func (m *mergeIter) nextCache() {
	m.cacheOK = !m.cacheDone && m.cache != nil && m.cache.Next() && !m.stop(m.cache.Key())
	m.cacheDone = !m.cacheOK
}

func (m *mergeIter) nextInner() {
	m.innerOK = !m.innerDone && m.inner.Next()
	m.innerDone = !m.innerOK
}

func (m *mergeIter) Next() bool {
	if !m.started {
		m.started = true
		m.nextCache()
		m.nextInner()
	} else {
		if m.advCache {
			m.nextCache()
		}
		if m.advInner {
			m.nextInner()
		}
	}
	for {
		m.advCache, m.advInner = false, false
		switch {
		case !m.cacheOK && !m.innerOK:
			return false
		case !m.cacheOK:
			m.useCache, m.advInner = false, true
			return true
		case m.innerOK:
			c := bytes.Compare(m.cache.Key(), m.inner.Key())
			if m.reverse {
				c = -c
			}
			if c > 0 {
				m.useCache, m.advInner = false, true
				return true
			}
			m.advInner = c == 0 // the cache's entry replaces the store's
		}
		m.useCache, m.advCache = true, true
		if m.cache.Value() != nil {
			return true
		}
		// A cached delete: skip it, and the key it hides.
		m.nextCache()
		if m.advInner {
			m.nextInner()
		}
	}
}

func (m *mergeIter) Key() []byte {
	if m.useCache {
		return m.cache.Key()
	}
	return m.inner.Key()
}

func (m *mergeIter) Value() []byte {
	if m.useCache {
		return m.cache.Value()
	}
	return m.inner.Value()
}

func (m *mergeIter) Err() error { return m.inner.Err() }

func (m *mergeIter) Close() error { return m.inner.Close() }
