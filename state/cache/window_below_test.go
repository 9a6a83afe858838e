package cache_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/cache"
	"github.com/runnel-dev/runnel/state/memstore"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/state/storetest"
)

// countingWindows counts the point reads that reach a window store.
type countingWindows struct {
	*memstore.WindowStore
	fetches int
}

func (c *countingWindows) Fetch(key []byte, start int64) ([]byte, error) {
	c.fetches++
	return c.WindowStore.Fetch(key, start)
}

// TestWindowMissSkipsStoreBelow checks which reads of windows the cache
// does not hold reach the store below: those the store may hold (at or
// before its observed time when the cache opened, restored, or evicted),
// and no others, a first write's flush included.
func TestWindowMissSkipsStoreBelow(t *testing.T) {
	opts := state.WindowOptions{Retention: time.Hour}
	mem, err := memstore.NewWindowStore("w", opts)
	storetest.Must(t, err)
	storetest.Must(t, mem.Put([]byte("old"), 1000, []byte("o")))
	inner := &countingWindows{WindowStore: mem}
	// Room for a few entries: each is charged over 224 bytes.
	s := cache.NewWindowStore(cache.New(1200), inner, opts, nil, nil)
	s.SetChangeLogger(&storetest.Recorder{}, nil)
	fetch := func(key string, start int64, want string, reachesBelow bool) {
		t.Helper()
		before := inner.fetches
		v, err := s.Fetch([]byte(key), start)
		storetest.Must(t, err)
		if string(v) != want || (v == nil) != (want == "") {
			t.Fatalf("Fetch(%s@%d) = %q, want %q", key, start, v, want)
		}
		if reached := inner.fetches > before; reached != reachesBelow {
			t.Fatalf("Fetch(%s@%d) reached the store below: %v, want %v", key, start, reached, reachesBelow)
		}
	}
	fetch("old", 1000, "o", true) // at the store's observed time
	fetch("other", 0, "", true)   // before it: the store may hold it
	fetch("new", 3000, "", false) // after: the store cannot hold it
	fetch("new", 3000, "", false) // cached as absent
	storetest.Must(t, s.Put([]byte("first"), 5000, []byte("f")))
	storetest.Must(t, s.Flush())
	if inner.fetches != 2 {
		t.Fatalf("flushing a first write read the store below: %d reads", inner.fetches)
	}
	fetch("first", 5000, "f", false) // cached clean

	// Writes to later windows evict "first@5000": the store below holds
	// it now, so a read must reach it.
	for i := range 8 {
		storetest.Must(t, s.Put([]byte("fill"), 6000+int64(i), []byte("x")))
		storetest.Must(t, s.Flush())
	}
	fetch("first", 5000, "f", true)
	fetch("never", 4000, "", true) // the evicted window's start covers earlier ones

	// A restored window is in the store below, not in the cache.
	storetest.Must(t, s.Restore(state.WindowChangelogKey([]byte("restored"), 9000, 0), []byte("r")))
	fetch("restored", 9000, "r", true)
	fetch("later", 9500, "", false)
}

// windowModel is what a window store should hold, as a plain map: no
// expiry (the tests keep every start within retention).
type windowModel map[string]string

func (m windowModel) key(k []byte, start int64) string { return fmt.Sprintf("%s@%d", k, start) }

// TestWindowReadsAgainstModel runs random writes, reads, flushes,
// restores and (with a small budget) evictions against a cached Pebble
// window store, checking every read against a plain map; then restores
// the changelog the store wrote (and the restored records) into a new
// Pebble store read through a new cache, and into a new cache whose
// Restore takes them, and reads every window of both against the map.
func TestWindowReadsAgainstModel(t *testing.T) {
	opts := state.WindowOptions{Retention: time.Hour}
	db, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	storetest.Must(t, err)
	defer db.Close()
	for seed := range 8 {
		rng := rand.New(rand.NewPCG(uint64(seed), 17))
		batch := db.NewBatch(fmt.Sprintf("a%d", seed))
		inner, err := batch.OpenWindowStore("w", opts)
		storetest.Must(t, err)
		s := cache.NewWindowStore(cache.New(rng.Int64N(4000)), inner, opts, nil, nil)
		log := &storetest.Recorder{}
		s.SetChangeLogger(log, nil)
		af := any(s).(state.WindowAppendFetcher)
		model := windowModel{}
		var keys [][]byte
		for i := range 8 {
			keys = append(keys, []byte{byte('a' + i)})
		}
		now := int64(0)
		check := func(step int, k []byte, start int64) {
			want, ok := model[model.key(k, start)]
			got, err := s.Fetch(k, start)
			storetest.Must(t, err)
			if (got != nil) != ok || string(got) != want {
				t.Fatalf("seed %d step %d: Fetch(%s@%d) = %q, want %q (present %v)", seed, step, k, start, got, want, ok)
			}
			app, found, err := af.AppendFetch([]byte("p"), k, start)
			storetest.Must(t, err)
			if found != ok || string(app) != "p"+want {
				t.Fatalf("seed %d step %d: AppendFetch(%s@%d) = %q, %v, want %q", seed, step, k, start, app, found, want)
			}
		}
		for step := range 4000 {
			k := keys[rng.IntN(len(keys))]
			start := now - rng.Int64N(50)*100 // hopping-like: mostly recent windows
			switch n := rng.IntN(20); {
			case n < 8:
				now += rng.Int64N(40)
				v := []byte(fmt.Sprint(rng.IntN(100)))
				if rng.IntN(8) == 0 {
					v = nil
				}
				storetest.Must(t, s.Put(k, start, v))
				if v == nil {
					delete(model, model.key(k, start))
				} else {
					model[model.key(k, start)] = string(v)
				}
			case n < 16:
				check(step, k, start)
			case n < 18:
				storetest.Must(t, s.Flush())
			default:
				// A standby's or a restoration's write, through the cache.
				start += rng.Int64N(300) // maybe past anything written
				ck := state.WindowChangelogKey(k, start, 0)
				v := []byte(fmt.Sprintf("r%d", step))
				if rng.IntN(5) == 0 {
					v = nil
				}
				storetest.Must(t, s.Restore(ck, v))
				log.LogChange(ck, v, 0) // replayed in order below
				if v == nil {
					delete(model, model.key(k, start))
				} else {
					model[model.key(k, start)] = string(v)
				}
			}
		}
		storetest.Must(t, s.Flush())
		changes := log.Take()

		// Restored into Pebble, then opened behind a cache, as the runtime
		// restores a task before it runs it.
		rb := db.NewBatch(fmt.Sprintf("b%d", seed))
		restored, err := rb.OpenWindowStore("w", opts)
		storetest.Must(t, err)
		for _, c := range changes {
			storetest.Must(t, restored.Restore(c.Key, c.Value))
		}
		storetest.Must(t, rb.Commit(nil))
		reopened, err := rb.OpenWindowStore("w", opts)
		storetest.Must(t, err)
		// Through a cache's Restore, as a standby task restores.
		mem, err := memstore.NewWindowStore("w", opts)
		storetest.Must(t, err)
		standby := cache.NewWindowStore(cache.New(rng.Int64N(4000)), mem, opts, nil, nil)
		for _, c := range changes {
			storetest.Must(t, standby.Restore(c.Key, c.Value))
		}
		for i, r := range []state.WindowStore{
			cache.NewWindowStore(cache.New(rng.Int64N(4000)), reopened, opts, nil, nil),
			standby,
		} {
			for _, k := range keys {
				for start := now - 6000; start <= now+300; start++ {
					want, ok := model[model.key(k, start)]
					got, err := r.Fetch(k, start)
					storetest.Must(t, err)
					if (got != nil) != ok || string(got) != want {
						t.Fatalf("seed %d, restored store %d: Fetch(%s@%d) = %q, want %q (present %v)", seed, i, k, start, got, want, ok)
					}
				}
			}
		}
		storetest.Must(t, rb.Rollback())
		storetest.Must(t, batch.Rollback())
	}
}
