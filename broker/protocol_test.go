package broker_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// produceBatches writes n batches of per records each to one partition,
// one ProduceSync per batch so each is its own RecordBatch. Record i of the
// whole run has value "v<i>" and timestamp base+i seconds.
func produceBatches(t *testing.T, cl *kgo.Client, topic string, n, per int, base time.Time) {
	t.Helper()
	ctx := testContext(t)
	i := 0
	for range n {
		var recs []*kgo.Record
		for range per {
			recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i), Timestamp: base.Add(time.Duration(i) * time.Second)})
			i++
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// fetchByName caps Fetch at v12, the last version that names topics rather
// than giving their ids, so raw fetches in tests can name their topic.
func fetchByName() kgo.Opt {
	v := kversion.Stable()
	v.SetMaxKeyVersion(1, 12)
	return kgo.MaxVersions(v)
}

// The fetch long poll: with MinBytes unmet the broker holds the request
// until data arrives (well before MaxWait), and answers an idle partition
// after MaxWait with nothing.
func TestFetchLongPoll(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "poll", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("poll"), fetchByName())

	fetch := func(wait time.Duration) (*kmsg.FetchResponse, time.Duration) {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = int32(wait.Milliseconds())
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "poll"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		start := time.Now()
		resp, err := req.RequestWith(testContext(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp, time.Since(start)
	}

	resp, took := fetch(200 * time.Millisecond)
	t.Logf("idle: %+v", resp)
	if n := len(resp.Topics[0].Partitions[0].RecordBatches); n != 0 || took < 150*time.Millisecond {
		t.Fatalf("idle fetch: %d bytes after %v, want none after about 200ms", n, took)
	}

	done := make(chan *kmsg.FetchResponse, 1)
	go func() { r, _ := fetch(30 * time.Second); done <- r }()
	// The fetch is parked; produce until it returns with the data.
	deadline := time.After(20 * time.Second)
	for {
		if err := cl.ProduceSync(testContext(t), &kgo.Record{Value: []byte("wake")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if len(r.Topics[0].Partitions[0].RecordBatches) == 0 {
				t.Fatal("long poll woke without data")
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("long poll did not return after data arrived")
		}
	}
}

// MaxBytes and PartitionMaxBytes bound a fetch in whole batches, except that
// the first batch is returned however large (KIP-74); the returned batches
// start with the one containing the fetch offset.
func TestFetchLimits(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "limits", 2, nil)
	cl := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()), fetchByName())
	ctx := testContext(t)
	for p := int32(0); p < 2; p++ {
		for i := range 10 {
			var recs []*kgo.Record
			for j := range 10 {
				recs = append(recs, &kgo.Record{Topic: "limits", Partition: p, Value: []byte(strings.Repeat("x", 100) + fmt.Sprint(i*10+j))})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	fetch := func(offset int64, maxBytes, partMax int32) *kmsg.FetchResponse {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxBytes = maxBytes
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "limits"
		for p := int32(0); p < 2; p++ {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = p
			rp.FetchOffset = offset
			rp.PartitionMaxBytes = partMax
			rp.CurrentLeaderEpoch = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	batches := func(raw []byte) []kmsg.RecordBatch {
		var out []kmsg.RecordBatch
		for len(raw) > 0 {
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(raw); err != nil {
				t.Fatalf("bad batch in fetch: %v", err)
			}
			out = append(out, rb)
			raw = raw[12+rb.Length:]
		}
		return out
	}

	// Tiny limits: exactly one whole batch from the first partition,
	// none from the second; it is the batch holding offset 15.
	resp := fetch(15, 1, 1)
	p0 := batches(resp.Topics[0].Partitions[0].RecordBatches)
	if len(p0) != 1 || p0[0].FirstOffset != 10 || p0[0].NumRecords != 10 {
		t.Fatalf("KIP-74 fetch: %d batches, first at %d", len(p0), p0[0].FirstOffset)
	}
	if n := len(resp.Topics[0].Partitions[1].RecordBatches); n != 0 {
		t.Fatalf("second partition got %d bytes past the response limit", n)
	}
	// A per-partition limit of two batches' size gives two whole batches
	// from each partition.
	size := int32(len(resp.Topics[0].Partitions[0].RecordBatches))
	resp = fetch(0, 1<<20, 2*size)
	for p := range 2 {
		bs := batches(resp.Topics[0].Partitions[p].RecordBatches)
		if len(bs) != 2 || bs[1].FirstOffset != 10 {
			t.Fatalf("partition %d: %d batches with a two-batch limit", p, len(bs))
		}
		if hw := resp.Topics[0].Partitions[p].HighWatermark; hw != 100 {
			t.Fatalf("partition %d: high watermark %d, want 100", p, hw)
		}
	}
	// Past the end is OFFSET_OUT_OF_RANGE; at the end is empty.
	resp = fetch(101, 1<<20, 1<<20)
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != kerr.OffsetOutOfRange {
		t.Fatalf("fetch past the end: %v", err)
	}
	resp = fetch(100, 1<<20, 1<<20)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("fetch at the end: error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
}

// ListOffsets: earliest, latest, max timestamp, and lookup by timestamp
// inside batches, for every compression codec.
func TestListOffsets(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	base := time.UnixMilli(1_700_000_000_000)
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		name := "ts-" + codecName(codec)
		t.Run(name, func(t *testing.T) {
			createTopic(t, adm, name, 1, nil)
			cl := newClient(t, b.Addr(), kgo.ProducerBatchCompression(codec))
			// 5 batches of 20 records; record i has timestamp base+i s.
			produceBatches(t, cl, name, 5, 20, base)
			ctx := testContext(t)
			check := func(what string, got kadm.ListedOffsets, wantOff int64) {
				t.Helper()
				l, ok := got.Lookup(name, 0)
				if !ok || l.Err != nil || l.Offset != wantOff {
					t.Fatalf("%s: %+v, want offset %d", what, l, wantOff)
				}
			}
			start, err := adm.ListStartOffsets(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			check("earliest", start, 0)
			end, err := adm.ListEndOffsets(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			check("latest", end, 100)
			for _, tc := range []struct {
				ts   time.Time
				want int64
			}{
				{base.Add(-time.Hour), 0},
				{base.Add(37 * time.Second), 37},
				{base.Add(37*time.Second + time.Millisecond), 38},
				{base.Add(99 * time.Second), 99},
			} {
				got, err := adm.ListOffsetsAfterMilli(ctx, tc.ts.UnixMilli(), name)
				if err != nil {
					t.Fatal(err)
				}
				check(fmt.Sprintf("after %v", tc.ts.Sub(base)), got, tc.want)
			}
			// After the last timestamp there is no such record: -1.
			got, err := adm.ListOffsetsAfterMilli(ctx, base.Add(time.Hour).UnixMilli(), name)
			if err != nil {
				t.Fatal(err)
			}
			if l, _ := got.Lookup(name, 0); l.Offset != -1 && l.Offset != 100 {
				t.Fatalf("after the last record: offset %d", l.Offset)
			}
			// Max timestamp (-3) is the last record.
			req := kmsg.NewPtrListOffsetsRequest()
			req.ReplicaID = -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = name
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp = -3
			rp.CurrentLeaderEpoch = -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			sp := resp.Topics[0].Partitions[0]
			if sp.ErrorCode != 0 || sp.Offset != 99 || sp.Timestamp != base.Add(99*time.Second).UnixMilli() {
				t.Fatalf("max timestamp: offset %d ts %d error %d", sp.Offset, sp.Timestamp, sp.ErrorCode)
			}
		})
	}
}

func codecName(c kgo.CompressionCodec) string {
	switch c {
	case kgo.GzipCompression():
		return "gzip"
	case kgo.SnappyCompression():
		return "snappy"
	case kgo.Lz4Compression():
		return "lz4"
	case kgo.ZstdCompression():
		return "zstd"
	}
	return "none"
}

func TestDescribeClusterAndConfigs(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{NodeID: 3})
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Controller != 3 || len(meta.Brokers) != 1 || meta.Brokers[0].NodeID != 3 || meta.Cluster == "" {
		t.Fatalf("metadata: %+v", meta)
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	resp, err := dc.RequestWith(ctx, newClient(t, b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ClusterID != meta.Cluster || resp.ControllerID != 3 || len(resp.Brokers) != 1 {
		t.Fatalf("describe cluster: %+v", resp)
	}
	createTopic(t, adm, "conf", 1, map[string]*string{"retention.ms": ptr("12345")})
	rcs, err := adm.DescribeTopicConfigs(ctx, "conf")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("conf", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs: %v %v", err, rc.Err)
	}
	found := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		found[c.Key] = c
	}
	if c := found["retention.ms"]; c.MaybeValue() != "12345" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms: %+v", c)
	}
	if c := found["cleanup.policy"]; c.MaybeValue() != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("cleanup.policy: %+v", c)
	}
	if _, err := adm.DescribeTopicConfigs(ctx, "missing"); err != nil {
		t.Fatal(err)
	}
}

// The metrics endpoint exports the per-topic, per-API and per-partition
// series the issue names.
func TestMetrics(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{MetricsListen: "127.0.0.1:0"})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "metered", 2, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("metered"))
	for i := range 50 {
		if err := cl.ProduceSync(testContext(t), &kgo.Record{Value: fmt.Appendf(nil, "m%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumeAll(t, b.Addr(), "metered", 50)
	resp, err := http.Get("http://" + b.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`runnel_broker_topic_records_in_total{topic="metered"} 50`,
		`runnel_broker_topic_bytes_in_total{topic="metered"}`,
		`runnel_broker_topic_bytes_out_total{topic="metered"}`,
		`runnel_broker_topic_records_out_total{topic="metered"}`,
		`runnel_broker_request_duration_seconds_bucket{api="Produce"`,
		`runnel_broker_requests_total{api="Fetch"}`,
		`partition="0",topic="metered"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}
