package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Helpers for the consumer group tests (group_*_test.go).

// groupBrokerConfig is a broker for group tests: a short initial
// rebalance delay, few __consumer_offsets partitions (start-up is
// quicker), and metrics on.
func groupBrokerConfig() broker.Config {
	return broker.Config{
		GroupInitialRebalanceDelay: 20 * time.Millisecond,
		OffsetsTopicPartitions:     5,
		MetricsListen:              "127.0.0.1:0",
	}
}

// assignEvent is one OnPartitionsAssigned or OnPartitionsRevoked call.
type assignEvent struct {
	at         time.Time
	revoked    bool
	partitions []int32
}

// groupConsumer is a franz-go group member that polls in its own
// goroutine and records what it consumed and which assignment callbacks
// it saw.
type groupConsumer struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // guards the following
	owned   map[int32]bool
	events  []assignEvent
	records []*kgo.Record
	at      []time.Time // when each record was polled
	err     error
}

// startConsumer joins group, consuming topic, as client id name.
func startConsumer(t testing.TB, addr, group, topic, name string, opts ...kgo.Opt) *groupConsumer {
	t.Helper()
	gc := &groupConsumer{name: name, owned: make(map[int32]bool), done: make(chan struct{})}
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			gc.event(false, m[topic])
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			gc.event(true, m[topic])
			// What the default revoke does: commit what was polled.
			if err := cl.CommitUncommittedOffsets(ctx); err != nil && !errors.Is(err, kgo.ErrClientClosed) {
				gc.setErr(fmt.Errorf("commit on revoke: %w", err))
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			gc.event(true, m[topic])
		}),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	gc.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	gc.cancel = cancel
	go gc.poll(ctx)
	t.Cleanup(gc.close)
	return gc
}

func (gc *groupConsumer) poll(ctx context.Context) {
	defer close(gc.done)
	for {
		fs := gc.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		now := time.Now()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				gc.setErr(fmt.Errorf("fetch %s[%d]: %w", topic, p, err))
			}
		})
		gc.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			gc.records = append(gc.records, r)
			gc.at = append(gc.at, now)
		})
		gc.mu.Unlock()
	}
}

func (gc *groupConsumer) event(revoked bool, parts []int32) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	gc.events = append(gc.events, assignEvent{at: time.Now(), revoked: revoked, partitions: slices.Clone(parts)})
	for _, p := range parts {
		gc.owned[p] = !revoked
	}
}

func (gc *groupConsumer) setErr(err error) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if gc.err == nil {
		gc.err = err
	}
}

// close stops polling and closes the client, which commits what it
// polled and leaves the group. Safe to call more than once.
func (gc *groupConsumer) close() {
	gc.cancel()
	<-gc.done
	gc.cl.Close()
}

// owns returns the partitions the member holds, sorted.
func (gc *groupConsumer) owns() []int32 {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	var out []int32
	for p, ok := range gc.owned {
		if ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func (gc *groupConsumer) snapshot() ([]*kgo.Record, []assignEvent) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return slices.Clone(gc.records), slices.Clone(gc.events)
}

func (gc *groupConsumer) firstErr() error {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return gc.err
}

// describe returns one group's description.
func describe(t testing.TB, adm *kadm.Client, group string) kadm.DescribedGroup {
	t.Helper()
	ds, err := adm.DescribeGroups(testContext(t), group)
	if err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	return ds[group]
}

// assignment maps client id to the partitions of topic assigned in a
// Stable group, or returns ok false while the group is rebalancing.
func assignment(t testing.TB, adm *kadm.Client, group, topic string) (map[string][]int32, int, bool) {
	d := describe(t, adm, group)
	if d.Err != nil || d.State != "Stable" {
		return nil, 0, false
	}
	out := make(map[string][]int32)
	for _, m := range d.Members {
		c, ok := m.Assigned.AsConsumer()
		if !ok {
			return nil, 0, false
		}
		var ps []int32
		for _, at := range c.Topics {
			if at.Topic == topic {
				ps = append(ps, at.Partitions...)
			}
		}
		slices.Sort(ps)
		out[m.ClientID] = ps
	}
	return out, len(d.Members), true
}

// waitBalanced waits until the group is Stable with members, whose
// assignments cover every partition of a topic of n partitions exactly
// once, and every member's callbacks agree with the broker.
func waitBalanced(t testing.TB, adm *kadm.Client, group, topic string, n int32, members ...*groupConsumer) map[string][]int32 {
	t.Helper()
	var got map[string][]int32
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		a, count, ok := assignment(t, adm, group, topic)
		if !ok || count != len(members) {
			return false, fmt.Sprintf("group %s stable with %d members (has %d, %v)", group, len(members), count, a)
		}
		seen := make(map[int32]int)
		for _, ps := range a {
			for _, p := range ps {
				seen[p]++
			}
		}
		for p := int32(0); p < n; p++ {
			if seen[p] != 1 {
				return false, fmt.Sprintf("partition %d assigned %d times: %v", p, seen[p], a)
			}
		}
		for _, m := range members {
			if !slices.Equal(m.owns(), a[m.name]) {
				return false, fmt.Sprintf("%s owns %v, broker says %v", m.name, m.owns(), a[m.name])
			}
		}
		got = a
		return true, ""
	})
	return got
}

// produceN writes n records round-robin over partitions, value "i".
func produceN(t testing.TB, addr, topic string, partitions int32, from, n int) {
	t.Helper()
	cl := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Partition: int32(from+i) % partitions, Value: []byte(strconv.Itoa(from + i))}
	}
	if err := cl.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()
}

// scrapeGroupLag reads runnel_broker_group_lag for group from the metrics
// endpoint, by "topic/partition".
func scrapeGroupLag(t testing.TB, metricsAddr, group string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "runnel_broker_group_lag{") || !strings.Contains(line, `group="`+group+`"`) {
			continue
		}
		labels := line[strings.Index(line, "{")+1 : strings.LastIndex(line, "}")]
		var topic, part string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "topic":
				topic = v
			case "partition":
				part = v
			}
		}
		val, err := strconv.ParseFloat(strings.TrimSpace(line[strings.LastIndex(line, "}")+1:]), 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[topic+"/"+part] = val
	}
	return out
}
