package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// murmur2 is the Java client's key hash (Utils.murmur2), against which the
// broker-side placement of keyed records is checked.
func murmur2(data []byte) int32 {
	const (
		seed = uint32(0x9747b28c)
		m    = uint32(0x5bd1e995)
		r    = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

func TestMurmur2KnownValues(t *testing.T) {
	// Values from the Java client's partitioner for these keys.
	for _, c := range []struct {
		key  string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	} {
		if got := murmur2([]byte(c.key)); got != c.want {
			t.Errorf("murmur2(%q) = %d, want %d", c.key, got, c.want)
		}
	}
}

// Records with the same key land in one partition, the one the
// Java client's murmur2 picks, and are consumed in production order;
// records without a key spread across partitions.
func TestSameKeyKeepsPartitionAndOrder(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	const parts = 6
	createTopic(t, adm, "orders", parts, nil)

	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("orders"))
	ctx := testContext(t)
	const keys, perKey = 40, 50
	var recs []*kgo.Record
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			recs = append(recs, &kgo.Record{Key: []byte("key-" + strconv.Itoa(k)), Value: []byte(strconv.Itoa(i))})
		}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Unkeyed records, 2 KiB each in separate batches: franz-go's default
	// partitioner, like the Java client's (KIP-794), sticks to a
	// partition for about 64 KiB before it moves on.
	const unkeyedBatches = 60
	for i := 0; i < unkeyedBatches; i++ {
		var batch []*kgo.Record
		for j := 0; j < 10; j++ {
			batch = append(batch, &kgo.Record{Value: make([]byte, 2048)})
		}
		if err := prod.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	got := consumeAll(t, b.Addr(), "orders", keys*perKey+unkeyedBatches*10)
	keyPart := map[string]int32{}
	next := map[string]int{}
	unkeyedParts := map[int32]bool{}
	for _, r := range got {
		if r.Key == nil {
			unkeyedParts[r.Partition] = true
			continue
		}
		k := string(r.Key)
		if p, ok := keyPart[k]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", k, p, r.Partition)
		}
		keyPart[k] = r.Partition
		want := (murmur2(r.Key) & 0x7fffffff) % parts
		if r.Partition != want {
			t.Fatalf("key %s in partition %d, murmur2 says %d", k, r.Partition, want)
		}
		if v, _ := strconv.Atoi(string(r.Value)); v != next[k] {
			t.Fatalf("key %s: got value %d, want %d (order broken)", k, v, next[k])
		}
		next[k]++
	}
	for k := 0; k < keys; k++ {
		if n := next["key-"+strconv.Itoa(k)]; n != perKey {
			t.Fatalf("key-%d: %d records, want %d", k, n, perKey)
		}
	}
	if len(unkeyedParts) < 3 {
		t.Fatalf("unkeyed records landed in %d partitions, want them spread", len(unkeyedParts))
	}
}

// Two readers consume the same topic independently, and a third
// reads it again from offset 0 after both finished; all see the same
// sequence per partition.
func TestIndependentReadersAndReplay(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "events", 3, nil)
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const n = 3000
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("event-%05d", i))})
	}
	if err := prod.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	seq := func(rs []*kgo.Record) map[int32][]string {
		out := map[int32][]string{}
		for _, r := range rs {
			out[r.Partition] = append(out[r.Partition], fmt.Sprintf("%d:%s", r.Offset, r.Value))
		}
		return out
	}
	type result struct {
		recs []*kgo.Record
	}
	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		go func() { results <- result{consumeAll(t, b.Addr(), "events", n)} }()
	}
	a, c := seq((<-results).recs), seq((<-results).recs)
	third := seq(consumeAll(t, b.Addr(), "events", n))
	for p := int32(0); p < 3; p++ {
		if fmt.Sprint(a[p]) != fmt.Sprint(c[p]) || fmt.Sprint(a[p]) != fmt.Sprint(third[p]) {
			t.Fatalf("partition %d: readers disagree", p)
		}
		if len(a[p]) != n/3 {
			t.Fatalf("partition %d: %d records, want %d", p, len(a[p]), n/3)
		}
	}
}

// fetchOnce sends one raw Fetch for a partition at offset.
func fetchOnce(t testing.TB, cl *kgo.Client, topic string, partition int32, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 10
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// Past retention.ms (and separately retention.bytes) whole old
// segments go, the log start offset moves, the broker answers an expired
// offset with OFFSET_OUT_OF_RANGE, and a consumer there is reset by its
// auto.offset.reset policy.
func TestRetentionDeletesOldSegments(t *testing.T) {
	clk := newClock()
	b := testutil.StartBroker(t, broker.Config{Now: clk.Now, RetentionCheckInterval: time.Hour})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "by-time", 1, map[string]*string{
		"retention.ms":  ptr("60000"),
		"segment.bytes": ptr("4096"),
	})
	createTopic(t, adm, "by-size", 1, map[string]*string{
		"retention.bytes": ptr("20000"),
		"segment.bytes":   ptr("4096"),
	})
	// Uncompressed, so segment sizes follow the record count.
	prod := newClient(t, b.Addr(), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testContext(t)
	produce := func(topic string, from, n int) {
		for i := from; i < from+n; i++ {
			// One record per batch, with the injected clock's time, so
			// segments roll often and carry clock timestamps.
			r := &kgo.Record{Topic: topic, Value: make([]byte, 200), Timestamp: clk.Now()}
			copy(r.Value, strconv.Itoa(i))
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce("by-time", 0, 100)
	produce("by-size", 0, 300)
	clk.Advance(2 * time.Minute)
	produce("by-time", 100, 20) // fresh records keep their segments
	b.EnforceRetention()

	raw := newClient(t, b.Addr(), fetchByName())
	for _, c := range []struct {
		topic    string
		total    int64
		minStart int64
	}{
		{"by-time", 120, 90},
		{"by-size", 300, 150},
	} {
		offs, err := adm.ListStartOffsets(ctx, c.topic)
		if err != nil {
			t.Fatal(err)
		}
		start, _ := offs.Lookup(c.topic, 0)
		if start.Offset < c.minStart || start.Offset >= c.total {
			t.Fatalf("%s: log start offset %d, want in [%d, %d)", c.topic, start.Offset, c.minStart, c.total)
		}
		p := fetchOnce(t, raw, c.topic, 0, 0)
		if err := kerr.ErrorForCode(p.ErrorCode); !errors.Is(err, kerr.OffsetOutOfRange) {
			t.Fatalf("%s: fetch at 0 after retention: %v, want OFFSET_OUT_OF_RANGE", c.topic, err)
		}
		if p.LogStartOffset != start.Offset {
			t.Fatalf("%s: fetch log start %d, list offsets %d", c.topic, p.LogStartOffset, start.Offset)
		}
		// A consumer asking for offset 0 with reset-to-earliest is moved
		// to the log start and reads everything that is left.
		cons := newClient(t, b.Addr(),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: {0: kgo.NewOffset().At(0)}}),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		want := c.total - start.Offset
		var got []*kgo.Record
		for int64(len(got)) < want {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%s: consumed %d of %d", c.topic, len(got), want)
			}
			got = append(got, fs.Records()...)
		}
		if got[0].Offset != start.Offset {
			t.Fatalf("%s: consumer reset to %d, want %d", c.topic, got[0].Offset, start.Offset)
		}
	}
}

// Partitions grow and never shrink, and records already
// written stay where they are.
func TestPartitionsGrowRecordsStay(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "grow", 3, nil)
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("grow"))
	ctx := testContext(t)
	var recs []*kgo.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	before := map[string]int32{}
	for _, r := range recs {
		before[string(r.Key)] = r.Partition
	}

	if _, err := adm.UpdatePartitions(ctx, 6, "grow"); err != nil {
		t.Fatalf("grow to 6: %v", err)
	}
	for _, n := range []int{4, 6} {
		resp, err := adm.UpdatePartitions(ctx, n, "grow")
		if err == nil {
			err = resp["grow"].Err
		}
		if !errors.Is(err, kerr.InvalidPartitions) {
			t.Fatalf("set partitions to %d: %v, want INVALID_PARTITIONS", n, err)
		}
	}
	td, err := adm.ListTopics(ctx, "grow")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["grow"].Partitions); n != 6 {
		t.Fatalf("grow has %d partitions, want 6", n)
	}
	got := consumeAll(t, b.Addr(), "grow", len(recs))
	for _, r := range got {
		if before[string(r.Key)] != r.Partition {
			t.Fatalf("record %s moved from partition %d to %d", r.Key, before[string(r.Key)], r.Partition)
		}
	}
	// The new partitions take writes.
	r := &kgo.Record{Topic: "grow", Partition: 5, Value: []byte("new")}
	manual := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := manual.ProduceSync(context.Background(), r).FirstErr(); err != nil {
		t.Fatalf("produce to new partition: %v", err)
	}
}
