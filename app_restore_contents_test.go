package runnel_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/state/pebblestore"
)

// TestAppRestoreYieldsExactContents: a fresh instance restores a store
// from a changelog holding overwrites, tombstones, an aborted transaction
// and a compacted head (offsets with gaps) followed by a dirty tail, and
// its store then holds exactly the latest value of every key that was not
// deleted, byte for byte. The changelog is written directly, with values
// the store never decodes during a restore. It restores once with the
// default commits (one at the end of each task's restoration) and once
// committing every 64 KiB in the middle, each such commit taking the
// partitions out of the restore consumer and reading on from its
// position after it.
func TestAppRestoreYieldsExactContents(t *testing.T) {
	t.Run("one commit", func(t *testing.T) { testRestoreExactContents(t, 0) })
	t.Run("a commit every 64 KiB", func(t *testing.T) { testRestoreExactContents(t, 64<<10) })
}

func testRestoreExactContents(t *testing.T, checkpoint int) {
	b := testutil.StartBroker(t, broker.Config{
		GroupInitialRebalanceDelay: 10 * time.Millisecond,
		OffsetsTopicPartitions:     3, TransactionStateTopicPartitions: 3,
		LogCleanerBackoff: 10 * time.Millisecond, LogCleanerIOBytesPerSecond: -1,
	})
	addr := b.Addr()
	createTopics(t, addr, 2, "lines", "word-counts")
	const changelog = "wc-counts-changelog"
	adm := kadm.NewClient(newTestClient(t, addr))
	resp, err := adm.CreateTopics(context.Background(), 2, 1, map[string]*string{
		"cleanup.policy":            ptrTo("compact"),
		"segment.bytes":             ptrTo("65536"),
		"min.cleanable.dirty.ratio": ptrTo("0.01"),
	}, changelog)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}

	cl := newTestClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	rng := rand.New(rand.NewPCG(17, 17))
	want := [2]map[string][]byte{{}, {}} // by partition: key -> latest value, nil when deleted
	write := func(n int) {
		var recs []*kgo.Record
		for range n {
			p := rng.Int32N(2)
			key := fmt.Sprintf("key-%04d", rng.IntN(400))
			var value []byte
			if rng.IntN(8) > 0 { // one in eight a tombstone
				value = make([]byte, rng.IntN(3000))
				for i := range value {
					value[i] = byte(rng.Uint32())
				}
			}
			want[p][key] = value
			recs = append(recs, &kgo.Record{Topic: changelog, Partition: p, Key: []byte(key), Value: value})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := 0; i < len(recs); i += 200 {
			if err := cl.ProduceSync(ctx, recs[i:min(i+200, len(recs))]...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(6000)

	// An aborted transaction: read_committed restoration skips it.
	txn := newTestClient(t, addr, kgo.TransactionalID("restore-aborted"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		r := &kgo.Record{Topic: changelog, Partition: int32(i % 2), Key: fmt.Appendf(nil, "key-%04d", i), Value: []byte("aborted")}
		if err := txn.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}

	// 6,100 records and markers over 800 keys: the cleaner leaves far
	// fewer.
	waitFor(t, "the changelog compacted", func() bool { return len(readTopic(t, addr, changelog)) < 3000 })
	write(1500) // a dirty tail after the compacted head

	dir := t.TempDir()
	if checkpoint > 0 {
		t.Cleanup(runnel.SetRestoreCheckpointBytes(checkpoint)) // after the app closes
	}
	var commits atomic.Int32
	app := runApp(t, buildTopology(t, wordCount), func(app *runnel.App) {
		runnel.BeforeRestoreCommit(app, func() { commits.Add(1) })
	}, runnel.ApplicationID("wc"), runnel.Brokers(addr), runnel.StateDir(dir),
		runnel.ProcessingGuarantee(runnel.ExactlyOnce), runnel.CommitInterval(100*time.Millisecond))
	waitFor(t, "the fresh instance restored and running", func() bool { return app.State() == runnel.Running })
	restored := app.Metrics().RecordsRestored
	if n := commits.Load(); checkpoint > 0 && n <= 2 {
		t.Fatalf("%d commits of 2 restorations, committing every %d bytes", n, checkpoint)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if restored == 0 {
		t.Fatal("nothing restored")
	}

	db, err := pebblestore.Open(filepath.Join(dir, "wc", "pebble"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for p := range int32(2) {
		s, err := db.NewBatch(fmt.Sprintf("1_%d", p)).KeyValueStore("counts")
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
		live := 0
		for k, v := range want[p] {
			if v == nil {
				if g, ok := got[k]; ok {
					t.Errorf("partition %d: deleted key %s restored as %d bytes", p, k, len(g))
				}
				continue
			}
			live++
			if g, ok := got[k]; !ok || string(g) != string(v) {
				t.Errorf("partition %d: key %s restored as %d bytes (present %v), want its latest %d bytes", p, k, len(g), ok, len(v))
			}
		}
		if len(got) != live {
			t.Errorf("partition %d: store holds %d keys, the changelog's latest values %d", p, len(got), live)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
