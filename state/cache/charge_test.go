package cache_test

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/cache"
)

// TestChargeMatchesMemory: what the cache charges its entries is about
// the heap they take, so that the byte budget bounds the process's memory
// (6 tasks with the default 10 MiB each are 60 MiB, not 150 MiB as when an
// entry was charged half its size). Clean entries are measured, the bulk
// of a full cache: windows of an aggregation after a flush, and key-value
// pairs, over a store below that keeps nothing.
func TestChargeMatchesMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes")
	}
	const n = 100_000
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "auction%05d", i%10_000) // streambench q5's keys
	}
	value := binary.BigEndian.AppendUint64(nil, 1)
	check := func(t *testing.T, c *cache.Cache, fill func()) {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		fill()
		runtime.GC()
		runtime.ReadMemStats(&m1)
		real, charged := float64(m1.HeapAlloc-m0.HeapAlloc)/n, float64(c.Size())/n
		t.Logf("per entry: %.0f bytes of heap, %.0f charged", real, charged)
		if r := charged / real; r < 0.75 || r > 1.35 {
			t.Errorf("charged %.0f bytes per entry for %.0f of heap (%.2fx), want within 0.75-1.35x", charged, real, r)
		}
	}
	t.Run("window", func(t *testing.T) {
		opts := state.WindowOptions{Retention: time.Hour}.EnsureDefaults()
		c := cache.New(1 << 40)
		s := cache.NewWindowStore(c, &discardWindow{}, opts, nil, nil)
		check(t, c, func() {
			for i, k := range keys {
				start := int64(i / 10_000 * 2_000)
				if _, err := s.Fetch(k, start); err != nil {
					t.Fatal(err)
				}
				if err := s.Put(k, start, value); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		})
		runtime.KeepAlive(s)
	})
	t.Run("key-value", func(t *testing.T) {
		c := cache.New(1 << 40)
		s := cache.NewKeyValueStore(c, &discardKV{}, nil, nil)
		check(t, c, func() {
			for i, k := range keys {
				k = fmt.Appendf(k[:len(k):len(k)], "-%d", i/10_000)
				if _, err := s.Get(k); err != nil {
					t.Fatal(err)
				}
				if err := s.Put(k, value); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		})
		runtime.KeepAlive(s)
	})
}

// discardWindow is a Logged window store that keeps nothing: it holds no
// memory of its own, and logs every write, as a store that makes it.
type discardWindow struct {
	state.WindowStore // not called
	l                 state.ChangeLogger
}

func (*discardWindow) Fetch([]byte, int64) ([]byte, error) { return nil, nil }
func (*discardWindow) Flush() error                        { return nil }
func (*discardWindow) Restore(key, value []byte) error     { return nil }
func (d *discardWindow) SetChangeLogger(l state.ChangeLogger, _ state.RecordTime) {
	d.l = l
}
func (d *discardWindow) Put(key []byte, start int64, value []byte) error {
	d.l.LogChange(nil, nil, 0)
	return nil
}

// discardKV is the key-value store that keeps nothing.
type discardKV struct {
	state.KeyValueStore // not called
}

func (*discardKV) Get([]byte) ([]byte, error) { return nil, nil }
func (*discardKV) Put([]byte, []byte) error   { return nil }
func (*discardKV) Flush() error               { return nil }
