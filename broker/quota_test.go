package broker_test

import (
	"context"
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

// The quota tests hold a client to quotaTestRate with Kafka's default
// windows, 11 of 1s: a burst of quotaTestBurst bytes, then the quota.
const (
	quotaTestRate  = 1 << 20 // bytes per second
	quotaTestBurst = quotaTestRate * 11
	// quotaTestRun is how long the rate is measured, from the first
	// byte; quotaTestWarmup is how much of it the lower bound skips,
	// the burst and the first throttles.
	quotaTestRun    = 13 * time.Second
	quotaTestWarmup = 3 * time.Second
)

// timedBytes are bytes seen at a time, by the broker's clock or the
// client's.
type timedBytes struct {
	at    time.Time
	bytes int
}

// checkQuotaBand asserts that a client over its quota got within 10% of
// it. The two bounds are measured differently so that a loaded machine
// cannot fail either:
//
//   - Above: the broker holds a client to at most its burst plus the quota
//     times the time since its first byte, whatever the load (the token
//     bucket's guarantee; quota.go). So the bytes over the whole run,
//     less the burst, are at most 110% of the quota's. Load can only make
//     the client send less.
//   - Below: after the burst, 10s at at least 90% of the quota. The broker
//     credits time a stalled client did not send (up to the 11s window
//     span), so a client slowed by a busy machine catches up; it only has
//     to manage 1 MiB/s on average, over loopback.
func checkQuotaBand(t *testing.T, what string, seen []timedBytes) {
	t.Helper()
	if len(seen) == 0 {
		t.Fatalf("%s: nothing seen", what)
	}
	first := seen[0].at
	var total, steady int
	for _, s := range seen {
		since := s.at.Sub(first)
		if since < quotaTestRun {
			total += s.bytes
		}
		if since >= quotaTestWarmup && since < quotaTestRun {
			steady += s.bytes
		}
	}
	overall := float64(total-quotaTestBurst) / quotaTestRun.Seconds()
	rate := float64(steady) / (quotaTestRun - quotaTestWarmup).Seconds()
	t.Logf("%s: %.0f B/s (%.1f%% of the quota) past its burst over %v; %.0f B/s (%.1f%%) over the last %v",
		what, overall, 100*overall/quotaTestRate, quotaTestRun, rate, 100*rate/quotaTestRate, quotaTestRun-quotaTestWarmup)
	if overall > 1.1*quotaTestRate {
		t.Errorf("%s: %.0f B/s past its burst, over 110%% of the quota %d B/s", what, overall, quotaTestRate)
	}
	if rate < 0.9*quotaTestRate {
		t.Errorf("%s: %.0f B/s after the burst, under 90%% of the quota %d B/s", what, rate, quotaTestRate)
	}
}

// A producer pushing as hard as it can against a producer_byte_rate quota
// is held within 10% of it, measured by the broker's own clock (the
// records' LogAppendTime), while a producer with another client id beside
// it is never throttled.
func TestProducerQuotaThrottles(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := kadm.NewClient(newClient(t, b.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	appendTime := map[string]*string{"message.timestamp.type": kmsg.StringPtr("LogAppendTime")}
	for _, topic := range []string{"q-slow", "q-fast"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, appendTime, topic); err != nil {
			t.Fatal(err)
		}
	}
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: quotaEntity("client-id", "slow"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: quotaTestRate}}},
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
	produced := func(_ *kgo.Record, err error) {
		if err != nil {
			t.Errorf("produce: %v", err)
		}
	}

	// Both run a second past the measured span, so it ends while they
	// still push.
	end := time.Now().Add(quotaTestRun + time.Second)
	var wg sync.WaitGroup
	wg.Go(func() {
		// As hard as it can: Produce blocks while 64 records are
		// buffered, so throttles hold it back.
		for time.Now().Before(end) && ctx.Err() == nil {
			slow.Produce(ctx, &kgo.Record{Value: value}, produced)
		}
		slow.Flush(ctx)
	})
	wg.Go(func() {
		// Paced at 4 MiB/s rather than flat out, so the test does not
		// write a gigabyte on a busy machine: 40 KiB every 10ms.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for time.Now().Before(end) && ctx.Err() == nil {
			for range 40 {
				fast.Produce(ctx, &kgo.Record{Value: value}, produced)
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
		fast.Flush(ctx)
	})
	wg.Wait()

	// The record bytes the broker appended, when it appended them.
	appended := func(topic string) []timedBytes {
		cl := newClient(t, b.Addr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ends.Lookup(topic, 0)
		var seen []timedBytes
		for int64(len(seen)) < want.Offset {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { seen = append(seen, timedBytes{r.Timestamp, len(r.Value)}) })
		}
		return seen
	}
	checkQuotaBand(t, "throttled producer", appended("q-slow"))
	var fastBytes int
	fastSeen := appended("q-fast")
	if len(fastSeen) < 2 {
		t.Fatalf("the producer without a quota wrote %d records", len(fastSeen))
	}
	for _, s := range fastSeen {
		fastBytes += s.bytes
	}
	fastRate := float64(fastBytes) / fastSeen[len(fastSeen)-1].at.Sub(fastSeen[0].at).Seconds()
	t.Logf("throttled producer: %d throttles; other producer: %.0f B/s, %d throttles", slowHooks.n.Load(), fastRate, fastHooks.n.Load())
	if slowHooks.n.Load() == 0 {
		t.Error("the producer over its quota was never told of a throttle")
	}
	if fastHooks.n.Load() != 0 {
		t.Errorf("the producer without a quota was throttled %d times", fastHooks.n.Load())
	}
}

// A consumer reading as fast as it can against a consumer_byte_rate quota
// is held within 10% of it, measured by when its records arrive, while a
// consumer with another client id reading the same topic beside it is
// never throttled.
func TestConsumerQuotaThrottles(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Batches of 64 KiB: a fetch returns whole batches, and the bytes
	// counted in the measured span are as coarse as they are.
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("cq"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(64<<10))
	adm := kadm.NewClient(prod)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "cq"); err != nil {
		t.Fatal(err)
	}
	// More than the throttled consumer can read in the measured span:
	// its burst plus 110% of the quota for the span.
	const records = 4 << 10
	value := make([]byte, 8<<10)
	for range records {
		prod.Produce(ctx, &kgo.Record{Value: value}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: quotaEntity("client-id", "reader"), Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: quotaTestRate}}},
	})
	if err != nil || res[0].Err != nil {
		t.Fatalf("set quota: %v %v", err, res)
	}

	consumer := func(id string, hooks *throttleCounter) *kgo.Client {
		return newClient(t, b.Addr(), kgo.ClientID(id), kgo.WithHooks(hooks), kgo.ConsumeTopics("cq"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(256<<10), kgo.FetchMaxPartitionBytes(256<<10))
	}
	var slowHooks, fastHooks throttleCounter
	slow, fast := consumer("reader", &slowHooks), consumer("other", &fastHooks)
	var slowSeen []timedBytes
	var fastTook time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		// Received bytes, by the client's clock: a client slower than
		// the broker can only see them later, so fewer in the span.
		for read := 0; read < records && (len(slowSeen) == 0 || time.Since(slowSeen[0].at) < quotaTestRun+time.Second); {
			fs := slow.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Error(err)
				return
			}
			now, n := time.Now(), 0
			fs.EachRecord(func(r *kgo.Record) { n += len(r.Value) })
			read += fs.NumRecords()
			if n > 0 {
				slowSeen = append(slowSeen, timedBytes{now, n})
			}
		}
	})
	wg.Go(func() {
		start := time.Now()
		for n := 0; n < records; {
			fs := fast.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Error(err)
				return
			}
			n += fs.NumRecords()
		}
		fastTook = time.Since(start)
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	checkQuotaBand(t, "throttled consumer", slowSeen)
	fastRate := float64(records*len(value)) / fastTook.Seconds()
	t.Logf("throttled consumer: %d throttles; other consumer: %.0f B/s, %d throttles", slowHooks.n.Load(), fastRate, fastHooks.n.Load())
	if slowHooks.n.Load() == 0 {
		t.Error("the consumer over its quota was never told of a throttle")
	}
	if fastHooks.n.Load() != 0 {
		t.Errorf("the consumer without a quota was throttled %d times", fastHooks.n.Load())
	}
}

// request_percentage holds a client's handler time: with a quota of a
// thousandth of a percent of a thread (a burst of 0.11 ms over the default
// windows), a client sending Metadata requests is soon told to back off,
// and its responses carry the throttle time.
func TestRequestPercentageThrottles(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := kadm.NewClient(newClient(t, b.Addr()))
	ctx := testContext(t)
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: quotaEntity("client-id", "busy"), Ops: []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: 0.001}}},
	})
	if err != nil || res[0].Err != nil {
		t.Fatalf("AlterClientQuotas: %v %v", err, res)
	}
	cl := newClient(t, b.Addr(), kgo.ClientID("busy"))
	for i := range 2000 {
		req := kmsg.NewPtrMetadataRequest()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ThrottleMillis > 0 {
			return
		}
		if i == 1999 {
			t.Fatal("2000 Metadata requests, none throttled at request_percentage=0.001")
		}
	}
}
