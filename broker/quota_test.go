package broker_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

func quotaEntity(kv ...string) kadm.ClientQuotaEntity {
	var e kadm.ClientQuotaEntity
	for i := 0; i < len(kv); i += 2 {
		c := kadm.ClientQuotaEntityComponent{Type: kv[i]}
		if kv[i+1] != "<default>" {
			c.Name = &kv[i+1]
		}
		e = append(e, c)
	}
	return e
}

// AlterClientQuotas stores quotas per entity and DescribeClientQuotas
// filters them as Kafka's; bad entries get INVALID_REQUEST, alone.
func TestClientQuotasAPI(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := kadm.NewClient(newClient(t, b.Addr()))
	ctx := testContext(t)
	set := func(key string, v float64) kadm.AlterClientQuotaOp {
		return kadm.AlterClientQuotaOp{Key: key, Value: v}
	}
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: quotaEntity("user", "alice"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1024), set("consumer_byte_rate", 2048)}},
		{Entity: quotaEntity("user", "alice", "client-id", "app"), Ops: []kadm.AlterClientQuotaOp{set("request_percentage", 25.5)}},
		{Entity: quotaEntity("client-id", "<default>"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 4096)}},
		{Entity: quotaEntity("user", "<default>"), Ops: []kadm.AlterClientQuotaOp{set("consumer_byte_rate", 8192)}},
		{Entity: quotaEntity("ip", "10.0.0.1"), Ops: []kadm.AlterClientQuotaOp{set("connection_creation_rate", 5)}},
		// Refused, each alone:
		{Entity: quotaEntity("user", "bad"), Ops: []kadm.AlterClientQuotaOp{set("retention.ms", 1)}},
		{Entity: quotaEntity("user", "bad", "ip", "10.0.0.2"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1)}},
		{Entity: quotaEntity("user", "bad"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1.5)}},
		{Entity: quotaEntity("user", "bad"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", -1)}},
		{Entity: quotaEntity("group", "bad"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1)}},
		{Entity: quotaEntity("ip", "not-an-ip"), Ops: []kadm.AlterClientQuotaOp{set("connection_creation_rate", 1)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		wantBad := i >= 5
		if got := errors.Is(r.Err, kerr.InvalidRequest); got != wantBad || (!wantBad && r.Err != nil) {
			t.Errorf("entry %d (%v): %v %s", i, r.Entity, r.Err, r.ErrMessage)
		}
	}

	describe := func(strict bool, comps ...kadm.DescribeClientQuotaComponent) map[string]map[string]float64 {
		t.Helper()
		d, err := adm.DescribeClientQuotas(ctx, strict, comps)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]float64{}
		for _, q := range d {
			vals := map[string]float64{}
			for _, v := range q.Values {
				vals[v.Key] = v.Value
			}
			out[q.Entity.String()] = vals
		}
		return out
	}
	name := func(s string) *string { return &s }
	all := describe(false)
	if len(all) != 5 || all["{user=alice}"]["consumer_byte_rate"] != 2048 || all["{user=alice, client-id=app}"]["request_percentage"] != 25.5 ||
		all["{client-id=<default>}"]["producer_byte_rate"] != 4096 || all["{ip=10.0.0.1}"]["connection_creation_rate"] != 5 {
		t.Fatalf("all quotas: %v", all)
	}
	if got := describe(false, kadm.DescribeClientQuotaComponent{Type: "user", MatchName: name("alice"), MatchType: kmsg.QuotasMatchTypeExact}); len(got) != 2 {
		t.Fatalf("user=alice, not strict: %v", got)
	}
	if got := describe(true, kadm.DescribeClientQuotaComponent{Type: "user", MatchName: name("alice"), MatchType: kmsg.QuotasMatchTypeExact}); len(got) != 1 || got["{user=alice}"] == nil {
		t.Fatalf("user=alice, strict: %v", got)
	}
	if got := describe(false, kadm.DescribeClientQuotaComponent{Type: "user", MatchType: kmsg.QuotasMatchTypeDefault}); len(got) != 1 || got["{user=<default>}"] == nil {
		t.Fatalf("user default: %v", got)
	}
	if got := describe(false, kadm.DescribeClientQuotaComponent{Type: "client-id", MatchType: kmsg.QuotasMatchTypeAny}); len(got) != 2 {
		t.Fatalf("any client-id: %v", got)
	}
	if _, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: kmsg.QuotasMatchTypeExact}}); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("exact match without a name: %v", err)
	}

	// Removing the last key removes the entity; validate-only changes
	// nothing.
	if _, err := adm.ValidateAlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: quotaEntity("user", "zed"), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1)}}}); err != nil {
		t.Fatal(err)
	}
	res, err = adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: quotaEntity("user", "alice", "client-id", "app"), Ops: []kadm.AlterClientQuotaOp{{Key: "request_percentage", Remove: true}}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("remove: %v %v", err, res)
	}
	if all := describe(false); len(all) != 4 || all["{user=zed}"] != nil {
		t.Fatalf("after remove and validate-only: %v", all)
	}
}

// throttleCounter counts the throttles a client was told of.
type throttleCounter struct{ n atomic.Int64 }

func (h *throttleCounter) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		h.n.Add(1)
	}
}

// A producer with a producer_byte_rate quota is held to it, measured by
// the broker's own clock (the records' LogAppendTime) over the seconds
// after its first burst, while a producer with another client id beside
// it is never throttled.
func TestProducerQuotaThrottles(t *testing.T) {
	const quota = 256 << 10 // bytes per second
	b := testutil.StartBroker(t, broker.Config{ClientLimits: broker.ClientLimitsConfig{QuotaWindowNum: 5, QuotaWindowSize: 500 * time.Millisecond}})
	adm := kadm.NewClient(newClient(t, b.Addr()))
	ctx := testContext(t)
	appendTime := map[string]*string{"message.timestamp.type": kmsg.StringPtr("LogAppendTime")}
	for _, topic := range []string{"q-slow", "q-fast"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, appendTime, topic); err != nil {
			t.Fatal(err)
		}
	}
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: quotaEntity("client-id", "slow"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: quota}}},
	})
	if err != nil || res[0].Err != nil {
		t.Fatalf("set quota: %v %v", err, res)
	}

	// Uncompressed, so the bytes on the wire are about the records':
	// the quota counts what the wire carries.
	producer := func(id string, hooks *throttleCounter) *kgo.Client {
		return newClient(t, b.Addr(), kgo.ClientID(id), kgo.WithHooks(hooks), kgo.DefaultProduceTopic("q-"+id),
			kgo.ProducerLinger(0), kgo.MaxBufferedRecords(64), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(16<<10))
	}
	var slowHooks, fastHooks throttleCounter
	slow, fast := producer("slow", &slowHooks), producer("fast", &fastHooks)
	value := make([]byte, 1<<10)

	// The first window span (2.5s) lets a burst through, as Kafka's does:
	// the rate is measured over the span after it.
	const warmup, measure = 3 * time.Second, 4 * time.Second
	start := time.Now()
	run := func(cl *kgo.Client) {
		for time.Since(start) < warmup+measure+time.Second && ctx.Err() == nil {
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		cl.Flush(ctx)
	}
	var wg sync.WaitGroup
	wg.Go(func() { run(slow) })
	wg.Go(func() { run(fast) })
	wg.Wait()

	// The bytes the broker appended in the measured span, from its
	// first append of the topic.
	appended := func(topic string) float64 {
		cl := newClient(t, b.Addr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		end, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := end.Lookup(topic, 0)
		var first time.Time
		var bytes, n int64
		for n < want.Offset {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				n++
				if first.IsZero() {
					first = r.Timestamp
				}
				if since := r.Timestamp.Sub(first); since >= warmup && since < warmup+measure {
					bytes += int64(len(r.Value))
				}
			})
		}
		return float64(bytes) / measure.Seconds()
	}
	rate, fastRate := appended("q-slow"), appended("q-fast")
	t.Logf("throttled producer: %.0f B/s (quota %d), %d throttles; other producer: %.0f B/s, %d throttles",
		rate, quota, slowHooks.n.Load(), fastRate, fastHooks.n.Load())
	// Generous below (a busy machine may not even reach the quota),
	// tighter above: the quota is a ceiling.
	if rate > 1.1*quota || rate < 0.5*quota {
		t.Errorf("throttled producer wrote %.0f B/s, quota %d", rate, quota)
	}
	if slowHooks.n.Load() == 0 {
		t.Error("the producer over its quota was never told of a throttle")
	}
	if fastHooks.n.Load() != 0 {
		t.Errorf("the producer without a quota was throttled %d times", fastHooks.n.Load())
	}
}

// A consumer with a consumer_byte_rate quota is throttled once past its
// first burst: reading 3 MiB at 512 KiB/s with 1 MiB of burst takes
// seconds, not the moment it takes unthrottled.
func TestConsumerQuotaThrottles(t *testing.T) {
	const quota = 512 << 10
	b := testutil.StartBroker(t, broker.Config{ClientLimits: broker.ClientLimitsConfig{QuotaWindowNum: 5, QuotaWindowSize: 500 * time.Millisecond}})
	ctx := testContext(t)
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("cq"), kgo.AllowAutoTopicCreation(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(prod)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "cq"); err != nil {
		t.Fatal(err)
	}
	const records = 384
	value := make([]byte, 8<<10)
	for range records {
		prod.Produce(ctx, &kgo.Record{Value: value}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: quotaEntity("client-id", "reader"), Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: quota}}},
	})
	if err != nil || res[0].Err != nil {
		t.Fatalf("set quota: %v %v", err, res)
	}
	var hooks throttleCounter
	cons := newClient(t, b.Addr(), kgo.ClientID("reader"), kgo.WithHooks(&hooks), kgo.ConsumeTopics("cq"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(256<<10), kgo.FetchMaxPartitionBytes(256<<10))
	start := time.Now()
	for n := 0; n < records; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	took := time.Since(start)
	t.Logf("read %d KiB in %v, %d throttles", records*8, took, hooks.n.Load())
	if hooks.n.Load() == 0 {
		t.Error("the consumer over its quota was never told of a throttle")
	}
	// 3 MiB less the 1 MiB the first windows allow is 4s at the quota;
	// half of that leaves room for timing.
	if took < 2*time.Second {
		t.Errorf("read 3 MiB in %v at a quota of %d B/s", took, quota)
	}
}
