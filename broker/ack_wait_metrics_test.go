package broker_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Produce requests' waits for their acknowledgement are counted by acks
// in runnel_broker_produce_ack_wait_seconds.
func TestProduceAckWaitMetric(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{MetricsListen: "127.0.0.1:0"})
	createTopic(t, newAdmin(t, b.Addr()), "acked", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, acks := range []kgo.Acks{kgo.AllISRAcks(), kgo.LeaderAck()} {
		opts := []kgo.Opt{kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("acked"), kgo.RequiredAcks(acks)}
		if acks == kgo.LeaderAck() {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		cl.Close()
	}
	body := scrape(t, b.MetricsAddr())
	for _, acks := range []string{"all", "1"} {
		m := regexp.MustCompile(`\nrunnel_broker_produce_ack_wait_seconds_count\{acks="` + acks + `"\} (\d+)`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no ack wait histogram for acks=%s", acks)
		}
		if n, _ := strconv.Atoi(m[1]); n < 3 {
			t.Errorf("acks=%s: %d waits counted, want at least 3", acks, n)
		}
	}
}

// Each group commit of a durable partition (the fdatasync acks=all waits
// for) is timed in runnel_broker_log_flush_seconds.
func TestLogFlushMetric(t *testing.T) {
	body := scrapeAfterThreeProduces(t, "flushed")
	// Each acknowledged produce waited for a flush that covered it, and
	// three sequential ones cannot share one.
	m := regexp.MustCompile(`\nrunnel_broker_log_flush_seconds_count (\d+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no log flush histogram")
	}
	if n, _ := strconv.Atoi(m[1]); n < 3 {
		t.Errorf("%d flushes counted, want at least 3", n)
	}
}

// Every acknowledged Produce is split into the phases of
// runnel_broker_produce_phase_seconds, each counted once per request.
func TestProducePhaseMetric(t *testing.T) {
	body := scrapeAfterThreeProduces(t, "phased")
	for _, phase := range []string{"read", "append", "queued", "respond"} {
		m := regexp.MustCompile(`\nrunnel_broker_produce_phase_seconds_count\{phase="` + phase + `"\} (\d+)`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no produce phase histogram for %s", phase)
		}
		// The client's first requests (metadata, producer id) are not
		// Produce requests: exactly the three produces are counted.
		if n, _ := strconv.Atoi(m[1]); n != 3 {
			t.Errorf("phase %s: %d produces counted, want 3", phase, n)
		}
	}
}

// scrapeAfterThreeProduces starts a broker serving metrics, produces three
// records one after another with acks=all to a new one-partition topic,
// and returns the broker's metrics page.
func scrapeAfterThreeProduces(t *testing.T, topic string) string {
	t.Helper()
	b := testutil.StartBroker(t, broker.Config{MetricsListen: "127.0.0.1:0"})
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return scrape(t, b.MetricsAddr())
}
