package pebblestore

import (
	"bytes"
	"math"

	"github.com/runnel-dev/runnel/state"
)

// SessionStore is a state.SessionStore and state.Logged in Pebble. Its keys
// are store prefix | segment id of end | esc(key) | end | start; see the
// package doc.
type SessionStore struct {
	*segStore
}

var (
	_ state.SessionStore  = (*SessionStore)(nil)
	_ state.Logged        = (*SessionStore)(nil)
	_ state.ObservedTimer = (*SessionStore)(nil)
)

// OpenSessionStore opens the session store name of b's task. Zero options
// take their defaults (state.SessionOptions.EnsureDefaults). The options
// must be the same every time the store is opened.
func (b *Batch) OpenSessionStore(name string, opts state.SessionOptions) (*SessionStore, error) {
	opts = opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s, err := newSegStore(b, name, kindSession, opts.Retention, opts.SegmentInterval)
	if err != nil {
		return nil, err
	}
	return &SessionStore{segStore: s}, nil
}

// sessionKey is the Pebble key of key's session [start, end].
func (s *SessionStore) sessionKey(key []byte, start, end int64) []byte {
	k := appendEscaped(s.segKey(s.segmentOf(end)), key)
	return appendTime(appendTime(k, end), start)
}

func (s *SessionStore) write(key []byte, start, end int64, value []byte) error {
	if value == nil {
		return s.b.w.Delete(s.sessionKey(key, start, end), nil)
	}
	return s.b.w.Set(s.sessionKey(key, start, end), value, nil)
}

// Put implements state.SessionStore.
func (s *SessionStore) Put(key []byte, start, end int64, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if live, err := s.observe(end); !live || err != nil {
		return err
	}
	if err := s.write(key, start, end, value); err != nil {
		return err
	}
	if s.log != nil {
		s.log.LogChange(state.SessionChangelogKey(key, start, end), value, s.now())
	}
	return nil
}

// Remove implements state.SessionStore.
func (s *SessionStore) Remove(key []byte, start, end int64) error {
	return s.Put(key, start, end, nil)
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
	if live, err := s.observe(end); !live || err != nil {
		return err
	}
	return s.write(k, start, end, value)
}

// FetchSession implements state.SessionStore.
func (s *SessionStore) FetchSession(key []byte, start, end int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.segmentOf(end) < s.minLive {
		return nil, nil
	}
	return s.b.get(s.sessionKey(key, start, end))
}

// FindSessions implements state.SessionStore.
func (s *SessionStore) FindSessions(key []byte, earliestSessionEnd, latestSessionStart int64) state.SessionIterator {
	return s.find(key, key, true, earliestSessionEnd, latestSessionStart)
}

// FindSessionsRange implements state.SessionStore.
func (s *SessionStore) FindSessionsRange(keyFrom, keyTo []byte, earliestSessionEnd, latestSessionStart int64) state.SessionIterator {
	return s.find(keyFrom, keyTo, false, earliestSessionEnd, latestSessionStart)
}

// Fetch implements state.SessionStore.
func (s *SessionStore) Fetch(key []byte) state.SessionIterator {
	return s.find(key, key, true, math.MinInt64, math.MaxInt64)
}

// FetchRange implements state.SessionStore.
func (s *SessionStore) FetchRange(keyFrom, keyTo []byte) state.SessionIterator {
	return s.find(keyFrom, keyTo, false, math.MinInt64, math.MaxInt64)
}

func (s *SessionStore) find(keyFrom, keyTo []byte, oneKey bool, earliestEnd, latestStart int64) state.SessionIterator {
	if err := s.check(); err != nil {
		return &sessionIter{err: err}
	}
	if keyFrom != nil && keyTo != nil && bytes.Compare(keyFrom, keyTo) > 0 {
		return &sessionIter{}
	}
	// Sessions are segmented by end, and an end may lie anywhere after
	// earliestEnd: every later live segment may hold matches.
	segs, err := s.segments(s.segmentOf(earliestEnd), math.MaxInt64)
	if err != nil {
		return &sessionIter{err: err}
	}
	m, err := s.scan(segs, func() ([]byte, []byte) {
		return keyBounds(keyFrom, keyTo, oneKey, earliestEnd)
	})
	if err != nil {
		return &sessionIter{err: err}
	}
	return &sessionIter{m: m, earliestEnd: earliestEnd, latestStart: latestStart}
}

// sessionIter decodes a mergeIter's entries and skips the sessions that do
// not overlap [earliestEnd, latestStart].
type sessionIter struct {
	m                        *mergeIter
	earliestEnd, latestStart int64
	key                      []byte
	start, end               int64
	err                      error
}

func (i *sessionIter) Next() bool {
	for i.m != nil && i.err == nil && i.m.next() {
		var rest []byte
		i.key, rest, i.err = readEscaped(i.key[:0], i.m.suffix())
		if i.err == nil && len(rest) != 16 {
			i.err = ErrCorrupt
		}
		if i.err != nil {
			return false
		}
		i.end, i.start = readTime(rest), readTime(rest[8:])
		if i.end >= i.earliestEnd && i.start <= i.latestStart {
			return true
		}
	}
	if i.m != nil && i.err == nil {
		i.err = i.m.err
	}
	return false
}

func (i *sessionIter) Key() []byte   { return i.key }
func (i *sessionIter) Start() int64  { return i.start }
func (i *sessionIter) End() int64    { return i.end }
func (i *sessionIter) Value() []byte { return i.m.value() }
func (i *sessionIter) Err() error    { return i.err }

func (i *sessionIter) Close() error {
	if i.m != nil {
		if err := i.m.Close(); i.err == nil {
			i.err = err
		}
		i.m = nil
	}
	return i.err
}
