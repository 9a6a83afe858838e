package pebblestore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/runnel-dev/runnel/state"
)

// segStore is what window and session stores share: keys that begin with
// a time segment id after the store prefix, observed stream time, and the
// meta that keeps it across commits.
type segStore struct {
	b         *Batch
	name      string
	prefix    []byte
	meta      []byte
	retention time.Duration
	interval  time.Duration
	log       state.ChangeLogger
	now       state.RecordTime
	closed    bool

	// Meta, in memory; written on Commit if dirty, reloaded on Rollback.
	observed int64  // largest time put or restored
	seq      uint32 // last duplicate sequence number handed out
	minLive  int64  // segment id; older segments are deleted
	dirty    bool
}

func newSegStore(b *Batch, name string, kind byte, retention, interval time.Duration) (*segStore, error) {
	s := &segStore{
		b:         b,
		name:      name,
		prefix:    storePrefix(b.task, name, kind),
		meta:      metaKey(b.task, name, kind),
		retention: retention,
		interval:  interval,
	}
	if err := s.loadMeta(); err != nil {
		return nil, err
	}
	b.stores = append(b.stores, s)
	return s, nil
}

// loadMeta reads the committed meta.
func (s *segStore) loadMeta() error {
	s.observed, s.seq, s.minLive, s.dirty = state.NoObservedTime, 0, math.MinInt64, false
	v, err := s.b.get(s.meta)
	if err != nil || v == nil {
		return err
	}
	if len(v) != 12 {
		return fmt.Errorf("%w: meta of store %s has %d bytes", ErrCorrupt, s.name, len(v))
	}
	s.observed = int64(binary.BigEndian.Uint64(v))
	s.seq = binary.BigEndian.Uint32(v[8:])
	s.minLive = state.MinLiveSegment(s.observed, s.retention, s.interval)
	return nil
}

func (s *segStore) writeMeta(b *pebble.Batch) error {
	if !s.dirty || s.closed {
		return nil
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(s.observed))
	v = binary.BigEndian.AppendUint32(v, s.seq)
	if err := b.Set(s.meta, v, nil); err != nil {
		return fmt.Errorf("pebblestore: write meta: %w", err)
	}
	s.dirty = false
	return nil
}

func (s *segStore) check() error {
	if s.closed {
		return state.ErrClosed
	}
	return nil
}

// Name implements state.Store.
func (s *segStore) Name() string { return s.name }

// Flush implements state.Store. Writes are in the task's Batch already;
// they become durable when it commits.
func (s *segStore) Flush() error { return s.check() }

// Close implements state.Store. Uncommitted writes stay in the Batch, and
// the store's observed time is committed with them.
func (s *segStore) Close() error {
	if s.closed {
		return state.ErrClosed
	}
	if err := s.writeMeta(s.b.b); err != nil {
		return err
	}
	s.closed = true
	return nil
}

// SetChangeLogger implements state.Logged.
func (s *segStore) SetChangeLogger(l state.ChangeLogger, now state.RecordTime) {
	s.log, s.now = l, now
}

// ObservedTime implements state.ObservedTimer: the observed stream time
// of the batch, committed or not.
func (s *segStore) ObservedTime() int64 { return s.observed }

func (s *segStore) segmentOf(t int64) int64 {
	return state.SegmentID(t, s.interval.Milliseconds())
}

// observe advances observed stream time to t, deletes the segments that
// expire, and reports whether t's segment is live.
func (s *segStore) observe(t int64) (bool, error) {
	if t > s.observed {
		s.observed, s.dirty = t, true
		if live := state.MinLiveSegment(t, s.retention, s.interval); live > s.minLive {
			s.minLive = live
			if err := s.b.w.DeleteRange(s.prefix, s.segKey(live), nil); err != nil {
				return false, fmt.Errorf("pebblestore: expire: %w", err)
			}
		}
	}
	return s.segmentOf(t) >= s.minLive, nil
}

// nextSeq hands out the next duplicate sequence number.
func (s *segStore) nextSeq() uint32 {
	s.seq = (s.seq + 1) & math.MaxInt32 // Kafka's seqnum stays a non-negative int32.
	s.dirty = true
	return s.seq
}

// segKey is the prefix of segment seg's keys.
func (s *segStore) segKey(seg int64) []byte {
	return appendTime(append(make([]byte, 0, len(s.prefix)+8), s.prefix...), seg)
}

// segments lists the live segments in [lo, hi] that hold data, by seeking.
func (s *segStore) segments(lo, hi int64) ([]int64, error) {
	lo = max(lo, s.minLive)
	if lo > hi {
		return nil, nil
	}
	it, release, err := s.b.newIter(s.prefix, prefixEnd(s.prefix))
	if err != nil {
		return nil, err
	}
	defer release()
	var out []int64
	for seg := lo; it.SeekGE(s.segKey(seg)); {
		found := readTime(it.Key()[len(s.prefix):])
		if found > hi {
			break
		}
		out = append(out, found)
		if found == math.MaxInt64 {
			break
		}
		seg = found + 1
	}
	if err := it.Error(); err != nil {
		it.Close()
		return nil, err
	}
	return out, it.Close()
}

// scan opens a mergeIter over the given segments; bounds returns the
// segment-relative bounds [lower, upper) of the keys to read in each (nil
// upper: to the segment's end).
func (s *segStore) scan(segs []int64, bounds func() (lower, upper []byte)) (*mergeIter, error) {
	m := &mergeIter{cur: -1, skip: len(s.prefix) + 8}
	lower, upper := bounds()
	for _, seg := range segs {
		p := s.segKey(seg)
		lo := append(p[:len(p):len(p)], lower...)
		var hi []byte
		if upper != nil {
			hi = append(p[:len(p):len(p)], upper...)
		} else {
			hi = prefixEnd(p)
		}
		it, release, err := s.b.newIter(lo, hi)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.its = append(m.its, it)
		m.releases = append(m.releases, release)
		m.valid = append(m.valid, it.First())
	}
	return m, nil
}

// mergeIter merges iterators over segments in the order of the keys after
// their segment id: key, then times. Keys of different segments never tie.
type mergeIter struct {
	its      []*pebble.Iterator
	releases []func()
	valid    []bool
	cur      int // index of the current iterator, -1 before the first
	skip     int // store prefix and segment id
	err      error
}

// next moves to the next entry and reports whether there is one.
func (m *mergeIter) next() bool {
	if m.err != nil {
		return false
	}
	if m.cur >= 0 {
		m.valid[m.cur] = m.its[m.cur].Next()
	}
	m.cur = -1
	for i, it := range m.its {
		if !m.valid[i] {
			if err := it.Error(); err != nil {
				m.err = err
				return false
			}
			continue
		}
		if m.cur < 0 || bytes.Compare(it.Key()[m.skip:], m.its[m.cur].Key()[m.skip:]) < 0 {
			m.cur = i
		}
	}
	return m.cur >= 0
}

// suffix is the current key after the store prefix and segment id.
func (m *mergeIter) suffix() []byte { return m.its[m.cur].Key()[m.skip:] }

func (m *mergeIter) value() []byte { return nonNil(m.its[m.cur].Value()) }

// Close closes every segment iterator.
func (m *mergeIter) Close() error {
	for i, it := range m.its {
		if err := it.Close(); err != nil && m.err == nil {
			m.err = err
		}
		m.releases[i]()
	}
	m.its, m.valid, m.cur = nil, nil, -1
	return m.err
}
