package runnel_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/state/pebblestore"
)

// TestAppRestoreBulkKilledMidRestore: a fresh instance restoring a
// changelog larger than a bulk batch's memory chunk (so it sorts, spills
// to run files, merges and ingests sstables) is killed with SIGKILL in the
// middle of the restore; restarted on the same state directory, it
// restores again and its store then holds exactly the latest value of
// every key not deleted. The changelog has random keys, overwrites and
// tombstones; the application runs with the default options.
func TestAppRestoreBulkKilledMidRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	addr := startAppBroker(t)
	createTopics(t, addr, 1, "lines", "word-counts")
	const changelog = "wc-counts-changelog"
	adm := kadm.NewClient(newTestClient(t, addr))
	resp, err := adm.CreateTopics(context.Background(), 1, 1, map[string]*string{"cleanup.policy": ptrTo("compact")}, changelog)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}

	// About 48 MB: three of the bulk batch's 16 MiB chunks.
	const records = 24_000
	cl := newTestClient(t, addr, kgo.ProducerLinger(time.Millisecond))
	rng := rand.New(rand.NewPCG(41, 41))
	want := map[string][]byte{} // key -> latest value, nil when deleted
	var recs []*kgo.Record
	for i := range records {
		key := fmt.Sprintf("key-%05d", rng.IntN(15_000))
		var value []byte
		if rng.IntN(8) > 0 { // one in eight a tombstone
			value = make([]byte, 1000+rng.IntN(2000))
			for j := range value {
				value[j] = byte(rng.Uint32())
			}
			value = fmt.Appendf(value[:0], "%d:", i)[:len(value)]
		}
		want[key] = value
		recs = append(recs, &kgo.Record{Topic: changelog, Key: []byte(key), Value: value})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < len(recs); i += 500 {
		if err := cl.ProduceSync(ctx, recs[i:min(i+500, len(recs))]...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	c := startCrashChild(t, addr, dir, 1)
	c.waitStarted(t)
	// Killed once it applied its first fetch (16 MiB: a chunk spilled,
	// or about to), with two more to go and the merge.
	c.waitRestored(t, 1)
	m := c.stop(t, syscall.SIGKILL)
	t.Logf("killed after restoring %d of %d records", m.RecordsRestored, records)

	c = startCrashChild(t, addr, dir, 1)
	c.waitStarted(t)
	c.waitRestored(t, records)
	m = c.stop(t, syscall.SIGTERM)
	t.Logf("restarted: %+v", m)

	db, err := pebblestore.Open(filepath.Join(dir, "wc", "pebble"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := db.NewBatch("1_0").KeyValueStore("counts")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	it := s.All()
	for it.Next() {
		got[string(it.Key())] = append([]byte(nil), it.Value()...)
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	live, bad := 0, 0
	for k, v := range want {
		g, ok := got[k]
		switch {
		case v == nil && ok:
			bad++
			t.Errorf("deleted key %s restored as %d bytes", k, len(g))
		case v != nil && (!ok || string(g) != string(v)):
			bad++
			t.Errorf("key %s restored as %d bytes (present %v), want its latest %d bytes", k, len(g), ok, len(v))
		}
		if v != nil {
			live++
		}
		if bad > 10 {
			t.FailNow()
		}
	}
	if len(got) != live {
		t.Errorf("store holds %d keys, the changelog's latest values %d", len(got), live)
	}
}

// waitRestored waits until the child has restored n changelog records.
func (c *crashChild) waitRestored(t *testing.T, n int64) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		c.mu.Lock()
		m, changed := c.metrics, c.changed
		c.mu.Unlock()
		if m.RecordsRestored >= n {
			return
		}
		select {
		case <-changed:
		case <-c.Done():
			t.Fatal("application process exited")
		case <-deadline:
			t.Fatalf("application process restored %d records in a minute, want %d", m.RecordsRestored, n)
		}
	}
}
