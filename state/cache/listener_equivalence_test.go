package cache_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/cache"
	"github.com/runnel-dev/runnel/state/memstore"
	"github.com/runnel-dev/runnel/state/storetest"
)

// belowWrite is one write that reached the store below a cache, with the
// value it replaced there.
type belowWrite struct {
	Key, New, Old string
}

// recordingKV is the store below a cache in the randomized tests: it
// records every write with the value it replaced.
type recordingKV struct {
	*memstore.KeyValueStore
	writes []belowWrite
}

func (s *recordingKV) Put(key, value []byte) error {
	old, err := s.KeyValueStore.Get(key)
	if err != nil {
		return err
	}
	s.writes = append(s.writes, belowWrite{string(key), show(value), show(old)})
	return s.KeyValueStore.Put(key, value)
}

// flushOrder checks that a cache flushes the writes it holds in the order
// they were last made: when it tells the listener of a key, every key
// written before that key's last write was flushed already, unless its
// flush had nothing to write (a delete of what the store below never
// had).
type flushOrder struct {
	seq     int
	pending map[string]pendingWrite
}

type pendingWrite struct {
	seq   int
	value []byte
}

func newFlushOrder() *flushOrder { return &flushOrder{pending: map[string]pendingWrite{}} }

func (o *flushOrder) wrote(key string, value []byte) {
	o.seq++
	o.pending[key] = pendingWrite{o.seq, bytes.Clone(value)}
}

// flushed checks the flush of key; silent reports whether a pending write
// may have been flushed without a word.
func (o *flushOrder) flushed(key string, silent func(key string, w pendingWrite) bool) error {
	w, ok := o.pending[key]
	if !ok {
		return fmt.Errorf("flush of %q, which has no pending write", key)
	}
	delete(o.pending, key)
	for k, p := range o.pending {
		if p.seq < w.seq {
			if !silent(k, p) {
				return fmt.Errorf("flush of %q (write %d) before %q (write %d)", key, w.seq, k, p.seq)
			}
			delete(o.pending, k)
		}
	}
	return nil
}

// settled checks, after a Flush, that every pending write was flushed.
func (o *flushOrder) settled(silent func(key string, w pendingWrite) bool) error {
	for k, p := range o.pending {
		if !silent(k, p) {
			return fmt.Errorf("write %d of %q not flushed", p.seq, k)
		}
		delete(o.pending, k)
	}
	return nil
}

// TestListenerEquivalence runs random operations, with a budget of a few
// entries so that clean and dirty entries are evicted all along, against a
// cached key-value store and a plain one. Reads agree always; every write
// that reaches the store below is told to the listener with the value it
// replaced there, in the order of the writes; after each flush the store
// below and what the listener told equal the plain store.
func TestListenerEquivalence(t *testing.T) {
	for seed := range 40 {
		rng := rand.New(rand.NewPCG(uint64(seed), 13))
		model := memstore.NewKeyValueStore("kv")
		below := &recordingKV{KeyValueStore: memstore.NewKeyValueStore("kv")}
		for i := range 5 { // the store below starts with a few keys
			k, v := []byte{byte('a' + 2*i)}, []byte{byte('0' + i)}
			storetest.Must(t, model.Put(k, v))
			storetest.Must(t, below.KeyValueStore.Put(k, v))
		}
		budget := rng.Int64N(700)
		c := cache.New(budget)
		order := newFlushOrder()
		downstream := map[string]string{}
		var failure error
		fail := func(err error) {
			if failure == nil {
				failure = err
			}
		}
		silent := func(k string, p pendingWrite) bool {
			v, err := below.KeyValueStore.Get([]byte(k))
			return p.value == nil && v == nil && err == nil
		}
		s := cache.NewKeyValueStore(c, below, func(k, n, o []byte, ts int64) {
			want := belowWrite{string(k), show(n), show(o)}
			if len(below.writes) != 1 || below.writes[0] != want {
				fail(fmt.Errorf("listener told %v; the store below had writes %v", want, below.writes))
			}
			below.writes = below.writes[:0]
			if err := order.flushed(string(k), silent); err != nil {
				fail(err)
			}
			if n == nil {
				delete(downstream, string(k))
			} else {
				downstream[string(k)] = string(n)
			}
		}, nil)
		key := func() []byte { return []byte{byte('a' + rng.IntN(12))} }
		for step := range 3000 {
			var m, r any
			var op string
			switch n := rng.IntN(20); {
			case n < 6:
				k, v := key(), []byte(fmt.Sprint(rng.IntN(5)))
				if rng.IntN(4) == 0 {
					v = nil
				}
				op = fmt.Sprintf("Put(%s, %s)", k, show(v))
				order.wrote(string(k), v) // before: the write may be flushed at once
				m, r = model.Put(k, v), s.Put(k, v)
			case n < 8:
				k := key()
				op = fmt.Sprintf("Delete(%s)", k)
				order.wrote(string(k), nil)
				mv, me := model.Delete(k)
				rv, re := s.Delete(k)
				m, r = []any{show(mv), me}, []any{show(rv), re}
			case n < 9:
				k, v := key(), []byte("p")
				op = fmt.Sprintf("PutIfAbsent(%s)", k)
				mv, me := model.PutIfAbsent(k, v)
				if mv == nil {
					order.wrote(string(k), v)
				}
				rv, re := s.PutIfAbsent(k, v)
				m, r = []any{show(mv), me}, []any{show(rv), re}
			case n < 14:
				k := key()
				op = fmt.Sprintf("Get(%s)", k)
				mv, me := model.Get(k)
				rv, re := s.Get(k)
				m, r = []any{show(mv), me}, []any{show(rv), re}
			case n < 15:
				from, to := key(), key()
				op = fmt.Sprintf("Range(%s, %s)", from, to)
				mv, me := storetest.ReadAll(model.Range(from, to))
				rv, re := storetest.ReadAll(s.Range(from, to))
				m, r = []any{mv, me}, []any{rv, re}
			case n < 16:
				from, to := key(), key()
				op = fmt.Sprintf("ReverseRange(%s, %s)", from, to)
				mv, me := storetest.ReadAll(model.ReverseRange(from, to))
				rv, re := storetest.ReadAll(s.ReverseRange(from, to))
				m, r = []any{mv, me}, []any{rv, re}
			case n < 17:
				op = "All"
				mv, me := storetest.ReadAll(model.All())
				rv, re := storetest.ReadAll(s.All())
				m, r = []any{mv, me}, []any{rv, re}
			case n < 18 && rng.IntN(4) == 0:
				k, v := key(), []byte("r")
				if rng.IntN(3) == 0 {
					v = nil
				}
				op = fmt.Sprintf("Restore(%s, %s)", k, show(v))
				delete(order.pending, string(k)) // a cached write of k is dropped
				m, r = model.Restore(k, v), s.Restore(k, v)
				// Restoring is not forwarded: downstream restores its own state.
				if v == nil {
					delete(downstream, string(k))
				} else {
					downstream[string(k)] = string(v)
				}
			case n < 18:
				p := key()
				op = fmt.Sprintf("PrefixScan(%s)", p)
				mv, me := storetest.ReadAll(model.PrefixScan(p))
				rv, re := storetest.ReadAll(s.PrefixScan(p))
				m, r = []any{mv, me}, []any{rv, re}
			default:
				op = "Flush"
				storetest.Must(t, s.Flush())
				if err := order.settled(silent); err != nil {
					fail(err)
				}
				want, err := storetest.ReadAll(model.All())
				storetest.Must(t, err)
				got, err := storetest.ReadAll(below.KeyValueStore.All())
				storetest.Must(t, err)
				told := map[string]string{}
				for _, kv := range want {
					if _, ok := downstream[kv.Key]; ok {
						told[kv.Key] = kv.Value
					}
				}
				m, r = []any{want, told}, []any{got, downstream}
			}
			if len(below.writes) != 0 {
				fail(fmt.Errorf("writes below the listener was not told of: %v", below.writes))
			}
			if failure == nil && !reflect.DeepEqual(m, r) {
				failure = fmt.Errorf("model %v, cached %v", m, r)
			}
			if failure == nil && c.Size() > budget {
				failure = fmt.Errorf("cache size %d over budget %d", c.Size(), budget)
			}
			if failure != nil {
				t.Fatalf("seed %d step %d: %s: %v", seed, step, op, failure)
			}
		}
		storetest.Must(t, s.Close())
		if c.Size() != 0 {
			t.Fatalf("seed %d: cache size %d after Close", seed, c.Size())
		}
	}
}

// recordingWindow is recordingKV for windows; keys are in the changelog
// layout.
type recordingWindow struct {
	*memstore.WindowStore
	writes []belowWrite
}

func (s *recordingWindow) Put(key []byte, start int64, value []byte) error {
	old, err := s.WindowStore.Fetch(key, start)
	if err != nil {
		return err
	}
	s.writes = append(s.writes, belowWrite{string(state.WindowChangelogKey(key, start, 0)), show(value), show(old)})
	return s.WindowStore.Put(key, start, value)
}

// TestWindowListenerEquivalence is TestListenerEquivalence for windows,
// with expiry.
func TestWindowListenerEquivalence(t *testing.T) {
	opts := state.WindowOptions{Retention: 200 * time.Millisecond, SegmentInterval: 50 * time.Millisecond}
	for seed := range 40 {
		rng := rand.New(rand.NewPCG(uint64(seed), 17))
		model, err := memstore.NewWindowStore("w", opts)
		storetest.Must(t, err)
		inner, err := memstore.NewWindowStore("w", opts)
		storetest.Must(t, err)
		below := &recordingWindow{WindowStore: inner}
		budget := rng.Int64N(800)
		c := cache.New(budget)
		order := newFlushOrder()
		observed := state.NoObservedTime
		expired := func(start int64) bool {
			return state.SegmentID(start, 50) < state.MinLiveSegment(observed, opts.Retention, opts.SegmentInterval)
		}
		var failure error
		fail := func(err error) {
			if failure == nil {
				failure = err
			}
		}
		silent := func(ck string, p pendingWrite) bool {
			key, start, _, err := state.ParseWindowChangelogKey([]byte(ck))
			if err != nil {
				return false
			}
			v, err := inner.Fetch(key, start)
			return p.value == nil && v == nil && err == nil
		}
		s := cache.NewWindowStore(c, below, opts, func(k, n, o []byte, ts int64) {
			want := belowWrite{string(k), show(n), show(o)}
			if len(below.writes) != 1 || below.writes[0] != want {
				fail(fmt.Errorf("listener told %v; the store below had writes %v", want, below.writes))
			}
			below.writes = below.writes[:0]
			// A window written while live is flushed even if it expired
			// since: its update may be its final result downstream.
			if err := order.flushed(string(k), silent); err != nil {
				fail(err)
			}
		}, nil)
		key := func() []byte { return []byte{byte('a' + rng.IntN(4))} }
		now := int64(0)
		start := func() int64 { return now - 10*rng.Int64N(30) }
		for step := range 3000 {
			var m, r any
			var op string
			switch n := rng.IntN(20); {
			case n < 7:
				now += rng.Int64N(4)
				k, st, v := key(), start(), []byte(fmt.Sprint(rng.IntN(5)))
				if rng.IntN(4) == 0 {
					v = nil
				}
				op = fmt.Sprintf("Put(%s, %d, %s)", k, st, show(v))
				observed = max(observed, st)
				if !expired(st) {
					order.wrote(string(state.WindowChangelogKey(k, st, 0)), v)
				}
				m, r = model.Put(k, st, v), s.Put(k, st, v)
			case n < 14:
				k, st := key(), start()
				op = fmt.Sprintf("Fetch(%s, %d)", k, st)
				mv, me := model.Fetch(k, st)
				rv, re := s.Fetch(k, st)
				m, r = []any{show(mv), me}, []any{show(rv), re}
			case n < 16:
				k, from := key(), start()
				to := from + 10*rng.Int64N(20)
				op = fmt.Sprintf("FetchRange(%s, %d, %d)", k, from, to)
				mv, me := storetest.ReadWindows(model.FetchRange(k, from, to))
				rv, re := storetest.ReadWindows(s.FetchRange(k, from, to))
				m, r = []any{mv, me}, []any{rv, re}
			case n < 17:
				kf, kt, from := key(), key(), start()
				op = fmt.Sprintf("FetchKeyRange(%s, %s, %d, %d)", kf, kt, from, from+100)
				mv, me := storetest.ReadWindows(model.FetchKeyRange(kf, kt, from, from+100))
				rv, re := storetest.ReadWindows(s.FetchKeyRange(kf, kt, from, from+100))
				m, r = []any{mv, me}, []any{rv, re}
			case n < 18 && rng.IntN(3) == 0:
				k, st, v := key(), start(), []byte("r")
				if rng.IntN(3) == 0 {
					v = nil
				}
				ck := state.WindowChangelogKey(k, st, 0)
				op = fmt.Sprintf("Restore(%s, %d, %s)", k, st, show(v))
				delete(order.pending, string(ck)) // a cached write of the window is dropped
				observed = max(observed, st)
				m, r = model.Restore(ck, v), s.Restore(ck, v)
			case n < 18:
				op = "All"
				mv, me := storetest.ReadWindows(model.All())
				rv, re := storetest.ReadWindows(s.All())
				m, r = []any{mv, me}, []any{rv, re}
			default:
				op = "Flush"
				storetest.Must(t, s.Flush())
				if err := order.settled(silent); err != nil {
					fail(err)
				}
				// The store below holds the plain store's windows, and
				// windows the cache expired before the store below did.
				want, err := storetest.ReadWindows(model.All())
				storetest.Must(t, err)
				all, err := storetest.ReadWindows(inner.All())
				storetest.Must(t, err)
				var got []storetest.Window
				for _, w := range all {
					if !expired(w.Start) {
						got = append(got, w)
					}
				}
				m, r = want, got
			}
			if len(below.writes) != 0 {
				fail(fmt.Errorf("writes below the listener was not told of: %v", below.writes))
			}
			if failure == nil && !reflect.DeepEqual(m, r) {
				failure = fmt.Errorf("\nmodel  %v\ncached %v", m, r)
			}
			if failure == nil && c.Size() > budget {
				failure = fmt.Errorf("cache size %d over budget %d", c.Size(), budget)
			}
			if failure != nil {
				t.Fatalf("seed %d step %d: %s: %v", seed, step, op, failure)
			}
		}
		storetest.Must(t, s.Close())
		if c.Size() != 0 {
			t.Fatalf("seed %d: cache size %d after Close", seed, c.Size())
		}
	}
}
