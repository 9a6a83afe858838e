package cache_test

import (
	"encoding/binary"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/cache"
	"github.com/runnel-dev/runnel/state/memstore"
	"github.com/runnel-dev/runnel/state/pebblestore"
)

// countingKV counts the point reads that reach the store below a cache.
// It is state.Logged, as the stores below a cache are in the runtime; the
// store it wraps must be.
type countingKV struct {
	state.KeyValueStore
	reads int
}

func (s *countingKV) Get(key []byte) ([]byte, error) {
	s.reads++
	return s.KeyValueStore.Get(key)
}

func (s *countingKV) SetChangeLogger(l state.ChangeLogger, now state.RecordTime) {
	s.KeyValueStore.(state.Logged).SetChangeLogger(l, now)
}

func (s *countingKV) Restore(key, value []byte) error {
	return s.KeyValueStore.(state.Logged).Restore(key, value)
}

// countingWindow counts the point reads that reach the store below a
// cache. It is state.Logged (see countingKV).
type countingWindow struct {
	state.WindowStore
	reads int
}

func (s *countingWindow) Fetch(key []byte, start int64) ([]byte, error) {
	s.reads++
	return s.WindowStore.Fetch(key, start)
}

func (s *countingWindow) SetChangeLogger(l state.ChangeLogger, now state.RecordTime) {
	s.WindowStore.(state.Logged).SetChangeLogger(l, now)
}

func (s *countingWindow) Restore(key, value []byte) error {
	return s.WindowStore.(state.Logged).Restore(key, value)
}

// benchCommitEvery is the records between two flushes in the benchmarks:
// the runtime flushes the cache at every commit, every 100 ms under
// exactly-once.
const benchCommitEvery = 1000

// benchBackend opens the store below the cache: in memory, or Pebble in a
// temporary directory, whose batch commit follows every flush as in the
// runtime.
type benchBackend struct {
	name   string
	kv     func(b *testing.B) (state.KeyValueStore, func())
	window func(b *testing.B, opts state.WindowOptions) (state.WindowStore, func())
}

func benchBackends() []benchBackend {
	openDB := func(b *testing.B) *pebblestore.Batch {
		db, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db.NewBatch("0_0")
	}
	return []benchBackend{
		{
			name: "mem",
			kv: func(b *testing.B) (state.KeyValueStore, func()) {
				return memstore.NewKeyValueStore("kv"), func() {}
			},
			window: func(b *testing.B, opts state.WindowOptions) (state.WindowStore, func()) {
				w, err := memstore.NewWindowStore("w", opts)
				if err != nil {
					b.Fatal(err)
				}
				return w, func() {}
			},
		},
		{
			name: "pebble",
			kv: func(b *testing.B) (state.KeyValueStore, func()) {
				batch := openDB(b)
				return batch.OpenKeyValueStore("kv"), func() { must(b, batch.Commit(nil)) }
			},
			window: func(b *testing.B, opts state.WindowOptions) (state.WindowStore, func()) {
				batch := openDB(b)
				w, err := batch.OpenWindowStore("w", opts)
				if err != nil {
					b.Fatal(err)
				}
				return w, func() { must(b, batch.Commit(nil)) }
			},
		},
	}
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkKeyValueReadModifyWriteFlush is a count per key: each record
// reads its key's count through the cache and writes it back incremented,
// and the cache is flushed every benchCommitEvery records. It reports the
// reads that reach the store below per record.
func BenchmarkKeyValueReadModifyWriteFlush(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			inner, commit := be.kv(b)
			below := &countingKV{KeyValueStore: inner}
			s := cache.NewKeyValueStore(cache.New(10<<20), below, func(k, n, o []byte, ts int64) {}, nil)
			rng := rand.New(rand.NewPCG(1, 2))
			key := make([]byte, 8)
			b.ResetTimer()
			for i := range b.N {
				binary.BigEndian.PutUint64(key, rng.Uint64N(10_000))
				v, err := s.Get(key)
				must(b, err)
				var n uint64
				if v != nil {
					n = binary.BigEndian.Uint64(v)
				}
				must(b, s.Put(key, binary.BigEndian.AppendUint64(nil, n+1)))
				if (i+1)%benchCommitEvery == 0 {
					must(b, s.Flush())
					commit()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(below.reads)/float64(b.N), "reads/op")
		})
	}
}

// BenchmarkWindowReadModifyWriteFlush is a hopping-window count (the shape
// of Nexmark q5): each record, one millisecond of event time after the
// previous one, increments its key's count in the five 10 s windows,
// advancing by 2 s, that contain it; the cache is flushed every
// benchCommitEvery records. It reports the reads that reach the store
// below per record.
func BenchmarkWindowReadModifyWriteFlush(b *testing.B) {
	const size, advance = 10_000, 2_000
	opts := state.WindowOptions{Retention: time.Minute}.EnsureDefaults()
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			inner, commit := be.window(b, opts)
			below := &countingWindow{WindowStore: inner}
			s := cache.NewWindowStore(cache.New(10<<20), below, opts, func(k, n, o []byte, ts int64) {}, nil)
			rng := rand.New(rand.NewPCG(1, 2))
			key := make([]byte, 8)
			b.ResetTimer()
			for i := range b.N {
				ts := int64(i)
				binary.BigEndian.PutUint64(key, rng.Uint64N(1_000))
				for start := ts - ts%advance; start > ts-size && start >= 0; start -= advance {
					v, err := s.Fetch(key, start)
					must(b, err)
					var n uint64
					if v != nil {
						n = binary.BigEndian.Uint64(v)
					}
					must(b, s.Put(key, start, binary.BigEndian.AppendUint64(nil, n+1)))
				}
				if (i+1)%benchCommitEvery == 0 {
					must(b, s.Flush())
					commit()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(below.reads)/float64(b.N), "reads/op")
		})
	}
}

// BenchmarkWindowQ5 is streambench's q5 on one task, cache and Pebble
// store: 10,000 keys, 10 records per millisecond of event time, each
// counted in the five 10 s windows, advancing by 2 s, that hold it; a
// flush and a batch commit every 3,000 records (exactly-once's 100 ms at
// 30,000 records/s). Besides time and allocations it reports the process's
// CPU time per record (cpu-ns/op), which includes Pebble's background
// flushes and compactions, and the store's key writes per record.
func BenchmarkWindowQ5(b *testing.B) {
	const size, advance, keys, perMs, commitEvery = 10_000, 2_000, 10_000, 10, 3_000
	opts := state.WindowOptions{Retention: size * time.Millisecond}.EnsureDefaults()
	be := benchBackends()[1]
	inner, commit := be.window(b, opts)
	s := cache.NewWindowStore(cache.New(10<<20), inner, opts, func(k, n, o []byte, ts int64) {}, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	key := make([]byte, 8)
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := range b.N {
		ts := int64(i / perMs)
		binary.BigEndian.PutUint64(key, rng.Uint64N(keys))
		for start := ts - ts%advance; start > ts-size && start >= 0; start -= advance {
			v, err := s.Fetch(key, start)
			must(b, err)
			var n uint64
			if v != nil {
				n = binary.BigEndian.Uint64(v)
			}
			must(b, s.Put(key, start, binary.BigEndian.AppendUint64(nil, n+1)))
		}
		if (i+1)%commitEvery == 0 {
			must(b, s.Flush())
			commit()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the process's user and system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
