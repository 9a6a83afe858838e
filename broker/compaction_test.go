package broker_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// produced is what was acknowledged at each offset of a one-partition
// topic: key, and value (nil for a tombstone).
type produced map[int64]*kgo.Record

// produceKV produces records in order and records their offsets.
func produceKV(t testing.TB, cl *kgo.Client, topic string, into produced, recs []*kgo.Record) {
	t.Helper()
	for i := 0; i < len(recs); i += 500 {
		chunk := recs[i:min(i+500, len(recs))]
		for _, r := range chunk {
			r.Topic = topic
		}
		if err := cl.ProduceSync(testContext(t), chunk...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		for _, r := range chunk {
			into[r.Offset] = r
		}
	}
}

// latestByKey is the key → newest record view of what was produced.
func (p produced) latestByKey() map[string]*kgo.Record {
	out := make(map[string]*kgo.Record)
	var maxOff int64 = -1
	for off := range p {
		maxOff = max(maxOff, off)
	}
	for off := int64(0); off <= maxOff; off++ {
		if r, ok := p[off]; ok {
			out[string(r.Key)] = r
		}
	}
	return out
}

// checkRead checks records read back against what was produced: offsets
// unchanged, contents as produced, and returns the latest-per-key view.
func checkRead(t testing.TB, got []*kgo.Record, want produced) map[string]*kgo.Record {
	t.Helper()
	view := make(map[string]*kgo.Record)
	prev := int64(-1)
	for _, r := range got {
		if r.Offset <= prev {
			t.Fatalf("offset %d after %d", r.Offset, prev)
		}
		prev = r.Offset
		w, ok := want[r.Offset]
		if !ok || string(w.Key) != string(r.Key) || (w.Value == nil) != (r.Value == nil) || string(w.Value) != string(r.Value) {
			t.Fatalf("offset %d holds %q=%q, produced %v", r.Offset, r.Key, r.Value, w)
		}
		view[string(r.Key)] = r
	}
	return view
}

// A compacted topic with 100,000 updates over 1,000 keys, 100
// of them tombstoned, replayed from offset 0 after cleaning, gives exactly
// the latest value per key at unchanged offsets; tombstones are there
// before delete.retention.ms and gone after.
func TestCompactionKeepsLatestValuePerKey(t *testing.T) {
	clk := newClock()
	b := testutil.StartBroker(t, broker.Config{Now: clk.Now})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "table", 1, map[string]*string{
		"cleanup.policy":            ptr("compact"),
		"segment.bytes":             ptr("65536"),
		"min.cleanable.dirty.ratio": ptr("0.01"),
		"delete.retention.ms":       ptr("60000"),
	})
	cl := newClient(t, b.Addr())
	rng := rand.New(rand.NewPCG(4, 4))
	var recs []*kgo.Record
	key := func(k int) []byte { return fmt.Appendf(nil, "key-%04d", k) }
	for i := 0; i < 90_000; i++ {
		recs = append(recs, &kgo.Record{Key: key(rng.IntN(1000)), Value: fmt.Appendf(nil, "v%d", i)})
	}
	for k := 0; k < 100; k++ {
		recs = append(recs, &kgo.Record{Key: key(k)}) // tombstone
	}
	for i := len(recs); i < 100_000; i++ {
		recs = append(recs, &kgo.Record{Key: key(100 + rng.IntN(900)), Value: fmt.Appendf(nil, "v%d", i)})
	}
	all := make(produced)
	produceKV(t, cl, "table", all, recs)
	want := all.latestByKey()

	if err := b.CleanLogs(); err != nil {
		t.Fatal(err)
	}
	got := testutil.ReadTopic(t, b.Addr(), "table", false)
	view := checkRead(t, got, all)
	if len(got) > 10_000 {
		t.Fatalf("%d records after cleaning 100,000 updates of 1,000 keys", len(got))
	}
	if len(view) != 1000 {
		t.Fatalf("%d keys", len(view))
	}
	for k, w := range want {
		if view[k].Offset != w.Offset {
			t.Fatalf("key %s: offset %d, latest at %d", k, view[k].Offset, w.Offset)
		}
	}
	for k := 0; k < 100; k++ {
		if view[string(key(k))].Value != nil {
			t.Fatalf("key %d not a tombstone", k)
		}
	}

	// Past delete.retention.ms the tombstones go; the rest stays.
	clk.Advance(61 * time.Second)
	if err := b.CleanLogs(); err != nil {
		t.Fatal(err)
	}
	got = testutil.ReadTopic(t, b.Addr(), "table", false)
	view = checkRead(t, got, all)
	if len(view) != 900 {
		t.Fatalf("%d keys after delete.retention.ms, want 900", len(view))
	}
	for k, r := range view {
		if r.Value == nil || want[k].Offset != r.Offset {
			t.Fatalf("key %s: %+v", k, r)
		}
	}

	// Records without a key are refused.
	err := cl.ProduceSync(testContext(t), &kgo.Record{Topic: "table", Value: []byte("x")}).FirstErr()
	if err == nil || err.Error() == "" {
		t.Fatal("record without a key accepted by a compacted topic")
	}
}

// The consumer offsets topic is compacted: after heavy commit traffic and
// cleaning (and a restart) a group's offsets read back as last committed.
func TestConsumerOffsetsCompacted(t *testing.T) {
	dir := t.TempDir()
	cfg := broker.Config{DataDir: dir, OffsetsTopicPartitions: 1}
	b := testutil.StartBroker(t, cfg)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "in", 8, nil)
	// Small segments so commits roll into cleanable ones.
	res, err := adm.AlterTopicConfigs(testContext(t), []kadm.AlterConfig{
		{Name: "segment.bytes", Value: ptr("16384")},
		{Name: "min.cleanable.dirty.ratio", Value: ptr("0.01")},
	}, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	var last kadm.Offsets
	for i := 0; i < 1000; i++ {
		os := make(kadm.Offsets)
		for p := int32(0); p < 8; p++ {
			os.Add(kadm.Offset{Topic: "in", Partition: p, At: int64(i*10) + int64(p), LeaderEpoch: -1})
		}
		r, err := adm.CommitOffsets(testContext(t), "g", os)
		if err != nil || r.Error() != nil {
			t.Fatalf("commit %d: %v %v", i, err, r.Error())
		}
		last = os
	}
	before := len(testutil.ReadTopic(t, b.Addr(), "__consumer_offsets", false))
	if err := b.CleanLogs(); err != nil {
		t.Fatal(err)
	}
	after := len(testutil.ReadTopic(t, b.Addr(), "__consumer_offsets", false))
	if after >= before/4 {
		t.Fatalf("__consumer_offsets: %d records before cleaning, %d after", before, after)
	}
	check := func(addr string) {
		t.Helper()
		got, err := newAdmin(t, addr).FetchOffsets(testContext(t), "g")
		if err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 8; p++ {
			g, _ := got.Lookup("in", p)
			w, _ := last.Lookup("in", p)
			if g.At != w.At {
				t.Fatalf("partition %d: offset %d, committed %d", p, g.At, w.At)
			}
		}
	}
	check(b.Addr())
	b.Close()
	b2 := testutil.StartBroker(t, cfg)
	check(b2.Addr())
}

// A broker SIGKILLed at random points while its cleaner compacts a topic
// (slowly, under a low I/O throttle) restarts with a log that replays to
// the same latest value per key, at the offsets produced.
func TestCompactionKilledWhileCleaning(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	t.Setenv("RUNNEL_TEST_BROKER_CHILD_CLEANER_IO", "400000")
	dir := t.TempDir()
	c := startChild(t, dir, "127.0.0.1:0")
	createTopic(t, newAdmin(t, c.addr), "kc", 1, map[string]*string{
		"cleanup.policy":            ptr("compact"),
		"segment.bytes":             ptr("16384"),
		"min.cleanable.dirty.ratio": ptr("0.01"),
	})
	rng := rand.New(rand.NewPCG(7, 7))
	all := make(produced)
	n := 0
	produceSome := func(addr string, count int) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for i := 0; i < count; i++ {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%03d", rng.IntN(1000)), Value: fmt.Appendf(nil, "v%d", n)})
			n++
		}
		produceKV(t, cl, "kc", all, recs)
	}
	produceSome(c.addr, 20_000)
	interrupted := 0
	for round := 0; round < 5; round++ {
		time.Sleep(time.Duration(50+rng.IntN(1500)) * time.Millisecond)
		c.kill(t)
		for _, pat := range []string{"*.cleaned", "*.swap"} {
			if m, _ := filepath.Glob(filepath.Join(dir, "logs", "kc-0", pat)); len(m) > 0 {
				interrupted++
				break
			}
		}
		c = startChild(t, dir, "127.0.0.1:0")
		produceSome(c.addr, 3000)
	}
	got := testutil.ReadTopic(t, c.addr, "kc", false)
	t.Logf("%d of 5 kills left a swap in progress; %d records read of %d produced", interrupted, len(got), len(all))
	view := checkRead(t, got, all)
	want := all.latestByKey()
	if len(view) != len(want) {
		t.Fatalf("%d keys, want %d", len(view), len(want))
	}
	for k, w := range want {
		if view[k].Offset != w.Offset {
			t.Fatalf("key %s at %d, latest produced at %d", k, view[k].Offset, w.Offset)
		}
	}
}
