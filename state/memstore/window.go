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
	segmented[windowKey] // windows are placed in segments by their start
	opts                 state.WindowOptions
	seq                  uint32
}

var (
	_ state.WindowStore   = (*WindowStore)(nil)
	_ state.Logged        = (*WindowStore)(nil)
	_ state.ObservedTimer = (*WindowStore)(nil)
)

// NewWindowStore returns an empty in-memory window store. Zero options take
// their defaults (state.WindowOptions.EnsureDefaults).
func NewWindowStore(name string, opts state.WindowOptions) (*WindowStore, error) {
	opts = opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &WindowStore{
		segmented: newSegmented(name, opts.Retention, opts.SegmentInterval, compareWindows, func(k windowKey) int64 { return k.start }),
		opts:      opts,
	}, nil
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
