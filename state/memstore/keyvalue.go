package memstore

import (
	"bytes"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/internal/treap"
)

// KeyValueStore is an in-memory state.KeyValueStore and state.Logged.
type KeyValueStore struct {
	name   string
	m      *treap.Map[[]byte, []byte]
	log    state.ChangeLogger
	now    state.RecordTime
	closed bool
}

var (
	_ state.KeyValueStore = (*KeyValueStore)(nil)
	_ state.Logged        = (*KeyValueStore)(nil)
)

// NewKeyValueStore returns an empty in-memory key-value store.
func NewKeyValueStore(name string) *KeyValueStore {
	return &KeyValueStore{name: name, m: treap.New[[]byte, []byte](bytes.Compare)}
}

// Name implements state.Store.
func (s *KeyValueStore) Name() string { return s.name }

// Flush implements state.Store; an in-memory store buffers nothing.
func (s *KeyValueStore) Flush() error { return s.check() }

// Close implements state.Store and drops the store's contents.
func (s *KeyValueStore) Close() error {
	if s.closed {
		return state.ErrClosed
	}
	s.closed = true
	s.m.Clear()
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

// Restore implements state.Logged.
func (s *KeyValueStore) Restore(key, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	s.write(key, value)
	return nil
}

// write sets or, for a nil value, deletes key, and returns the old value.
func (s *KeyValueStore) write(key, value []byte) []byte {
	if value == nil {
		old, _ := s.m.Delete(key)
		return old
	}
	old, _ := s.m.Set(bytes.Clone(nonNil(key)), bytes.Clone(value))
	return old
}

func (s *KeyValueStore) logged(key, value []byte) {
	if s.log != nil {
		s.log.LogChange(nonNil(key), value, s.now())
	}
}

// Get implements state.KeyValueStore.
func (s *KeyValueStore) Get(key []byte) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	v, _ := s.m.Get(nonNil(key))
	return bytes.Clone(v), nil
}

// Put implements state.KeyValueStore.
func (s *KeyValueStore) Put(key, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	s.write(key, value)
	s.logged(key, value)
	return nil
}

// PutIfAbsent implements state.KeyValueStore.
func (s *KeyValueStore) PutIfAbsent(key, value []byte) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if old, ok := s.m.Get(nonNil(key)); ok {
		return bytes.Clone(old), nil
	}
	if value != nil {
		s.write(key, value)
		s.logged(key, value)
	}
	return nil, nil
}

// Delete implements state.KeyValueStore.
func (s *KeyValueStore) Delete(key []byte) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	old := s.write(key, nil)
	s.logged(key, nil)
	return old, nil
}

// Range implements state.KeyValueStore.
func (s *KeyValueStore) Range(from, to []byte) state.Iterator {
	return s.iter(from, to, false)
}

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
	return &kvIter{it: s.m.Ascend(prefix, true), stop: func(k []byte) bool { return !bytes.HasPrefix(k, prefix) }}
}

func (s *KeyValueStore) iter(from, to []byte, reverse bool) state.Iterator {
	if err := s.check(); err != nil {
		return &kvIter{err: err}
	}
	if from != nil && to != nil && bytes.Compare(from, to) > 0 {
		return &kvIter{}
	}
	if reverse {
		return &kvIter{it: s.m.Descend(to, to != nil), stop: func(k []byte) bool { return from != nil && bytes.Compare(k, from) < 0 }}
	}
	return &kvIter{it: s.m.Ascend(from, from != nil), stop: func(k []byte) bool { return to != nil && bytes.Compare(k, to) > 0 }}
}

// ApproximateNumEntries implements state.KeyValueStore; the count is exact.
func (s *KeyValueStore) ApproximateNumEntries() (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	return int64(s.m.Len()), nil
}

// kvIter adapts a treap iterator, ending at the first key stop rejects.
type kvIter struct {
	it   *treap.Iter[[]byte, []byte]
	stop func([]byte) bool
	err  error
	done bool
}

func (i *kvIter) Next() bool {
	if i.it == nil || i.done || !i.it.Next() || i.stop(i.it.Key()) {
		i.done = true
		return false
	}
	return true
}

func (i *kvIter) Key() []byte   { return i.it.Key() }
func (i *kvIter) Value() []byte { return i.it.Value() }
func (i *kvIter) Err() error    { return i.err }
func (i *kvIter) Close() error  { i.done = true; return i.err }

// nonNil makes the nil key the empty key.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
