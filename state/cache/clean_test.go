package cache_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/cache"
	"github.com/runnel-dev/runnel/state/memstore"
	"github.com/runnel-dev/runnel/state/storetest"
)

// kvFixture is a cached key-value store over a memstore that counts its
// reads, recording what the listener and the changelog receive.
type kvFixture struct {
	c       *cache.Cache
	inner   *memstore.KeyValueStore
	below   *countingKV
	s       *cache.KeyValueStore
	updates []string
	log     *storetest.Recorder
}

func newKVFixture(t *testing.T, size int64, preload ...string) *kvFixture {
	t.Helper()
	f := &kvFixture{c: cache.New(size), inner: memstore.NewKeyValueStore("kv"), log: &storetest.Recorder{}}
	for i := 0; i < len(preload); i += 2 {
		storetest.Must(t, f.inner.Put([]byte(preload[i]), []byte(preload[i+1])))
	}
	f.below = &countingKV{KeyValueStore: f.inner}
	f.s = cache.NewKeyValueStore(f.c, f.below, func(k, n, o []byte, ts int64) {
		f.updates = append(f.updates, fmt.Sprintf("%s=%s(was %s)", k, show(n), show(o)))
	}, nil)
	f.s.SetChangeLogger(f.log, nil)
	return f
}

func (f *kvFixture) get(t *testing.T, key string) string {
	t.Helper()
	v, err := f.s.Get([]byte(key))
	storetest.Must(t, err)
	return show(v)
}

func (f *kvFixture) put(t *testing.T, key, value string) {
	t.Helper()
	var v []byte
	if value != "<nil>" {
		v = []byte(value)
	}
	storetest.Must(t, f.s.Put([]byte(key), v))
}

// expect checks the listener's updates and the reads below since the last
// call.
func (f *kvFixture) expect(t *testing.T, reads int, updates ...string) {
	t.Helper()
	if f.below.reads != reads || !slices.Equal(f.updates, updates) {
		t.Fatalf("%d reads below, updates %q; want %d reads, %q", f.below.reads, f.updates, reads, updates)
	}
	f.below.reads, f.updates = 0, nil
}

// TestReadThenWriteFlushNeedsNoRead checks that the flush of a write after
// a read through the cache tells the listener the old value the read found,
// without reading the store below again; and that the flushed value stays
// cached for the next commit.
func TestReadThenWriteFlushNeedsNoRead(t *testing.T) {
	f := newKVFixture(t, 1<<20, "a", "0")
	if v := f.get(t, "a"); v != "0" {
		t.Fatalf("Get(a) = %s", v)
	}
	if v := f.get(t, "new"); v != "<nil>" {
		t.Fatalf("Get(new) = %s", v)
	}
	f.expect(t, 2)
	f.put(t, "a", "1")
	f.put(t, "new", "x")
	storetest.Must(t, f.s.Flush())
	f.expect(t, 0, "a=1(was 0)", "new=x(was <nil>)")

	// Next commit: the flushed values are clean entries.
	if v := f.get(t, "a"); v != "1" {
		t.Fatalf("Get(a) after flush = %s", v)
	}
	f.put(t, "a", "2")
	f.put(t, "new", "<nil>")
	storetest.Must(t, f.s.Flush())
	f.expect(t, 0, "a=2(was 1)", "new=<nil>(was x)")
	if v, _ := f.inner.Get([]byte("a")); string(v) != "2" {
		t.Fatalf("store below has a=%q", v)
	}
	if got := fmt.Sprint(f.log.Take()); got != `["a"="1"@0 "new"="x"@0 "a"="2"@0 "new"=<tombstone>@0]` {
		t.Fatalf("logged %s", got)
	}
}

// TestWriteWithoutReadFlushReadsBelow checks that a write of a key the
// cache knows nothing of still gets the store below's old value, read at
// the flush.
func TestWriteWithoutReadFlushReadsBelow(t *testing.T) {
	f := newKVFixture(t, 1<<20, "a", "0")
	f.put(t, "a", "1")
	f.put(t, "a", "2")
	f.put(t, "b", "1")
	f.expect(t, 0)
	storetest.Must(t, f.s.Flush())
	f.expect(t, 2, "a=2(was 0)", "b=1(was <nil>)")
}

// TestDeleteOfNeverStoredKey checks that deleting a key the store below
// never had writes no tombstone and tells the listener nothing, whether
// the cache read the key first (Delete does) or not (Put of nil).
func TestDeleteOfNeverStoredKey(t *testing.T) {
	f := newKVFixture(t, 1<<20, "a", "0")
	old, err := f.s.Delete([]byte("x"))
	storetest.Must(t, err)
	if old != nil {
		t.Fatalf("Delete(x) = %q", old)
	}
	f.put(t, "y", "<nil>")
	f.put(t, "z", "1")
	f.put(t, "z", "<nil>")
	storetest.Must(t, f.s.Flush())
	f.expect(t, 3) // Delete's Get of x; the flush's reads of y and z
	if changes := f.log.Take(); len(changes) != 0 {
		t.Fatalf("logged %v", changes)
	}
	// A delete of a key the store below has is written.
	_, err = f.s.Delete([]byte("a"))
	storetest.Must(t, err)
	storetest.Must(t, f.s.Flush())
	f.expect(t, 1, "a=<nil>(was 0)")
}

// TestCleanEviction checks that an evicted clean entry writes nothing and
// tells the listener nothing, that a read never flushes (a miss the budget
// has no room for without evicting a dirty entry is not kept), and that
// Close gives the closed store's entries' bytes back to the shared cache.
func TestCleanEviction(t *testing.T) {
	const entry = cache.EntryOverhead + 3 // 1-byte keys (held twice) and values
	f := newKVFixture(t, 2*entry+10, "a", "1", "b", "2", "c", "3")
	f.get(t, "a")
	f.get(t, "b")
	f.expect(t, 2)
	if f.c.Size() != 2*entry {
		t.Fatalf("cache size %d after two reads", f.c.Size())
	}
	f.put(t, "c", "4") // evicts a, clean
	f.expect(t, 0)
	if len(f.log.Changes) != 0 {
		t.Fatalf("eviction of a clean entry logged %v", f.log.Changes)
	}
	f.get(t, "b") // still cached
	f.expect(t, 0)
	f.get(t, "a") // evicted: read again, and not kept: c, least recently used, is dirty
	f.get(t, "a")
	f.expect(t, 2)
	if f.c.Size() > 2*entry+10 {
		t.Fatalf("cache size %d over budget", f.c.Size())
	}

	f.put(t, "d", "5") // evicts c, dirty, written without a read
	f.expect(t, 1, "c=4(was 3)")
	f.put(t, "e", "6") // evicts b, clean
	f.expect(t, 0)

	other := cache.NewKeyValueStore(f.c, memstore.NewKeyValueStore("other"), nil, nil)
	storetest.Must(t, f.s.Close())
	f.expect(t, 2, "d=5(was <nil>)", "e=6(was <nil>)")
	if f.c.Size() != 0 {
		t.Fatalf("cache size %d after Close", f.c.Size())
	}
	storetest.Must(t, other.Put([]byte("e"), []byte("1")))
	storetest.Must(t, other.Put([]byte("f"), []byte("1")))
	storetest.Must(t, other.Put([]byte("g"), []byte("1"))) // evicts e of other, not the closed store's
	if _, err := f.s.Get([]byte("a")); err != state.ErrClosed {
		t.Fatalf("Get after Close: %v", err)
	}
}

// TestWindowReadThenWriteFlushNeedsNoRead is TestReadThenWriteFlushNeedsNoRead
// for windows, with a window expiring between two flushes.
func TestWindowReadThenWriteFlushNeedsNoRead(t *testing.T) {
	opts := state.WindowOptions{Retention: 100 * time.Millisecond, SegmentInterval: 50 * time.Millisecond}
	inner, err := memstore.NewWindowStore("w", opts)
	storetest.Must(t, err)
	storetest.Must(t, inner.Put([]byte("a"), 0, []byte("0")))
	below := &countingWindow{WindowStore: inner}
	var updates []string
	s := cache.NewWindowStore(cache.New(1<<20), below, opts, func(k, n, o []byte, ts int64) {
		key, start, _, err := state.ParseWindowChangelogKey(k)
		storetest.Must(t, err)
		updates = append(updates, fmt.Sprintf("%s@%d=%s(was %s)", key, start, show(n), show(o)))
	}, nil)
	rmw := func(key string, start int64) {
		t.Helper()
		v, err := s.Fetch([]byte(key), start)
		storetest.Must(t, err)
		storetest.Must(t, s.Put([]byte(key), start, append(v, '+')))
	}
	expect := func(reads int, want ...string) {
		t.Helper()
		if below.reads != reads || !slices.Equal(updates, want) {
			t.Fatalf("%d reads below, updates %q; want %d reads, %q", below.reads, updates, reads, want)
		}
		below.reads, updates = 0, nil
	}
	rmw("a", 0)
	rmw("a", 10)
	rmw("a", 10)
	storetest.Must(t, s.Flush())
	expect(2, "a@0=0+(was 0)", "a@10=++(was <nil>)")
	rmw("a", 0)
	storetest.Must(t, s.Flush())
	expect(0, "a@0=0++(was 0+)")

	rmw("a", 200) // windows 0 and 10 expire
	rmw("a", 0)   // ignored
	storetest.Must(t, s.Flush())
	expect(1, "a@200=+(was <nil>)")
	if v, err := s.Fetch([]byte("a"), 10); v != nil || err != nil {
		t.Fatalf("Fetch of an expired window = %q, %v", v, err)
	}
}

// TestWindowWriteTheStoreBelowIgnores checks a cache whose observed stream
// time is behind the store below's, as after a restart on a store kept on
// disk: a flushed write to a window the store below has expired is not
// kept as what the store below holds.
func TestWindowWriteTheStoreBelowIgnores(t *testing.T) {
	opts := state.WindowOptions{Retention: 100 * time.Millisecond, SegmentInterval: 50 * time.Millisecond}
	inner, err := memstore.NewWindowStore("w", opts)
	storetest.Must(t, err)
	storetest.Must(t, inner.Put([]byte("a"), 1000, []byte("late"))) // the store below observed 1000
	var updates []string
	s := cache.NewWindowStore(cache.New(1<<20), inner, opts, func(k, n, o []byte, ts int64) {
		updates = append(updates, fmt.Sprintf("%s(was %s)", show(n), show(o)))
	}, nil)
	for range 2 {
		v, err := s.Fetch([]byte("a"), 0)
		storetest.Must(t, err)
		storetest.Must(t, s.Put([]byte("a"), 0, append(v, '+')))
		storetest.Must(t, s.Flush())
	}
	if want := []string{"+(was <nil>)", "+(was <nil>)"}; !slices.Equal(updates, want) {
		t.Fatalf("updates %q, want %q", updates, want)
	}
	if v, err := s.Fetch([]byte("a"), 0); v != nil || err != nil {
		t.Fatalf("Fetch = %q, %v; the store below has nothing", v, err)
	}
}

// TestListenerWritesDuringEviction checks an eviction whose listener
// writes the evicted key again: the new write stays in the cache.
func TestListenerWritesDuringEviction(t *testing.T) {
	const entry = cache.EntryOverhead + 3
	inner := memstore.NewKeyValueStore("kv")
	var s *cache.KeyValueStore
	var updates []string
	s = cache.NewKeyValueStore(cache.New(2*entry+10), inner, func(k, n, o []byte, ts int64) {
		updates = append(updates, fmt.Sprintf("%s=%s(was %s)", k, show(n), show(o)))
		if string(k) == "a" && string(n) == "1" {
			storetest.Must(t, s.Put([]byte("a"), []byte("again")))
		}
	}, nil)
	storetest.Must(t, s.Put([]byte("a"), []byte("1")))
	storetest.Must(t, s.Put([]byte("b"), []byte("1")))
	storetest.Must(t, s.Put([]byte("c"), []byte("1"))) // evicts a, whose listener's write evicts b
	storetest.Must(t, s.Flush())
	want := []string{"a=1(was <nil>)", "b=1(was <nil>)", "c=1(was <nil>)", "a=again(was 1)"}
	if !slices.Equal(updates, want) {
		t.Fatalf("updates %q, want %q", updates, want)
	}
	if v, _ := inner.Get([]byte("a")); string(v) != "again" {
		t.Fatalf("store below has a=%q", v)
	}
}

// unloggedWindow counts reads below a cache and is not state.Logged.
type unloggedWindow struct {
	state.WindowStore
	reads *int
}

func (s unloggedWindow) Fetch(key []byte, start int64) ([]byte, error) {
	*s.reads++
	return s.WindowStore.Fetch(key, start)
}

// TestWindowNotLoggedBelow checks that over a window store that does not
// log its writes, so that the cache cannot tell a write it ignores, the
// cache does not keep flushed windows: it reads them again, and the
// listener's old values stay right.
func TestWindowNotLoggedBelow(t *testing.T) {
	inner, err := memstore.NewWindowStore("w", state.WindowOptions{})
	storetest.Must(t, err)
	reads := 0
	var updates []string
	s := cache.NewWindowStore(cache.New(1<<20), unloggedWindow{inner, &reads}, state.WindowOptions{}, func(k, n, o []byte, ts int64) {
		updates = append(updates, fmt.Sprintf("%s(was %s)", show(n), show(o)))
	}, nil)
	for range 2 {
		v, err := s.Fetch([]byte("a"), 0)
		storetest.Must(t, err)
		storetest.Must(t, s.Put([]byte("a"), 0, append(v, '+')))
		storetest.Must(t, s.Flush())
	}
	if want := []string{"+(was <nil>)", "++(was +)"}; reads != 2 || !slices.Equal(updates, want) {
		t.Fatalf("%d reads, updates %q; want 2 reads, %q", reads, updates, want)
	}
}
