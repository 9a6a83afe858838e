package memstore

import (
	"math"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/internal/treap"
)

// segmented is what the in-memory window and session stores share: a
// sorted map of entries placed in time segments by timeOf (a window's
// start, a session's end), of which those that expire are dropped as soon
// as observed stream time passes them; a change logger; and the closed
// state. The stores embed it.
type segmented[K any] struct {
	name      string
	retention time.Duration
	interval  time.Duration // of the segments
	timeOf    func(K) int64
	m         *treap.Map[K, []byte]
	observed  int64 // largest entry time put or restored
	minLive   int64 // segment id; entries in older segments are gone
	log       state.ChangeLogger
	now       state.RecordTime
	closed    bool
}

func newSegmented[K any](name string, retention, interval time.Duration, compare func(a, b K) int, timeOf func(K) int64) segmented[K] {
	return segmented[K]{
		name: name, retention: retention, interval: interval, timeOf: timeOf,
		m:        treap.New[K, []byte](compare),
		observed: state.NoObservedTime,
		minLive:  math.MinInt64,
	}
}

// Name implements state.Store.
func (s *segmented[K]) Name() string { return s.name }

// Flush implements state.Store; an in-memory store buffers nothing.
func (s *segmented[K]) Flush() error { return s.check() }

// Close implements state.Store and drops the store's contents.
func (s *segmented[K]) Close() error {
	if s.closed {
		return state.ErrClosed
	}
	s.closed = true
	s.m.Clear()
	return nil
}

func (s *segmented[K]) check() error {
	if s.closed {
		return state.ErrClosed
	}
	return nil
}

// SetChangeLogger implements state.Logged.
func (s *segmented[K]) SetChangeLogger(l state.ChangeLogger, now state.RecordTime) {
	s.log, s.now = l, now
}

// ObservedTime implements state.ObservedTimer.
func (s *segmented[K]) ObservedTime() int64 { return s.observed }

// observe advances observed stream time to t, drops the segments that
// expire, and reports whether t's own segment is live.
func (s *segmented[K]) observe(t int64) bool {
	if t > s.observed {
		s.observed = t
		if live := state.MinLiveSegment(t, s.retention, s.interval); live > s.minLive {
			s.minLive = live
			s.expire()
		}
	}
	return state.SegmentID(t, s.interval.Milliseconds()) >= s.minLive
}

// expire deletes the entries in segments before minLive.
func (s *segmented[K]) expire() {
	var dead []K
	var zero K
	for it := s.m.Ascend(zero, false); it.Next(); {
		if state.SegmentID(s.timeOf(it.Key()), s.interval.Milliseconds()) < s.minLive {
			dead = append(dead, it.Key())
		}
	}
	for _, k := range dead {
		s.m.Delete(k)
	}
}
