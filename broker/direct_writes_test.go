package broker_test

import (
	"bytes"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/internal/testutil/pagecache"
)

// Direct writes over TCP with franz-go (log.direct.writes.enable): a
// partition nobody fetches is written past the page cache, and a
// consumer that comes later reads every record back whole, from disk;
// once a consumer has fetched it, appends go through the page cache
// again, where readers find them. With the setting off (the default) every
// append is cached, whether anyone reads or not.
func TestDirectWrites(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("enabled=%t", on), func(t *testing.T) {
			dir := t.TempDir()
			pagecache.SkipUnlessDroppable(t, dir)
			// Without the direct writes' cache, which TestDirectWritesCache
			// covers: a reader that comes later reads from the disk.
			b := testutil.StartBroker(t, broker.Config{DataDir: dir, DisableDirectWrites: !on, TailCacheBytes: -1})
			testDirectWrites(t, b, dir, on)
		})
	}
}

func testDirectWrites(t *testing.T, b *broker.Broker, dir string, on bool) {
	ctx := testContext(t)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "direct", 1, nil)
	const total = 2000 // of 1,000 bytes: 2 MB
	value := func(i int) []byte {
		v := make([]byte, 1000)
		copy(v, fmt.Sprintf("record %d", i))
		return v
	}
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("direct"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produce := func(from, n int) {
		t.Helper()
		for i := range n {
			// One record per request: many appends, each rewriting the
			// last partial block.
			r := &kgo.Record{Value: value(from + i)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, total)
	seg := segmentOf(t, dir, "direct-0")
	cached, pages := residentPages(t, seg, 0)
	if on && cached > 1 {
		// At most the last, partly written page, read back by nobody.
		t.Fatalf("%d of %d pages cached after direct writes with no reader", cached, pages)
	}
	if !on && !mostlyCached(cached, pages) {
		t.Fatalf("%d of %d pages cached after writes through the page cache", cached, pages)
	}

	// A consumer reads everything back, from disk if written directly,
	// and leaves. Its fetches mark the partition as read for 30 s (far
	// longer than this test takes): what comes next is written through
	// the page cache for such a reader, in both settings, and stays
	// there (what it fetched, below, may be dropped).
	c := newClient(t, b.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"direct": {0: kgo.NewOffset().At(0)}}))
	consumeChecked(ctx, t, c, 0, total, value)
	c.Close()
	before := fileSize(t, seg)
	produce(total, total/2)
	if cached, pages := residentPages(t, seg, before); !mostlyCached(cached, pages) {
		t.Fatalf("%d of the %d pages appended after a consumer read the partition are cached", cached, pages)
	}

	// A newcomer reads it all, whichever way it was written.
	n := newClient(t, b.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"direct": {0: kgo.NewOffset().At(0)}}))
	consumeChecked(ctx, t, n, 0, total+total/2, value)
}

// The direct writes' cache over TCP with franz-go
// (log.direct.writes.cache.bytes): what a partition nobody fetched wrote
// directly, a consumer that comes later reads from memory, every record
// whole, and the page cache stays empty; with a cache smaller than what
// was written, the oldest records come from the disk and the newest from
// memory, all of them whole.
func TestDirectWritesCache(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes int64
		// tls consumes over TLS, where a fetch's regions go out
		// through a copy (copyRegionWriter), not sendfile.
		tls bool
	}{{"default", 0, false}, {"small", 512 << 10, false}, {"small over TLS", 512 << 10, true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pagecache.SkipUnlessDroppable(t, dir)
			cfg := broker.Config{DataDir: dir, TailCacheBytes: tc.bytes}
			var consumeAt []kgo.Opt
			if tc.tls {
				ca := testutil.NewCA(t, "test-ca")
				certFile, keyFile := ca.Issue(t, "broker", pkix.Name{CommonName: "broker"})
				cfg.Security = broker.SecurityConfig{
					Listeners: "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
					TLS:       broker.TLSConfig{CertFile: certFile, KeyFile: keyFile, CAFile: ca.CertFile},
				}
				consumeAt = append(consumeAt, kgo.DialTLSConfig(ca.ClientTLS(t, "", "")))
			}
			b := testutil.StartBroker(t, cfg)
			ctx := testContext(t)
			adm := newAdmin(t, b.Addr())
			createTopic(t, adm, "cached", 1, nil)
			const total = 2000 // of 1,000 bytes: 2 MB
			value := func(i int) []byte {
				v := make([]byte, 1000)
				for j := range v {
					v[j] = byte(i*13 + j*5 + 3)
				}
				return v
			}
			prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("cached"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
			for i := 0; i < total; i += 10 {
				rs := make([]*kgo.Record, 10)
				for j := range rs {
					rs[j] = &kgo.Record{Value: value(i + j)}
				}
				if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			seg := segmentOf(t, dir, "cached-0")
			// Fetches of 64 KiB: most lie wholly on one side of the
			// cache's start (one across it reads the file).
			addr := b.Addr()
			if tc.tls {
				addr = b.ListenerAddr("SSL")
			}
			c := newClient(t, addr, append(consumeAt, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"cached": {0: kgo.NewOffset().At(0)}}), kgo.FetchMaxPartitionBytes(64<<10))...)
			consumeChecked(ctx, t, c, 0, total, value)
			hit, miss := b.DirectWritesCacheReads()
			cached, pages := residentPages(t, seg, 0)
			size := dataSize(t, seg)
			if tc.bytes == 0 {
				if hit < size-4096 || miss != 0 { // the file may end in padding
					t.Fatalf("read %d bytes from the cache and %d from the file, want all %d from the cache", hit, miss, size)
				}
				if cached > 1 {
					t.Fatalf("%d of %d pages cached after reading from memory", cached, pages)
				}
				return
			}
			if hit == 0 || miss == 0 {
				t.Fatalf("read %d bytes from the cache and %d from the file: want both", hit, miss)
			}
			if hit > tc.bytes+1<<20 {
				t.Fatalf("read %d bytes from a cache of %d", hit, tc.bytes)
			}
			// What the cache no longer held was read directly, past
			// the page cache.
			if reads, bytes := b.DirectReads(); reads == 0 || bytes < miss {
				t.Fatalf("%d direct reads of %d bytes for %d bytes read from the file", reads, bytes, miss)
			}
			if cached > 2 {
				t.Fatalf("%d of %d pages cached after reading the oldest records from the file", cached, pages)
			}
		})
	}
}

// With the direct writes' cache an append only copies into memory, and
// the flush before the acknowledgement writes it (write-back). So the
// moment a produce is acknowledged, its records are in the segment
// file, with either flush setting: with flush.messages above 1 the
// acknowledgement waits for the write (WaitWritten), not for a sync.
func TestDirectWritesAcknowledgedInFile(t *testing.T) {
	for _, flush := range []int64{1, 1000} {
		t.Run(fmt.Sprintf("flush.messages=%d", flush), func(t *testing.T) {
			dir := t.TempDir()
			b := testutil.StartBroker(t, broker.Config{DataDir: dir, FlushMessages: flush})
			ctx := testContext(t)
			createTopic(t, newAdmin(t, b.Addr()), "acked", 1, nil)
			prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("acked"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
			seg := segmentOf(t, dir, "acked-0")
			for i := range 40 {
				// Not a multiple of the 4 KiB block: each batch
				// leaves the file's last block partly filled.
				v := bytes.Repeat([]byte{byte('a' + i%26)}, 3000+i*37)
				copy(v, fmt.Sprintf("record %d|", i))
				if err := prod.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr(); err != nil {
					t.Fatal(err)
				}
				raw, err := os.ReadFile(seg)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(raw, v) {
					t.Fatalf("record %d acknowledged, and not in the segment file (%d bytes)", i, len(raw))
				}
			}
		})
	}
}

// mostlyCached reports whether cached of pages is what writes through
// the page cache leave: every page but the last partly written one, less
// the few a kernel short of memory may have evicted meanwhile (a CI run
// with other packages' tests writing alongside once found 521 of 523).
// Direct writes leave at most one, so the two stay far apart.
func mostlyCached(cached, pages int) bool {
	return cached >= pages-1-pages/20
}

// residentPages counts the pages of path from byte from on, and those of
// them in the page cache.
func residentPages(t *testing.T, path string, from int64) (cached, pages int) {
	t.Helper()
	page := int64(4096)
	for i, in := range pagecache.Resident(t, path) {
		if int64(i+1)*page <= from {
			continue
		}
		pages++
		if in {
			cached++
		}
	}
	return cached, pages
}

// Followers write directly too (log.direct.writes.enable): nobody
// fetches a follower's copy, and AppendReplica writes each run of fetched
// batches in one write. After an acks=all produce to three replicas, the
// followers' segments are not in the page cache, hold the leader's
// bytes, and a consumer reads every record back.
func TestDirectWritesOnFollowers(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	dirs := make([]string, 3)
	brokers := testutil.StartCluster(t, 3, func(i int, cfg *broker.Config) {
		cfg.BrokerSessionTimeout, cfg.BrokerHeartbeatInterval, cfg.ReplicaLagTimeMax = testutil.SessionTimeout, testutil.Heartbeat, testutil.ReplicaLag
		dirs[i] = cfg.DataDir
	})
	pagecache.SkipUnlessDroppable(t, dirs[0])
	ctx := testContext(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers[0].Addr(), brokers[1].Addr(), brokers[2].Addr()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.DefaultProduceTopic("rep"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if resp, err := adm.CreateTopic(ctx, 1, 3, nil, "rep"); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	const total = 2000
	value := func(i int) []byte {
		v := make([]byte, 1000)
		for j := range v {
			v[j] = byte(i*31 + j*7 + 1)
		}
		return v
	}
	rs := make([]*kgo.Record, total)
	for i := range rs {
		rs[i] = &kgo.Record{Value: value(i)}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	md, err := adm.Metadata(ctx, "rep")
	if err != nil {
		t.Fatal(err)
	}
	leader := md.Topics["rep"].Partitions[0].Leader
	lead, err := os.ReadFile(segmentOf(t, dirs[leader-1], "rep-0"))
	if err != nil {
		t.Fatal(err)
	}
	leadSize := dataSize(t, segmentOf(t, dirs[leader-1], "rep-0"))
	followers := 0
	for i := range 3 {
		if int32(i+1) == leader {
			continue
		}
		seg := segmentOf(t, dirs[i], "rep-0")
		// The follower has every acknowledged batch (acks=all); poll its
		// size (reading it would bring its pages into the cache).
		deadline := time.Now().Add(10 * time.Second)
		for fileSize(t, seg) < leadSize-4096 {
			if time.Now().After(deadline) {
				t.Fatalf("broker %d's copy has %d bytes, the leader's %d", i+1, fileSize(t, seg), leadSize)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if cached, pages := residentPages(t, seg, 0); cached > 1 {
			t.Fatalf("broker %d, a follower: %d of %d pages cached", i+1, cached, pages)
		}
		got, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if n := min(len(got), len(lead)); !bytes.Equal(got[:n], lead[:n]) {
			t.Fatalf("broker %d's copy differs from the leader's in its first %d bytes", i+1, n)
		}
		followers++
	}
	if followers != 2 {
		t.Fatalf("%d followers", followers)
	}
	c := newClient(t, brokers[0].Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"rep": {0: kgo.NewOffset().At(0)}}))
	consumeChecked(ctx, t, c, 0, total, value)
}
