package cache_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/cache"
	"github.com/runnel-dev/runnel/state/memstore"
	"github.com/runnel-dev/runnel/state/storetest"
)

func openWindow(t *testing.T, size int64, opts state.WindowOptions) state.WindowStore {
	inner, err := memstore.NewWindowStore("w", opts)
	storetest.Must(t, err)
	return cache.NewWindowStore(cache.New(size), inner, opts, nil, nil)
}

func TestWindowSuiteWriteThrough(t *testing.T) {
	storetest.TestWindowStore(t, func(t *testing.T, opts state.WindowOptions) state.WindowStore {
		return openWindow(t, 0, opts)
	})
}

// TestWindowDedup checks that a flush writes, logs and forwards one update
// per window, with the last value and the store's previous one.
func TestWindowDedup(t *testing.T) {
	opts := state.WindowOptions{Retention: time.Hour}
	inner, err := memstore.NewWindowStore("w", opts)
	storetest.Must(t, err)
	storetest.Must(t, inner.Put([]byte("a"), 0, []byte("0")))
	var updates []string
	s := cache.NewWindowStore(cache.New(1<<20), inner, opts, nil, nil)
	s.SetFlushListener(func(k, n, o []byte, ts int64) {
		key, start, _, err := state.ParseWindowChangelogKey(k)
		storetest.Must(t, err)
		updates = append(updates, fmt.Sprintf("%s@%d=%s(was %s)@%d", key, start, show(n), show(o), ts))
	})
	rec := &storetest.Recorder{}
	var ts int64
	s.SetChangeLogger(rec, func() int64 { return ts })
	for i, v := range []string{"1", "2", "3"} {
		ts = int64(i)
		storetest.Must(t, s.Put([]byte("a"), 0, []byte(v)))
		storetest.Must(t, s.Put([]byte("b"), 10, []byte(v)))
	}
	if v, _ := s.Fetch([]byte("a"), 0); string(v) != "3" {
		t.Fatalf("Fetch from cache = %q", v)
	}
	if v, _ := inner.Fetch([]byte("a"), 0); string(v) != "0" {
		t.Fatalf("write reached the store before a flush: %q", v)
	}
	storetest.Must(t, s.Flush())
	if want := []string{"a@0=3(was 0)@2", "b@10=3(was <nil>)@2"}; !reflect.DeepEqual(updates, want) {
		t.Fatalf("forwarded %v, want %v", updates, want)
	}
	if n := len(rec.Take()); n != 2 {
		t.Fatalf("logged %d changes, want 2", n)
	}
}

// TestDiscard checks that Discard drops cached writes without a trace.
func TestDiscard(t *testing.T) {
	c := cache.New(1 << 20)
	kvInner := memstore.NewKeyValueStore("kv")
	kv := cache.NewKeyValueStore(c, kvInner, nil, nil)
	winInner, err := memstore.NewWindowStore("w", state.WindowOptions{})
	storetest.Must(t, err)
	win := cache.NewWindowStore(c, winInner, state.WindowOptions{}, nil, nil)
	called := 0
	kv.SetFlushListener(func(k, n, o []byte, ts int64) { called++ })
	win.SetFlushListener(func(k, n, o []byte, ts int64) { called++ })
	rec := &storetest.Recorder{}
	kv.SetChangeLogger(rec, nil)
	win.SetChangeLogger(rec, nil)
	storetest.Must(t, kv.Put([]byte("a"), []byte("1")))
	storetest.Must(t, win.Put([]byte("a"), 5, []byte("1")))
	storetest.Must(t, kv.Discard())
	storetest.Must(t, win.Discard())
	if called != 0 || len(rec.Changes) != 0 || c.Size() != 0 {
		t.Fatalf("after Discard: %d forwards, %d logged, cache size %d", called, len(rec.Changes), c.Size())
	}
	if err := kv.Put([]byte("b"), nil); err != state.ErrClosed {
		t.Fatalf("Put after Discard: %v", err)
	}
}

// TestWindowEquivalence runs random operations against a cached window
// store and a plain one: reads agree always, and after each flush the
// listener's updates rebuild the plain store's contents.
func TestWindowEquivalence(t *testing.T) {
	opts := state.WindowOptions{Retention: 200 * time.Millisecond, SegmentInterval: 50 * time.Millisecond}
	for seed := range 10 {
		rng := rand.New(rand.NewPCG(uint64(seed), 11))
		model, err := memstore.NewWindowStore("w", opts)
		storetest.Must(t, err)
		inner, err := memstore.NewWindowStore("w", opts)
		storetest.Must(t, err)
		downstream := map[string]string{}
		s := cache.NewWindowStore(cache.New(rng.Int64N(2000)), inner, opts, func(k, n, o []byte, ts int64) {
			if n == nil {
				delete(downstream, string(k))
			} else {
				downstream[string(k)] = string(n)
			}
		}, nil)
		key := func() []byte { return []byte{byte('a' + rng.IntN(6))} }
		now, observed := int64(0), state.NoObservedTime
		for step := range 3000 {
			var m, r any
			var op string
			switch n := rng.IntN(10); {
			case n < 4:
				now += rng.Int64N(5)
				k, start, v := key(), now-rng.Int64N(300), []byte(fmt.Sprint(rng.IntN(5)))
				if rng.IntN(4) == 0 {
					v = nil
				}
				observed = max(observed, start)
				op = fmt.Sprintf("Put(%s, %d, %s)", k, start, show(v))
				m, r = model.Put(k, start, v), s.Put(k, start, v)
			case n < 5:
				k, start := key(), now-rng.Int64N(300)
				op = fmt.Sprintf("Fetch(%s, %d)", k, start)
				mv, me := model.Fetch(k, start)
				rv, re := s.Fetch(k, start)
				m, r = []any{show(mv), me}, []any{show(rv), re}
			case n < 6:
				k, from := key(), now-rng.Int64N(300)
				to := from + rng.Int64N(200)
				op = fmt.Sprintf("FetchRange(%s, %d, %d)", k, from, to)
				mv, me := storetest.ReadWindows(model.FetchRange(k, from, to))
				rv, re := storetest.ReadWindows(s.FetchRange(k, from, to))
				m, r = []any{mv, me}, []any{rv, re}
			case n < 7:
				kf, kt, from := key(), key(), now-rng.Int64N(300)
				to := from + rng.Int64N(200)
				op = fmt.Sprintf("FetchKeyRange(%s, %s, %d, %d)", kf, kt, from, to)
				mv, me := storetest.ReadWindows(model.FetchKeyRange(kf, kt, from, to))
				rv, re := storetest.ReadWindows(s.FetchKeyRange(kf, kt, from, to))
				m, r = []any{mv, me}, []any{rv, re}
			case n < 8:
				op = "All"
				mv, me := storetest.ReadWindows(model.All())
				rv, re := storetest.ReadWindows(s.All())
				m, r = []any{mv, me}, []any{rv, re}
			case n < 9:
				from := now - rng.Int64N(300)
				op = fmt.Sprintf("FetchAll(%d, %d)", from, from+100)
				mv, me := storetest.ReadWindows(model.FetchAll(from, from+100))
				rv, re := storetest.ReadWindows(s.FetchAll(from, from+100))
				m, r = []any{mv, me}, []any{rv, re}
			default:
				op = "Flush"
				storetest.Must(t, s.Flush())
				all, err := storetest.ReadWindows(model.All())
				storetest.Must(t, err)
				want := map[string]string{}
				for _, w := range all {
					want[string(state.WindowChangelogKey([]byte(w.Key), w.Start, 0))] = w.Value
				}
				// Windows that expired in the store stay in what was told downstream.
				got := maps.Clone(downstream)
				for k := range got {
					_, start, _, _ := state.ParseWindowChangelogKey([]byte(k))
					if _, ok := want[k]; !ok && state.SegmentID(start, 50) < state.MinLiveSegment(observed, opts.Retention, opts.SegmentInterval) {
						delete(got, k)
					}
				}
				m, r = want, got
			}
			if !reflect.DeepEqual(m, r) {
				t.Fatalf("seed %d step %d: %s:\nmodel  %v\ncached %v", seed, step, op, m, r)
			}
		}
	}
}

// TestWindowAppendFetch: AppendFetch gives what Fetch gives, for windows
// cached dirty, read from the store below (then cached clean), absent,
// and expired; it appends to the caller's buffer and, on a hit, allocates
// nothing.
func TestWindowAppendFetch(t *testing.T) {
	opts := state.WindowOptions{Retention: time.Minute}
	inner, err := memstore.NewWindowStore("w", opts)
	storetest.Must(t, err)
	storetest.Must(t, inner.Put([]byte("below"), 0, []byte("b0")))
	storetest.Must(t, inner.Put([]byte("empty"), 0, []byte{}))
	s := cache.NewWindowStore(cache.New(1<<20), inner, opts, nil, nil)
	af := any(s).(state.WindowAppendFetcher)
	storetest.Must(t, s.Put([]byte("dirty"), 0, []byte("d0")))
	storetest.Must(t, s.Put([]byte("gone"), 0, nil))
	check := func(key string, start int64) {
		t.Helper()
		want, err := s.Fetch([]byte(key), start)
		storetest.Must(t, err)
		for range 2 { // a miss, then (below) a hit
			got, ok, err := af.AppendFetch([]byte("x"), []byte(key), start)
			storetest.Must(t, err)
			if ok != (want != nil) || string(got) != "x"+string(want) {
				t.Fatalf("AppendFetch(%s@%d) = %q, %v; Fetch gives %q", key, start, got, ok, want)
			}
		}
	}
	for _, key := range []string{"dirty", "gone", "absent", "empty"} {
		check(key, 0)
	}
	// "below" first through AppendFetch: a miss, then cached.
	got, ok, err := af.AppendFetch(nil, []byte("below"), 0)
	if err != nil || !ok || string(got) != "b0" {
		t.Fatalf("AppendFetch(below) = %q, %v, %v", got, ok, err)
	}
	check("below", 0)
	buf, key := make([]byte, 0, 16), []byte("dirty")
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := af.AppendFetch(buf[:0], key, 0); err != nil {
			t.Fatal(err)
		}
	}); n != 0 && !raceEnabled {
		t.Fatalf("AppendFetch of a cached window: %v allocations, want 0", n)
	}
	storetest.Must(t, s.Put([]byte("late"), 10*time.Minute.Milliseconds(), []byte("l")))
	check("dirty", 0) // expired by now
}
