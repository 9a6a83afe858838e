package cache_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/cache"
	"github.com/runnel-dev/runnel/state/memstore"
	"github.com/runnel-dev/runnel/state/storetest"
)

func TestSuiteWriteThrough(t *testing.T) {
	storetest.TestKeyValueStore(t, func(t *testing.T) state.KeyValueStore {
		return cache.NewKeyValueStore(cache.New(0), memstore.NewKeyValueStore("kv"), nil, nil)
	})
}

func TestSuiteCached(t *testing.T) {
	for _, size := range []int64{300, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			storetest.TestKeyValueStoreData(t, func(t *testing.T) state.KeyValueStore {
				return cache.NewKeyValueStore(cache.New(size), memstore.NewKeyValueStore("kv"), nil, nil)
			})
		})
	}
}

type update struct {
	Key, New, Old string
	TS            int64
}

func show(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return string(b)
}

// TestDedup checks that a flush writes, logs and forwards one update per
// key, with the last value, the store's previous value, and the timestamp
// of the last write.
func TestDedup(t *testing.T) {
	inner := memstore.NewKeyValueStore("kv")
	storetest.Must(t, inner.Put([]byte("old"), []byte("0")))
	var updates []update
	var ts int64
	s := cache.NewKeyValueStore(cache.New(1<<20), inner, func(k, n, o []byte, ts int64) {
		updates = append(updates, update{string(k), show(n), show(o), ts})
	}, nil)
	rec := &storetest.Recorder{}
	s.SetChangeLogger(rec, func() int64 { return ts })

	ts = 1
	storetest.Must(t, s.Put([]byte("a"), []byte("1")))
	ts = 2
	storetest.Must(t, s.Put([]byte("a"), []byte("2")))
	storetest.Must(t, s.Put([]byte("old"), []byte("1")))
	ts = 3
	storetest.Must(t, s.Put([]byte("gone"), []byte("x")))
	_, err := s.Delete([]byte("gone")) // never reaches the store: nothing to say
	storetest.Must(t, err)
	if v, _ := s.Get([]byte("a")); string(v) != "2" {
		t.Fatalf("Get from cache = %q", v)
	}
	if v, _ := inner.Get([]byte("a")); v != nil {
		t.Fatalf("write reached the store before a flush: %q", v)
	}
	if len(rec.Changes) != 0 || len(updates) != 0 {
		t.Fatalf("before flush: logged %v, forwarded %v", rec.Changes, updates)
	}
	ts = 9
	storetest.Must(t, s.Flush())
	want := []update{{"a", "2", "<nil>", 2}, {"old", "1", "0", 2}}
	if !slices.Equal(updates, want) {
		t.Fatalf("forwarded %v, want %v", updates, want)
	}
	logged := fmt.Sprint(rec.Take())
	if want := `["a"="2"@2 "old"="1"@2]`; logged != want {
		t.Fatalf("logged %s, want %s", logged, want)
	}
	if v, _ := inner.Get([]byte("a")); string(v) != "2" {
		t.Fatalf("after flush store has %q", v)
	}
}

// TestEviction checks that a cache over budget flushes its least recently
// used entry, across the stores sharing it.
func TestEviction(t *testing.T) {
	c := cache.New(2*(cache.EntryOverhead+3) + 10) // two entries of 1-byte keys (held twice) and values
	var updates []string
	listener := func(k, n, o []byte, ts int64) { updates = append(updates, string(k)+"="+show(n)) }
	s1 := cache.NewKeyValueStore(c, memstore.NewKeyValueStore("one"), listener, nil)
	s2 := cache.NewKeyValueStore(c, memstore.NewKeyValueStore("two"), listener, nil)
	storetest.Must(t, s1.Put([]byte("a"), []byte("1")))
	storetest.Must(t, s2.Put([]byte("b"), []byte("1")))
	_, err := s1.Get([]byte("a")) // a is now the most recently used
	storetest.Must(t, err)
	storetest.Must(t, s1.Put([]byte("c"), []byte("1")))
	if want := []string{"b=1"}; !slices.Equal(updates, want) {
		t.Fatalf("evicted %v, want %v", updates, want)
	}
	if c.Size() > 2*(cache.EntryOverhead+3)+10 {
		t.Fatalf("cache size %d over budget", c.Size())
	}
}

// TestEquivalence runs random operations against a cached store and a
// plain one: reads must agree always, and after each flush the updates
// the listener forwarded must rebuild the plain store's contents.
func TestEquivalence(t *testing.T) {
	for seed := range 10 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		model := memstore.NewKeyValueStore("kv")
		downstream := map[string]string{} // what the listener has told
		c := cache.New(rng.Int64N(2000))
		s := cache.NewKeyValueStore(c, memstore.NewKeyValueStore("kv"), func(k, n, o []byte, ts int64) {
			if n == nil {
				delete(downstream, string(k))
			} else {
				downstream[string(k)] = string(n)
			}
		}, nil)
		key := func() []byte { return []byte{byte('a' + rng.IntN(20))} }
		for step := range 2000 {
			var m, r any
			var op string
			switch n := rng.IntN(10); {
			case n < 4:
				k, v := key(), []byte(fmt.Sprint(rng.IntN(5)))
				if rng.IntN(4) == 0 {
					v = nil
				}
				op = fmt.Sprintf("Put(%s, %s)", k, show(v))
				m, r = model.Put(k, v), s.Put(k, v)
			case n < 5:
				k := key()
				op = fmt.Sprintf("Delete(%s)", k)
				mv, me := model.Delete(k)
				rv, re := s.Delete(k)
				m, r = []any{show(mv), me}, []any{show(rv), re}
			case n < 7:
				from, to := key(), key()
				op = fmt.Sprintf("Range(%s, %s)", from, to)
				mv, me := storetest.ReadAll(model.Range(from, to))
				rv, re := storetest.ReadAll(s.Range(from, to))
				m, r = []any{mv, me}, []any{rv, re}
			case n < 8:
				from, to := key(), key()
				op = fmt.Sprintf("ReverseRange(%s, %s)", from, to)
				mv, me := storetest.ReadAll(model.ReverseRange(from, to))
				rv, re := storetest.ReadAll(s.ReverseRange(from, to))
				m, r = []any{mv, me}, []any{rv, re}
			case n < 9:
				k := key()
				op = fmt.Sprintf("Get(%s)", k)
				mv, me := model.Get(k)
				rv, re := s.Get(k)
				m, r = []any{show(mv), me}, []any{show(rv), re}
			default:
				op = "Flush"
				storetest.Must(t, s.Flush())
				all, err := storetest.ReadAll(model.All())
				storetest.Must(t, err)
				want := map[string]string{}
				for _, kv := range all {
					want[kv.Key] = kv.Value
				}
				m, r = want, maps.Clone(downstream)
			}
			if !reflect.DeepEqual(m, r) {
				t.Fatalf("seed %d step %d: %s: model %v, cached %v", seed, step, op, m, r)
			}
		}
	}
}
