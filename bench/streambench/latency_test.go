package main

import (
	"cmp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/internal/kafkapeer"
	"github.com/runnel-dev/runnel/internal/nexmark"
)

func TestLatencyStats(t *testing.T) {
	from := time.UnixMilli(10_000)
	to := from.Add(time.Second)
	var s []outputSample
	// Outside the span: a warm-up input's output, and one after it.
	s = append(s, outputSample{ts: from.Add(-time.Millisecond), latency: time.Hour},
		outputSample{ts: to, latency: time.Hour})
	for i := range 100 { // latencies 1..100 ms, in reverse
		s = append(s, outputSample{ts: from.Add(time.Duration(i) * time.Millisecond), latency: time.Duration(100-i) * time.Millisecond})
	}
	n, p50, p99, largest := latencyStats(s, from, to)
	if n != 100 || p50 != 50*time.Millisecond || p99 != 99*time.Millisecond || largest != 100*time.Millisecond {
		t.Errorf("got n %d p50 %v p99 %v max %v; want 100, 50ms, 99ms, 100ms", n, p50, p99, largest)
	}
	if n, _, _, _ := latencyStats(s[:2], from, to); n != 0 {
		t.Errorf("%d samples in the span, want 0", n)
	}
}

func TestChooseNexmarkBrokers(t *testing.T) {
	for in, want := range map[string]string{"runnel": "runnel", "kafka": "kafka", "both": "runnel,kafka", "kafka, runnel,kafka": "kafka,runnel"} {
		got, err := chooseNexmarkBrokers(in)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("%q: %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "redpanda", ","} {
		if _, err := chooseNexmarkBrokers(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// testBench is a bench with Runnel's broker started in this process, for
// the quick runs below; set changes the bench before the broker starts.
func testBench(t *testing.T, set ...func(*bench)) *bench {
	t.Helper()
	b := &bench{ctx: t.Context(), tmp: t.TempDir(), prog: &progress{start: time.Now()}, nexmarkCache: -1,
		nexmarkEvents: 2000, nexmarkRate: 10_000, nexmarkBrokers: []string{"runnel"},
		latencyWarmup: 300 * time.Millisecond, latencyDuration: time.Second}
	for _, f := range set {
		f(b)
	}
	if err := b.startBroker(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.cl.Close()
		if err := b.broker.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// checkLatency runs q under g at a fixed rate and checks what the
// latency phase reports. For q0 every input event has exactly one
// output, stamped with its produce time, so the outputs measured are the
// events produced in the measured span.
func checkLatency(t *testing.T, b *bench, q nexmark.Query, g runnel.Guarantee) latencyResult {
	t.Helper()
	r, err := b.runLatency(engineRunnel, "", q, g, 2000, 0.92)
	if err != nil {
		t.Fatal(err)
	}
	if !r.drained || r.produced == 0 || r.outputs == 0 || r.p50 <= 0 || r.p50 > r.p99 || r.p99 > r.max {
		t.Errorf("%s %s: %+v", q.Name, g, r)
	}
	if q.Name == "q0" && int64(r.outputs) != r.produced {
		t.Errorf("q0 %s: %d outputs measured for %d events produced in the span", g, r.outputs, r.produced)
	}
	return r
}

// A quick latency phase on Runnel's broker: q0 at-least-once and q5
// (hopping windows, two aggregations) exactly-once.
func TestNexmarkLatencyQuick(t *testing.T) {
	b := testBench(t)
	if err := b.createTopics(nexmark.TopicPersons, nexmark.TopicAuctions, nexmark.TopicBids); err != nil {
		t.Fatal(err)
	}
	err := b.onBroker("runnel", func() error {
		b.latencies = append(b.latencies, checkLatency(t, b, nexmark.Queries["q0"], runnel.AtLeastOnce),
			checkLatency(t, b, nexmark.Queries["q5"], runnel.ExactlyOnce))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	b.latencyTable().text(&sb)
	if !strings.Contains(sb.String(), "q5     exactly-once   Runnel") {
		t.Errorf("latency table:\n%s", sb.String())
	}
}

// The nexmark workload on Apache Kafka: a throughput run of q2 over
// pre-produced events, its results read back, and a latency run of q0
// exactly-once, Runnel's app connecting to Kafka as an external broker.
// Skipped without Kafka's jars (scripts/fetch-kafka.sh) and under -short.
func TestNexmarkOnKafkaQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Apache Kafka")
	}
	home := cmp.Or(os.Getenv("KAFKA_HOME"), os.Getenv("RUNNEL_KAFKA_HOME"))
	if home == "" {
		dir, err := os.UserHomeDir()
		if err != nil {
			t.Skip(err)
		}
		home = filepath.Join(dir, ".cache", "runnel", "kafka-4.3.1")
	}
	tool, err := filepath.Abs(filepath.Join("..", "..", "scripts", "kafka-tool.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if why := (kafkapeer.Install{Home: home, Tool: tool}).Check(); why != "" {
		t.Skipf("Apache Kafka: %s", why)
	}
	b := testBench(t)
	b.kafkaHome, b.nexmarkBrokers = home, []string{"kafka"}
	err = b.onBroker("kafka", func() error {
		perTopic, err := produceTestInput(b)
		if err != nil {
			return err
		}
		r, err := b.runNexmark(nexmark.Queries["q2"], runnel.AtLeastOnce, perTopic[nexmark.TopicBids])
		if err != nil {
			return err
		}
		if r.broker != "kafka" || r.processed != perTopic[nexmark.TopicBids] {
			t.Errorf("q2 on kafka: %+v", r)
		}
		out, err := b.readOutput("q2", r.output)
		if err != nil {
			return err
		}
		if out.records == 0 {
			t.Error("q2 on kafka wrote nothing")
		}
		checkLatency(t, b, nexmark.Queries["q0"], runnel.ExactlyOnce)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// produceTestInput creates the Nexmark topics on the broker in use and
// writes b.nexmarkEvents events to them, returning how many per topic.
func produceTestInput(b *bench) (map[string]int64, error) {
	gen, err := nexmark.NewGenerator(nexmark.Config{Seed: 1})
	if err != nil {
		return nil, err
	}
	if err := b.createTopics(nexmark.TopicPersons, nexmark.TopicAuctions, nexmark.TopicBids); err != nil {
		return nil, err
	}
	return b.produceNexmark(gen)
}
