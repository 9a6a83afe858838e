package memstore

import (
	"bytes"
	"cmp"
	"math"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/internal/treap"
)

// sessionKey orders sessions by key, then end, then start.
type sessionKey struct {
	key        []byte
	end, start int64
}

func compareSessions(a, b sessionKey) int {
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c
	}
	if c := cmp.Compare(a.end, b.end); c != 0 {
		return c
	}
	return cmp.Compare(a.start, b.start)
}

// SessionStore is an in-memory state.SessionStore and state.Logged.
// Expired segments are dropped as soon as observed stream time passes them.
type SessionStore struct {
	segmented[sessionKey] // sessions are placed in segments by their end
	opts                  state.SessionOptions
}

var (
	_ state.SessionStore  = (*SessionStore)(nil)
	_ state.Logged        = (*SessionStore)(nil)
	_ state.ObservedTimer = (*SessionStore)(nil)
)

// NewSessionStore returns an empty in-memory session store. Zero options
// take their defaults (state.SessionOptions.EnsureDefaults).
func NewSessionStore(name string, opts state.SessionOptions) (*SessionStore, error) {
	opts = opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &SessionStore{
		segmented: newSegmented(name, opts.Retention, opts.SegmentInterval, compareSessions, func(k sessionKey) int64 { return k.end }),
		opts:      opts,
	}, nil
}

// Put implements state.SessionStore.
func (s *SessionStore) Put(key []byte, start, end int64, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if !s.observe(end) {
		return nil
	}
	s.write(sessionKey{nonNil(key), end, start}, value)
	if s.log != nil {
		s.log.LogChange(state.SessionChangelogKey(key, start, end), value, s.now())
	}
	return nil
}

// Remove implements state.SessionStore.
func (s *SessionStore) Remove(key []byte, start, end int64) error {
	return s.Put(key, start, end, nil)
}

func (s *SessionStore) write(k sessionKey, value []byte) {
	if value == nil {
		s.m.Delete(k)
		return
	}
	k.key = bytes.Clone(k.key)
	s.m.Set(k, bytes.Clone(value))
}

// Restore implements state.Logged.
func (s *SessionStore) Restore(key, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	k, start, end, err := state.ParseSessionChangelogKey(key)
	if err != nil {
		return err
	}
	if s.observe(end) {
		s.write(sessionKey{k, end, start}, value)
	}
	return nil
}

// FetchSession implements state.SessionStore.
func (s *SessionStore) FetchSession(key []byte, start, end int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	v, _ := s.m.Get(sessionKey{nonNil(key), end, start})
	return bytes.Clone(v), nil
}

// FindSessions implements state.SessionStore.
func (s *SessionStore) FindSessions(key []byte, earliestSessionEnd, latestSessionStart int64) state.SessionIterator {
	if err := s.check(); err != nil {
		return &sessionIter{err: err}
	}
	return &sessionIter{
		it:   s.m.Ascend(sessionKey{key, earliestSessionEnd, math.MinInt64}, true),
		stop: func(k sessionKey) bool { return !bytes.Equal(k.key, key) },
		skip: func(k sessionKey) bool { return k.start > latestSessionStart },
	}
}

// FindSessionsRange implements state.SessionStore.
func (s *SessionStore) FindSessionsRange(keyFrom, keyTo []byte, earliestSessionEnd, latestSessionStart int64) state.SessionIterator {
	if err := s.check(); err != nil {
		return &sessionIter{err: err}
	}
	if keyFrom != nil && keyTo != nil && bytes.Compare(keyFrom, keyTo) > 0 {
		return &sessionIter{}
	}
	return &sessionIter{
		it:   s.m.Ascend(sessionKey{keyFrom, math.MinInt64, math.MinInt64}, keyFrom != nil),
		stop: func(k sessionKey) bool { return keyTo != nil && bytes.Compare(k.key, keyTo) > 0 },
		skip: func(k sessionKey) bool { return k.end < earliestSessionEnd || k.start > latestSessionStart },
	}
}

// Fetch implements state.SessionStore.
func (s *SessionStore) Fetch(key []byte) state.SessionIterator {
	return s.FindSessions(key, math.MinInt64, math.MaxInt64)
}

// FetchRange implements state.SessionStore.
func (s *SessionStore) FetchRange(keyFrom, keyTo []byte) state.SessionIterator {
	return s.FindSessionsRange(keyFrom, keyTo, math.MinInt64, math.MaxInt64)
}

// sessionIter adapts a treap iterator: it passes over sessions skip accepts
// and ends at the first session stop accepts.
type sessionIter struct {
	it   *treap.Iter[sessionKey, []byte]
	stop func(sessionKey) bool
	skip func(sessionKey) bool
	err  error
	done bool
}

func (i *sessionIter) Next() bool {
	for !i.done && i.it != nil && i.it.Next() {
		if k := i.it.Key(); i.stop(k) {
			break
		} else if !i.skip(k) {
			return true
		}
	}
	i.done = true
	return false
}

func (i *sessionIter) Key() []byte   { return i.it.Key().key }
func (i *sessionIter) Start() int64  { return i.it.Key().start }
func (i *sessionIter) End() int64    { return i.it.Key().end }
func (i *sessionIter) Value() []byte { return i.it.Value() }
func (i *sessionIter) Err() error    { return i.err }
func (i *sessionIter) Close() error  { i.done = true; return i.err }
