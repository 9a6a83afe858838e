package broker_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/internal/testutil/pagecache"
)

// The page cache drop-behind over TCP with franz-go: a partition's pages
// leave the page cache once every connection fetching it has fetched
// them — not while a slower reader is behind them — and the
// records read back whole afterwards, from disk. With
// log.cache.drop.behind.enable=false every page stays.
func TestCacheDropBehind(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("enabled=%t", on), func(t *testing.T) {
			dir := t.TempDir()
			pagecache.SkipUnlessDroppable(t, dir)
			b := testutil.StartBroker(t, broker.Config{DataDir: dir, MetricsListen: "127.0.0.1:0", DisableCacheDropBehind: !on, DisableDirectWrites: true})
			testCacheDropBehind(t, b, dir, on)
		})
	}
}

func testCacheDropBehind(t *testing.T, b *broker.Broker, dir string, on bool) {
	ctx := testContext(t)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "dropped", 1, nil)
	td, err := adm.ListTopics(ctx, "dropped")
	if err != nil {
		t.Fatal(err)
	}
	const total = 4000 // of 1,000 bytes: 4 MB
	value := func(i int) []byte {
		v := make([]byte, 1000)
		copy(v, fmt.Sprintf("record %d", i))
		return v
	}
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("dropped"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produce := func(from, n int) {
		t.Helper()
		rs := make([]*kgo.Record, n)
		for i := range rs {
			rs[i] = &kgo.Record{Value: value(from + i)}
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, total)
	seg := segmentOf(t, dir, "dropped-0")
	size := fileSize(t, seg)

	bc := newClient(t, b.Addr())
	fetchAt := func(off int64) {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.MaxBytes = 1 << 10
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "dropped", td["dropped"].ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = off, 1<<10
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		raw, err := bc.Broker(0).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := kerr.ErrorForCode(raw.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode); err != nil {
			t.Fatalf("fetch at %d: %v", off, err)
		}
	}
	// B fetches at the start, then A reads everything and goes on
	// long-polling at the end, then B fetches three quarters in: B holds
	// the mark there. (Far enough in that the batch holding it starts
	// past the first drop step whatever the producer's batching: a batch
	// is at most about 1 MB.)
	fetchAt(0)
	a := newClient(t, b.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"dropped": {0: kgo.NewOffset().At(0)}}))
	consumeChecked(ctx, t, a, 0, total, value)
	fetchAt(total * 3 / 4)
	// Drops happen as a flush makes records durable.
	produce(total, 1)
	dropped := droppedBytes(t, b)
	const mib = 1 << 20
	if !on {
		if dropped != 0 {
			t.Fatalf("%d bytes dropped with the drop-behind off", dropped)
		}
		checkResident(t, seg, 0)
		return
	}
	// Below B's mark and no further: at least the first MiB (the flush
	// loop drops it once the flush is done), never past three quarters.
	dropped = waitDropped(t, b, mib)
	if dropped > size*3/4 {
		t.Fatalf("%d bytes dropped behind a reader three quarters into %d", dropped, size)
	}
	checkResident(t, seg, dropped)

	// B catches up: everything but the last index interval goes.
	fetchAt(total + 1)
	produce(total+1, 1)
	dropped = waitDropped(t, b, size-mib/4)
	checkResident(t, seg, dropped)

	// A newcomer reads it all back, from disk.
	c := newClient(t, b.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"dropped": {0: kgo.NewOffset().At(0)}}))
	consumeChecked(ctx, t, c, 0, total+2, value)
}

// consumeChecked polls cl until it has n records, checking the i-th
// holds value(from+i).
func consumeChecked(ctx context.Context, t *testing.T, cl *kgo.Client, from, n int, value func(int) []byte) {
	t.Helper()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("%d of %d records read: %v", got, n, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := value(from + got); r.Offset != int64(from+got) || string(r.Value) != string(want) {
				t.Fatalf("record %d: offset %d, value %.12q", from+got, r.Offset, r.Value)
			}
			got++
		})
	}
}

// segmentOf returns the partition's one segment file.
func segmentOf(t *testing.T, dataDir, partition string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dataDir, "logs", partition, "*.log"))
	if err != nil || len(m) != 1 {
		t.Fatalf("segments of %s: %v %v", partition, m, err)
	}
	return m[0]
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// dataSize is the bytes of the whole record batches a segment file
// starts with: its size less what direct writes leave past its last
// batch, zeros (up to a block, or several MiB ahead of the appends where
// group commits go through the commit ring).
func dataSize(t *testing.T, path string) int64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for n+12 <= len(raw) {
		l := int(binary.BigEndian.Uint32(raw[n+8:]))
		if l == 0 || n+12+l > len(raw) {
			break
		}
		n += 12 + l
	}
	return int64(n)
}

// droppedBytes scrapes runnel_broker_log_cache_dropped_bytes_total.
func droppedBytes(t *testing.T, b *broker.Broker) int64 {
	t.Helper()
	m := regexp.MustCompile(`\nrunnel_broker_log_cache_dropped_bytes_total\{partition="0",topic="dropped"\} (\S+)`).FindStringSubmatch(scrape(t, b.MetricsAddr()))
	if m == nil {
		t.Fatal("no runnel_broker_log_cache_dropped_bytes_total for dropped-0")
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int64(n)
}

// waitDropped polls the metric until at least want bytes are dropped.
func waitDropped(t *testing.T, b *broker.Broker, want int64) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := droppedBytes(t, b)
		if n >= want {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes dropped, want at least %d", n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkResident checks the file's pages wholly below dropped are out of
// the page cache and those wholly above it in.
func checkResident(t *testing.T, path string, dropped int64) {
	t.Helper()
	page := int64(os.Getpagesize())
	for i, in := range pagecache.Resident(t, path) {
		lo, hi := int64(i)*page, int64(i+1)*page
		if hi <= dropped && in {
			t.Fatalf("page %d (bytes %d-%d) still cached, %d bytes dropped", i, lo, hi, dropped)
		}
		if lo >= dropped && !in {
			t.Fatalf("page %d (bytes %d-%d) not cached, %d bytes dropped", i, lo, hi, dropped)
		}
	}
}
