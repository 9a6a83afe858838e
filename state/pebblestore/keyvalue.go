package pebblestore

import (
	"bytes"

	"github.com/runnel-dev/runnel/state"
)

// KeyValueStore is a state.KeyValueStore and state.Logged in Pebble. Its
// keys are its store prefix followed by the key as is.
type KeyValueStore struct {
	b      *Batch
	name   string
	prefix []byte
	log    state.ChangeLogger
	now    state.RecordTime
	closed bool
}

var (
	_ state.KeyValueStore = (*KeyValueStore)(nil)
	_ state.Logged        = (*KeyValueStore)(nil)
)

// OpenKeyValueStore opens the key-value store name of b's task.
func (b *Batch) OpenKeyValueStore(name string) *KeyValueStore {
	return &KeyValueStore{b: b, name: name, prefix: storePrefix(b.task, name, kindKeyValue)}
}

// Name implements state.Store.
func (s *KeyValueStore) Name() string { return s.name }

// Flush implements state.Store. Writes are in the task's Batch already;
// they become durable when it commits.
func (s *KeyValueStore) Flush() error { return s.check() }

// Close implements state.Store. Uncommitted writes stay in the Batch.
func (s *KeyValueStore) Close() error {
	if s.closed {
		return state.ErrClosed
	}
	s.closed = true
	return nil
}

func (s *KeyValueStore) check() error {
	if s.closed {
		return state.ErrClosed
	}
	return nil
}

// SetChangeLogger implements state.Logged.
func (s *KeyValueStore) SetChangeLogger(l state.ChangeLogger, now state.RecordTime) {
	s.log, s.now = l, now
}

func (s *KeyValueStore) key(k []byte) []byte {
	return append(s.prefix[:len(s.prefix):len(s.prefix)], k...)
}

func (s *KeyValueStore) write(key, value []byte) error {
	if value == nil {
		return s.b.w.Delete(s.key(key), nil)
	}
	return s.b.w.Set(s.key(key), value, nil)
}

func (s *KeyValueStore) logged(key, value []byte) {
	if s.log != nil {
		s.log.LogChange(nonNil(key), value, s.now())
	}
}

// Restore implements state.Logged.
func (s *KeyValueStore) Restore(key, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.write(key, value)
}

// Get implements state.KeyValueStore.
func (s *KeyValueStore) Get(key []byte) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.b.get(s.key(key))
}

// Put implements state.KeyValueStore.
func (s *KeyValueStore) Put(key, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := s.write(key, value); err != nil {
		return err
	}
	s.logged(key, value)
	return nil
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

// Range implements state.KeyValueStore.
func (s *KeyValueStore) Range(from, to []byte) state.Iterator { return s.iter(from, to, false) }

// ReverseRange implements state.KeyValueStore.
func (s *KeyValueStore) ReverseRange(from, to []byte) state.Iterator {
	return s.iter(from, to, true)
}

// All implements state.KeyValueStore.
func (s *KeyValueStore) All() state.Iterator { return s.iter(nil, nil, false) }

// ReverseAll implements state.KeyValueStore.
func (s *KeyValueStore) ReverseAll() state.Iterator { return s.iter(nil, nil, true) }

// PrefixScan implements state.KeyValueStore.
func (s *KeyValueStore) PrefixScan(prefix []byte) state.Iterator {
	if err := s.check(); err != nil {
		return &kvIter{err: err}
	}
	lower := s.key(prefix)
	return s.newIter(lower, prefixEnd(lower), false)
}

func (s *KeyValueStore) iter(from, to []byte, reverse bool) state.Iterator {
	if err := s.check(); err != nil {
		return &kvIter{err: err}
	}
	if from != nil && to != nil && bytes.Compare(from, to) > 0 {
		return &kvIter{}
	}
	lower, upper := s.prefix, prefixEnd(s.prefix)
	if from != nil {
		lower = s.key(from)
	}
	if to != nil {
		upper = append(s.key(to), 0) // the first key after to
	}
	return s.newIter(lower, upper, reverse)
}

func (s *KeyValueStore) newIter(lower, upper []byte, reverse bool) state.Iterator {
	it, release, err := s.b.newIter(lower, upper)
	if err != nil {
		return &kvIter{err: err}
	}
	return &kvIter{it: it, release: release, reverse: reverse, skip: len(s.prefix)}
}

// ApproximateNumEntries implements state.KeyValueStore by counting.
func (s *KeyValueStore) ApproximateNumEntries() (int64, error) {
	it := s.All()
	var n int64
	for it.Next() {
		n++
	}
	return n, it.Close()
}

// nonNil makes the nil key the empty key.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
