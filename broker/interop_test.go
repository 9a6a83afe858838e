package broker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Interoperability: clients nobody here wrote produce to and consume from
// the broker over TCP, and every record comes back exactly as it was sent:
// partition, offset, key (null stays null), value bytes and headers, in
// order per partition. Each client also reads records another client wrote,
// so neither side can hide a mistake the other mirrors.

// TestInteropFranzGoCompression produces with each codec franz-go has and
// checks that the batches come back with the codec they were written in
// (the broker stores batches as sent) and the records intact.
func TestInteropFranzGoCompression(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	for _, tc := range []struct {
		name  string
		codec kgo.CompressionCodec
		attr  uint8 // the RecordBatch attributes' compression bits
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "franz-" + tc.name
			createTopic(t, adm, topic, 3, nil)
			want := produceKgo(t, b.Addr(), topic, peerRecords(60, 3),
				kgo.ProducerBatchCompression(tc.codec), kgo.ProducerLinger(50*time.Millisecond))
			checkOffsets(t, want)
			recs := consumeAll(t, b.Addr(), topic, len(want))
			var got []peerRecord
			for _, r := range recs {
				got = append(got, fromKgo(r))
				if c := r.Attrs.CompressionType(); c != tc.attr {
					t.Fatalf("record %v came in a batch compressed with codec %d, want %d", fromKgo(r), c, tc.attr)
				}
			}
			checkRecords(t, want, got)
		})
	}
}

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.ClientID = "runnel-interop-sarama"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Compression = sarama.CompressionSnappy
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Fetch.Max = 1 << 20
	// Closing a partition consumer waits out its long poll.
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Metadata.Retry.Max = 3
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

// TestInteropSarama produces with sarama's SyncProducer (Produce v7 at
// protocol version 3.0), consumes with its partition consumer, and crosses
// over with franz-go both ways.
func TestInteropSarama(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "sarama-in", 3, nil)
	createTopic(t, adm, "sarama-out", 3, nil)

	prod, err := sarama.NewSyncProducer([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatalf("sarama producer: %v", err)
	}
	defer prod.Close()
	want := peerRecords(45, 3)
	msgs := make([]*sarama.ProducerMessage, len(want))
	for i, r := range want {
		m := &sarama.ProducerMessage{Topic: "sarama-in", Partition: r.Partition, Value: sarama.ByteEncoder(r.Value)}
		if r.Key != nil {
			m.Key = sarama.ByteEncoder(r.Key)
		}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		}
		msgs[i] = m
	}
	// One record alone, then the rest in one call so that records share
	// batches.
	p, off, err := prod.SendMessage(msgs[0])
	if err != nil {
		t.Fatalf("sarama send: %v", err)
	}
	if p != 0 || off != 0 {
		t.Fatalf("sarama send: acknowledged at partition %d offset %d, want 0 and 0", p, off)
	}
	if err := prod.SendMessages(msgs[1:]); err != nil {
		t.Fatalf("sarama send: %v", err)
	}
	for i, m := range msgs {
		want[i].Offset = m.Offset
		if m.Partition != want[i].Partition {
			t.Fatalf("sarama record %d acknowledged on partition %d, want %d", i, m.Partition, want[i].Partition)
		}
	}
	checkOffsets(t, want)
	checkRecords(t, want, consumeKgo(t, b.Addr(), "sarama-in", len(want)))
	checkRecords(t, want, consumeSarama(t, b.Addr(), "sarama-in", want))

	fromFranz := produceKgo(t, b.Addr(), "sarama-out", peerRecords(30, 3))
	checkRecords(t, fromFranz, consumeSarama(t, b.Addr(), "sarama-out", fromFranz))
}

// consumeSarama reads, from the start of each partition, as many records
// as want has there.
func consumeSarama(t *testing.T, addr, topic string, want []peerRecord) []peerRecord {
	t.Helper()
	c, err := sarama.NewConsumer([]string{addr}, saramaConfig())
	if err != nil {
		t.Fatalf("sarama consumer: %v", err)
	}
	defer c.Close()
	counts := map[int32]int{}
	for _, r := range want {
		counts[r.Partition]++
	}
	ctx := testContext(t)
	var got []peerRecord
	for p, n := range counts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("sarama consume %s[%d]: %v", topic, p, err)
		}
		for range n {
			select {
			case m := <-pc.Messages():
				r := peerRecord{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value}
				for _, h := range m.Headers {
					r.Headers = append(r.Headers, peerHeader{string(h.Key), h.Value})
				}
				got = append(got, r)
			case err := <-pc.Errors():
				t.Fatalf("sarama consume %s[%d]: %v", topic, p, err)
			case <-ctx.Done():
				t.Fatalf("sarama consume %s[%d]: deadline", topic, p)
			}
		}
		if err := pc.Close(); err != nil {
			t.Fatalf("sarama close partition consumer: %v", err)
		}
	}
	return got
}

// TestInteropKafkaGo writes with segmentio/kafka-go's Writer and reads with
// its Reader (no group). kafka-go speaks old versions: its Writer
// negotiates Produce up to v7, its Reader uses Fetch v10 and ListOffsets
// v1, both over ApiVersions v0.
func TestInteropKafkaGo(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "kafkago-in", 3, nil)
	createTopic(t, adm, "kafkago-out", 3, nil)

	want := peerRecords(45, 3)
	var (
		mu    sync.Mutex
		acked []kafka.Message
	)
	w := &kafka.Writer{
		Addr:  kafka.TCP(b.Addr()),
		Topic: "kafkago-in",
		// The partition is the one peerRecords chose, read from the
		// value's index.
		Balancer: kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
			return int(want[indexOf(m.Value)].Partition)
		}),
		RequiredAcks: kafka.RequireAll,
		Compression:  kafka.Lz4,
		BatchTimeout: 10 * time.Millisecond,
		MaxAttempts:  1,
		Completion: func(ms []kafka.Message, err error) {
			if err == nil {
				mu.Lock()
				acked = append(acked, ms...)
				mu.Unlock()
			}
		},
	}
	msgs := make([]kafka.Message, len(want))
	for i, r := range want {
		msgs[i] = kafka.Message{Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			msgs[i].Headers = append(msgs[i].Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
	}
	if err := w.WriteMessages(testContext(t), msgs...); err != nil {
		t.Fatalf("kafka-go write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("kafka-go writer close: %v", err)
	}
	if len(acked) != len(want) {
		t.Fatalf("kafka-go acknowledged %d records, want %d", len(acked), len(want))
	}
	for _, m := range acked {
		i := indexOf(m.Value)
		if int32(m.Partition) != want[i].Partition {
			t.Fatalf("kafka-go record %d acknowledged on partition %d, want %d", i, m.Partition, want[i].Partition)
		}
		want[i].Offset = m.Offset
	}
	checkOffsets(t, want)
	checkRecords(t, want, consumeKgo(t, b.Addr(), "kafkago-in", len(want)))
	checkRecords(t, want, consumeKafkaGo(t, b.Addr(), "kafkago-in", want))

	fromFranz := produceKgo(t, b.Addr(), "kafkago-out", peerRecords(30, 3))
	checkRecords(t, fromFranz, consumeKafkaGo(t, b.Addr(), "kafkago-out", fromFranz))
}

// consumeKafkaGo reads, from the start of each partition, as many records
// as want has there, with one kafka-go Reader per partition.
func consumeKafkaGo(t *testing.T, addr, topic string, want []peerRecord) []peerRecord {
	t.Helper()
	counts := map[int32]int{}
	for _, r := range want {
		counts[r.Partition]++
	}
	ctx := testContext(t)
	var got []peerRecord
	for p, n := range counts {
		rd := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   []string{addr},
			Topic:     topic,
			Partition: int(p),
			MinBytes:  1,
			MaxBytes:  1 << 20,
			MaxWait:   100 * time.Millisecond,
		})
		if err := rd.SetOffset(kafka.FirstOffset); err != nil {
			t.Fatalf("kafka-go reader: %v", err)
		}
		for range n {
			m, err := rd.ReadMessage(ctx)
			if err != nil {
				rd.Close()
				t.Fatalf("kafka-go read %s[%d] after %d records: %v", topic, p, len(got), err)
			}
			r := peerRecord{Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value}
			for _, h := range m.Headers {
				r.Headers = append(r.Headers, peerHeader{h.Key, h.Value})
			}
			got = append(got, r)
		}
		if err := rd.Close(); err != nil {
			t.Fatalf("kafka-go reader close: %v", err)
		}
	}
	return got
}

// kcat finds kcat on PATH, or skips (fails under RUNNEL_REQUIRE_PEERS=1).
func kcat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		missingPeer(t, "kcat is not installed (apt-get install kcat)")
	}
	return path
}

// runPeer runs a peer's command with stdin and returns its stdout, failing
// the test on a non-zero exit.
func runPeer(t *testing.T, ctx context.Context, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %v", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestInteropKcat produces with kcat (librdkafka) a run per partition, with
// a key delimiter, a header and compression, and consumes with kcat's JSON
// output, crossing over with franz-go both ways.
func TestInteropKcat(t *testing.T) {
	bin := kcat(t)
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "kcat-in", 2, nil)
	createTopic(t, adm, "kcat-out", 2, nil)
	ctx := testContext(t)

	want := textRecords(20, 2, "kcat")
	for p, codec := range []string{"snappy", "gzip"} {
		var in strings.Builder
		for _, r := range want {
			if r.Partition == int32(p) {
				fmt.Fprintf(&in, "%s\t%s\n", r.Key, r.Value)
			}
		}
		runPeer(t, ctx, in.String(), bin, "-P", "-b", b.Addr(), "-t", "kcat-in", "-p", fmt.Sprint(p),
			"-K", "\t", "-H", "origin=kcat", "-z", codec, "-X", "acks=all")
	}
	got := consumeKgo(t, b.Addr(), "kcat-in", len(want))
	checkOffsets(t, got)
	checkRecords(t, want, got)
	checkRecords(t, want, consumeKcat(t, ctx, bin, b.Addr(), "kcat-in", want))

	// kcat -J prints keys and values as JSON strings: text only.
	fromFranz := produceKgo(t, b.Addr(), "kcat-out", textRecords(30, 2, "franz"))
	checkRecords(t, fromFranz, consumeKcat(t, ctx, bin, b.Addr(), "kcat-out", fromFranz))
}

// kcatMessage is one line of kcat -J.
type kcatMessage struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Headers   []string `json:"headers"`
	Key       *string  `json:"key"`
	Payload   *string  `json:"payload"`
}

// consumeKcat reads each partition from its start with kcat -J until as
// many records as want has there.
func consumeKcat(t *testing.T, ctx context.Context, bin, addr, topic string, want []peerRecord) []peerRecord {
	t.Helper()
	counts := map[int32]int{}
	for _, r := range want {
		counts[r.Partition]++
	}
	var got []peerRecord
	for p := range int32(len(counts)) {
		out := runPeer(t, ctx, "", bin, "-C", "-q", "-b", addr, "-t", topic, "-p", fmt.Sprint(p),
			"-o", "beginning", "-c", fmt.Sprint(counts[p]), "-J")
		got = append(got, parseKcatJSON(t, out)...)
	}
	return got
}

// TestInteropKafkaTools runs Apache Kafka's own command-line tools against
// the broker: TopicCommand creates and describes a topic, ConsoleProducer
// writes keyed records with headers, ConsoleConsumer reads them back. Four
// JVM launches in all.
func TestInteropKafkaTools(t *testing.T) {
	_, tool := kafkaHome(t)
	b := testutil.StartBroker(t, broker.Config{})
	addr := b.Addr()
	ctx := testContext(t)
	const topic = "java-tools"

	javaTool(t, ctx, tool, "", "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", addr,
		"--create", "--topic", topic, "--partitions", "2", "--replication-factor", "1", "--config", "retention.ms=3600000")
	desc := javaTool(t, ctx, tool, "", "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", addr,
		"--describe", "--topic", topic)
	topics, err := newAdmin(t, addr).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	tid := topics[topic].ID
	id := base64.RawURLEncoding.EncodeToString(tid[:])
	for _, re := range []string{
		`(?m)^Topic: java-tools\tTopicId: ` + regexp.QuoteMeta(id) + `\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: .*retention\.ms=3600000`,
		`(?m)^\tTopic: java-tools\tPartition: 0\tLeader: 0\tReplicas: 0\tIsr: 0\b`,
		`(?m)^\tTopic: java-tools\tPartition: 1\tLeader: 0\tReplicas: 0\tIsr: 0\b`,
	} {
		if !regexp.MustCompile(re).MatchString(desc) {
			t.Errorf("TopicCommand --describe output does not match %s:\n%s", re, desc)
		}
	}

	// ConsoleProducer reads "headers<TAB>key<TAB>value" lines, and
	// partitions by murmur2 of the key as the Java client does.
	want := textRecords(12, 1, "java")
	var in strings.Builder
	for i := range want {
		want[i].Partition = (murmur2(want[i].Key) & 0x7fffffff) % 2
		fmt.Fprintf(&in, "origin:java\t%s\t%s\n", want[i].Key, want[i].Value)
	}
	args := []string{"--bootstrap-server", addr, "--topic", topic,
		"--reader-property", "parse.key=true", "--reader-property", "parse.headers=true",
		"--command-property", "acks=all", "--command-property", "linger.ms=0"}
	if !brokerServes(t, addr, kmsg.InitProducerID.Int16()) {
		// The Java producer is idempotent by default and needs a
		// producer id for that.
		t.Logf("the broker does not serve InitProducerId: ConsoleProducer runs with enable.idempotence=false")
		args = append(args, "--command-property", "enable.idempotence=false")
	}
	javaTool(t, ctx, tool, in.String(), "org.apache.kafka.tools.ConsoleProducer", args...)
	got := consumeKgo(t, addr, topic, len(want))
	checkOffsets(t, got)
	checkRecords(t, want, got)

	// ConsoleConsumer prints "Partition:P<TAB>Offset:O<TAB>headers<TAB>key<TAB>value".
	// Without a group coordinator it can only read an assigned
	// partition; with one it subscribes to the whole topic.
	args = []string{"--bootstrap-server", addr, "--topic", topic, "--from-beginning",
		"--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true",
		"--formatter-property", "print.headers=true", "--formatter-property", "print.key=true",
		"--timeout-ms", "30000"}
	expect := want
	if brokerServes(t, addr, kmsg.FindCoordinator.Int16()) {
		args = append(args, "--max-messages", fmt.Sprint(len(want)))
	} else {
		t.Logf("the broker does not serve FindCoordinator: ConsoleConsumer reads partition 0 only")
		expect = slices.DeleteFunc(slices.Clone(want), func(r peerRecord) bool { return r.Partition != 0 })
		args = append(args, "--partition", "0", "--max-messages", fmt.Sprint(len(expect)))
	}
	for i := range expect {
		expect[i].Offset = -1
	}
	out := javaTool(t, ctx, tool, "", "org.apache.kafka.tools.consumer.ConsoleConsumer", args...)
	line := regexp.MustCompile(`^Partition:(\d+)\tOffset:(\d+)\t(\S+?):(\S+)\t(\S+)\t(.*)$`)
	var printed []peerRecord
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("ConsoleConsumer printed %q", l)
		}
		var r peerRecord
		fmt.Sscan(m[1], &r.Partition)
		fmt.Sscan(m[2], &r.Offset)
		r.Headers = []peerHeader{{m[3], []byte(m[4])}}
		r.Key, r.Value = []byte(m[5]), []byte(m[6])
		printed = append(printed, r)
	}
	checkRecords(t, expect, printed)
}

// brokerServes reports whether the broker advertises the API key.
func brokerServes(t *testing.T, addr string, key int16) bool {
	t.Helper()
	cl := newClient(t, addr)
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatalf("api versions: %v", err)
	}
	return slices.ContainsFunc(resp.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == key })
}
