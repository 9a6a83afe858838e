package memstore

import (
	"bytes"
	"cmp"
	"math"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/internal/treap"
)

// windowKey orders windows by key, then start, then duplicate sequence.
type windowKey struct {
	key   []byte
	start int64
	seq   uint32
}

func compareWindows(a, b windowKey) int {
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c
	}
	if c := cmp.Compare(a.start, b.start); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// WindowStore is an in-memory state.WindowStore and state.Logged. Expired
// segments are dropped as soon as observed stream time passes them.
type WindowStore struct {
	name     string
	opts     state.WindowOptions
	m        *treap.Map[windowKey, []byte]
	observed int64 // largest window start put or restored
	minLive  int64 // segment id; windows in older segments are gone
	seq      uint32
	log      state.ChangeLogger
	now      state.RecordTime
	closed   bool
}

var (
	_ state.WindowStore = (*WindowStore)(nil)
	_ state.Logged      = (*WindowStore)(nil)
)

// NewWindowStore returns an empty in-memory window store. Zero options take
// their defaults (state.WindowOptions.EnsureDefaults).
func NewWindowStore(name string, opts state.WindowOptions) (*WindowStore, error) {
	opts = opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &WindowStore{
		name:     name,
		opts:     opts,
		m:        treap.New[windowKey, []byte](compareWindows),
		observed: state.NoObservedTime,
		minLive:  math.MinInt64,
	}, nil
}

// Name implements state.Store.
func (s *WindowStore) Name() string { return s.name }

// Flush implements state.Store; an in-memory store buffers nothing.
func (s *WindowStore) Flush() error { return s.check() }

// Close implements state.Store and drops the store's contents.
func (s *WindowStore) Close() error {
	if s.closed {
		return state.ErrClosed
	}
	s.closed = true
	s.m.Clear()
	return nil
}

func (s *WindowStore) check() error {
	if s.closed {
		return state.ErrClosed
	}
	return nil
}

// SetChangeLogger implements state.Logged.
func (s *WindowStore) SetChangeLogger(l state.ChangeLogger, now state.RecordTime) {
	s.log, s.now = l, now
}

// observe advances observed stream time to t, drops the segments that
// expire, and reports whether t's own segment is live.
func (s *WindowStore) observe(t int64) bool {
	if t > s.observed {
		s.observed = t
		if live := state.MinLiveSegment(t, s.opts.Retention, s.opts.SegmentInterval); live > s.minLive {
			s.minLive = live
			s.expire()
		}
	}
	return state.SegmentID(t, s.opts.SegmentInterval.Milliseconds()) >= s.minLive
}

func (s *WindowStore) expire() {
	var dead []windowKey
	for it := s.m.Ascend(windowKey{}, false); it.Next(); {
		if state.SegmentID(it.Key().start, s.opts.SegmentInterval.Milliseconds()) < s.minLive {
			dead = append(dead, it.Key())
		}
	}
	for _, k := range dead {
		s.m.Delete(k)
	}
}

// Put implements state.WindowStore.
func (s *WindowStore) Put(key []byte, start int64, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if value == nil && s.opts.RetainDuplicates {
		return nil
	}
	if !s.observe(start) {
		return nil
	}
	var seq uint32
	if s.opts.RetainDuplicates {
		s.seq = (s.seq + 1) & math.MaxInt32 // Kafka's seqnum stays non-negative as an int32.
		seq = s.seq
	}
	s.write(windowKey{nonNil(key), start, seq}, value)
	if s.log != nil {
		s.log.LogChange(state.WindowChangelogKey(key, start, seq), value, s.now())
	}
	return nil
}

func (s *WindowStore) write(k windowKey, value []byte) {
	if value == nil {
		s.m.Delete(k)
		return
	}
	k.key = bytes.Clone(k.key)
	s.m.Set(k, bytes.Clone(value))
}

// Restore implements state.Logged.
func (s *WindowStore) Restore(key, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	k, start, seq, err := state.ParseWindowChangelogKey(key)
	if err != nil {
		return err
	}
	if !s.observe(start) {
		return nil
	}
	if s.opts.RetainDuplicates && seq > s.seq {
		s.seq = seq
	}
	s.write(windowKey{k, start, seq}, value)
	return nil
}

// Fetch implements state.WindowStore.
func (s *WindowStore) Fetch(key []byte, start int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	it := s.m.Ascend(windowKey{key, start, 0}, true)
	if it.Next() && bytes.Equal(it.Key().key, key) && it.Key().start == start {
		return bytes.Clone(it.Value()), nil
	}
	return nil, nil
}

// FetchRange implements state.WindowStore.
func (s *WindowStore) FetchRange(key []byte, timeFrom, timeTo int64) state.WindowIterator {
	if err := s.check(); err != nil {
		return &windowIter{err: err}
	}
	return &windowIter{
		it:   s.m.Ascend(windowKey{key, timeFrom, 0}, true),
		stop: func(k windowKey) bool { return !bytes.Equal(k.key, key) || k.start > timeTo },
		skip: func(windowKey) bool { return false },
	}
}

// FetchKeyRange implements state.WindowStore.
func (s *WindowStore) FetchKeyRange(keyFrom, keyTo []byte, timeFrom, timeTo int64) state.WindowIterator {
	if err := s.check(); err != nil {
		return &windowIter{err: err}
	}
	if keyFrom != nil && keyTo != nil && bytes.Compare(keyFrom, keyTo) > 0 {
		return &windowIter{}
	}
	return &windowIter{
		it:   s.m.Ascend(windowKey{keyFrom, math.MinInt64, 0}, keyFrom != nil),
		stop: func(k windowKey) bool { return keyTo != nil && bytes.Compare(k.key, keyTo) > 0 },
		skip: func(k windowKey) bool { return k.start < timeFrom || k.start > timeTo },
	}
}

// FetchAll implements state.WindowStore.
func (s *WindowStore) FetchAll(timeFrom, timeTo int64) state.WindowIterator {
	return s.FetchKeyRange(nil, nil, timeFrom, timeTo)
}

// All implements state.WindowStore.
func (s *WindowStore) All() state.WindowIterator {
	return s.FetchKeyRange(nil, nil, math.MinInt64, math.MaxInt64)
}

// windowIter adapts a treap iterator: it passes over windows skip accepts
// and ends at the first window stop accepts.
type windowIter struct {
	it   *treap.Iter[windowKey, []byte]
	stop func(windowKey) bool
	skip func(windowKey) bool
	err  error
	done bool
}

func (i *windowIter) Next() bool {
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

func (i *windowIter) Key() []byte   { return i.it.Key().key }
func (i *windowIter) Start() int64  { return i.it.Key().start }
func (i *windowIter) Value() []byte { return i.it.Value() }
func (i *windowIter) Err() error    { return i.err }
func (i *windowIter) Close() error  { i.done = true; return i.err }
