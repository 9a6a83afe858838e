package pebblestore

import (
	"bytes"
	"encoding/binary"
	"math"

	"github.com/runnel-dev/runnel/state"
)

// WindowStore is a state.WindowStore and state.Logged in Pebble. Its keys
// are store prefix | segment id | esc(key) | window start | seq; see the
// package doc.
type WindowStore struct {
	*segStore
	dups bool
	// kbuf and cbuf are the last Pebble key and changelog key built,
	// reused: Pebble's batches, the bulk writer and the change logger
	// copy what they keep, so a write or a point read allocates no key.
	kbuf, cbuf []byte
}

var (
	_ state.WindowStore   = (*WindowStore)(nil)
	_ state.Logged        = (*WindowStore)(nil)
	_ state.ObservedTimer = (*WindowStore)(nil)
)

// OpenWindowStore opens the window store name of b's task. Zero options
// take their defaults (state.WindowOptions.EnsureDefaults). The options
// must be the same every time the store is opened.
func (b *Batch) OpenWindowStore(name string, opts state.WindowOptions) (*WindowStore, error) {
	opts = opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s, err := newSegStore(b, name, kindWindow, opts.Retention, opts.SegmentInterval)
	if err != nil {
		return nil, err
	}
	return &WindowStore{segStore: s, dups: opts.RetainDuplicates}, nil
}

// windowKey is the Pebble key of key's window at start with seq, valid
// until the next call.
func (s *WindowStore) windowKey(key []byte, start int64, seq uint32) []byte {
	k := appendTime(append(s.kbuf[:0], s.prefix...), s.segmentOf(start)) // segKey
	k = appendEscaped(k, key)
	k = appendTime(k, start)
	s.kbuf = binary.BigEndian.AppendUint32(k, seq)
	return s.kbuf
}

func (s *WindowStore) write(key []byte, start int64, seq uint32, value []byte) error {
	if value == nil {
		return s.b.w.Delete(s.windowKey(key, start, seq), nil)
	}
	return s.b.w.Set(s.windowKey(key, start, seq), value, nil)
}

// Put implements state.WindowStore.
func (s *WindowStore) Put(key []byte, start int64, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if value == nil && s.dups {
		return nil
	}
	if live, err := s.observe(start); !live || err != nil {
		return err
	}
	var seq uint32
	if s.dups {
		seq = s.nextSeq()
	}
	if err := s.write(key, start, seq, value); err != nil {
		return err
	}
	if s.log != nil {
		s.cbuf = state.AppendWindowChangelogKey(s.cbuf[:0], key, start, seq)
		s.log.LogChange(s.cbuf, value, s.now())
	}
	return nil
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
	if live, err := s.observe(start); !live || err != nil {
		return err
	}
	if s.dups && seq > s.seq {
		s.seq, s.dirty = seq, true
	}
	return s.write(k, start, seq, value)
}

// Fetch implements state.WindowStore.
func (s *WindowStore) Fetch(key []byte, start int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.segmentOf(start) < s.minLive {
		return nil, nil
	}
	if start > s.observed {
		// No window starting later than every one put or restored can
		// be here: an aggregation's first look at a new window needs no
		// read.
		return nil, nil
	}
	if !s.dups {
		return s.b.get(s.windowKey(key, start, 0))
	}
	it := s.FetchRange(key, start, start)
	defer it.Close()
	if it.Next() {
		return bytes.Clone(it.Value()), nil
	}
	return nil, it.Err()
}

// FetchRange implements state.WindowStore.
func (s *WindowStore) FetchRange(key []byte, timeFrom, timeTo int64) state.WindowIterator {
	return s.fetch(key, key, true, timeFrom, timeTo)
}

// FetchKeyRange implements state.WindowStore.
func (s *WindowStore) FetchKeyRange(keyFrom, keyTo []byte, timeFrom, timeTo int64) state.WindowIterator {
	return s.fetch(keyFrom, keyTo, false, timeFrom, timeTo)
}

// FetchAll implements state.WindowStore.
func (s *WindowStore) FetchAll(timeFrom, timeTo int64) state.WindowIterator {
	return s.fetch(nil, nil, false, timeFrom, timeTo)
}

// All implements state.WindowStore.
func (s *WindowStore) All() state.WindowIterator {
	return s.fetch(nil, nil, false, math.MinInt64, math.MaxInt64)
}

func (s *WindowStore) fetch(keyFrom, keyTo []byte, oneKey bool, timeFrom, timeTo int64) state.WindowIterator {
	if err := s.check(); err != nil {
		return &windowIter{err: err}
	}
	if timeFrom > timeTo || (keyFrom != nil && keyTo != nil && bytes.Compare(keyFrom, keyTo) > 0) {
		return &windowIter{}
	}
	segs, err := s.segments(s.segmentOf(timeFrom), s.segmentOf(timeTo))
	if err != nil {
		return &windowIter{err: err}
	}
	m, err := s.scan(segs, func() ([]byte, []byte) {
		return keyBounds(keyFrom, keyTo, oneKey, timeFrom)
	})
	if err != nil {
		return &windowIter{err: err}
	}
	return &windowIter{m: m, from: timeFrom, to: timeTo}
}

// keyBounds returns the segment-relative bounds of keys in [keyFrom,
// keyTo]; for one key, the lower bound starts at time from.
func keyBounds(keyFrom, keyTo []byte, oneKey bool, from int64) (lower, upper []byte) {
	if keyFrom != nil || oneKey {
		lower = appendEscaped(nil, keyFrom)
		if oneKey {
			lower = appendTime(lower, from)
		}
	}
	if keyTo != nil || oneKey {
		upper = prefixEnd(appendEscaped(nil, keyTo))
	}
	return lower, upper
}

// windowIter decodes a mergeIter's entries and skips those outside
// [from, to].
type windowIter struct {
	m        *mergeIter
	from, to int64
	key      []byte
	start    int64
	err      error
}

func (i *windowIter) Next() bool {
	for i.m != nil && i.err == nil && i.m.next() {
		var rest []byte
		i.key, rest, i.err = readEscaped(i.key[:0], i.m.suffix())
		if i.err == nil && len(rest) != 12 {
			i.err = ErrCorrupt
		}
		if i.err != nil {
			return false
		}
		if i.start = readTime(rest); i.start >= i.from && i.start <= i.to {
			return true
		}
	}
	if i.m != nil && i.err == nil {
		i.err = i.m.err
	}
	return false
}

func (i *windowIter) Key() []byte   { return i.key }
func (i *windowIter) Start() int64  { return i.start }
func (i *windowIter) Value() []byte { return i.m.value() }
func (i *windowIter) Err() error    { return i.err }

func (i *windowIter) Close() error {
	if i.m != nil {
		if err := i.m.Close(); i.err == nil {
			i.err = err
		}
		i.m = nil
	}
	return i.err
}
