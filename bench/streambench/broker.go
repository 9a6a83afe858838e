package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/nexmark"
)

// bench holds what the workloads share: one broker in this process and
// the results.
type bench struct {
	ctx          context.Context
	tmp          string
	prog         *progress
	records      int64
	keys         int64
	childProfile string
	verbose      bool
	commitTiming bool
	cpuprofile   string
	memprofile   string
	// commitInterval, when positive, is the throughput apps' commit
	// interval under both guarantees.
	commitInterval time.Duration
	// workers is the throughput apps' NumWorkers (-workers).
	workers int
	// guarantees are those the throughput workloads run under
	// (-guarantees).
	guarantees []runnel.Guarantee
	// stallDump, when positive, is how long a throughput run may process
	// nothing before its goroutines are dumped and it fails (-stall-dump).
	stallDump time.Duration

	broker *broker.Broker
	cl     *kgo.Client // an admin client
	adm    *kadm.Client

	throughputs []throughputResult
	restarts    []restartResult
	restore     *restoreResult
	bulk        *restoreResult // restore-bulk
	// restoreMB and restoreValue size the restore-bulk changelog.
	restoreMB    int64
	restoreValue int
	build        *buildResult

	// The nexmark workload: events generated, event-time rate, queries.
	nexmarkEvents  int64
	nexmarkRate    int64
	nexmarkQueries []string
	nexmarks       []nexmarkResult
	kstreamsOn     bool            // -kstreams: run the Kafka Streams queries too (kstreams.go)
	kstreams       []nexmarkResult // their runs
	nexmarkLoad    [2]float64      // the 1-minute load average when the nexmark workload started and ended
	nexmarkCache   int64           // -nexmark-cache-bytes: the apps' CacheBytes, or -1 for the default
	nexmarkDrift   *time.Duration  // -nexmark-source-drift: the apps' MaxSourceDrift; nil: the runtime's default
	// nexmarkBrokers are the brokers the workload runs on in turn
	// (-nexmark-broker), nexTarget the one in use (nexbroker.go), and
	// kafkaHome Kafka's install (-kafka-home).
	nexmarkBrokers []string
	nexTarget      nexTarget
	// nexmarkFormat is how the events are written (-nexmark-format), and
	// nexSerdes their serdes: nexmark.JSON, or Avro over the in-process
	// broker's registry (format.go).
	nexmarkFormat string
	nexSerdes     nexmark.Serdes
	kafkaHome     string
	// The latency phase (latency.go): the rate (0: half of each run's
	// peak), the warm-up and the measured span (0: no latency phase).
	latencyRate     float64
	latencyWarmup   time.Duration
	latencyDuration time.Duration
	latencies       []latencyResult
}

// startBroker starts Runnel's broker in this process, configured as
// runnel.App configures its embedded broker (stream/runtime_embedded.go:
// small group and transaction topics, no initial rebalance delay), plus a
// metrics endpoint, from which the restore workload reads the bytes the
// broker served from the changelog.
//
// The benchmark starts the broker itself instead of letting the App do it
// because the input must be on the broker before the App starts, and
// because the restore workload needs a second, fresh instance on the same
// broker. The broker runs in the same process as the App, as it does
// embedded, so the two share the machine's 2 cores the same way.
func (b *bench) startBroker() error {
	b.prog.printf("starting the broker")
	br, err := broker.Start(b.ctx, broker.Config{
		DataDir:                         filepath.Join(b.tmp, "broker"),
		Listen:                          "127.0.0.1:0",
		MetricsListen:                   "127.0.0.1:0",
		GroupInitialRebalanceDelay:      -1,
		OffsetsTopicPartitions:          1,
		TransactionStateTopicPartitions: 1,
		RegistryListen:                  b.registryListen(),
	})
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	if err := br.WaitGroupsLoaded(b.ctx); err != nil {
		br.Close()
		return fmt.Errorf("start broker: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()))
	if err != nil {
		br.Close()
		return err
	}
	b.broker, b.cl, b.adm = br, cl, kadm.NewClient(cl)
	if err := b.setNexmarkSerdes(); err != nil {
		b.broker.Close()
		cl.Close()
		return err
	}
	return nil
}

// createTopics creates topics with the benchmark's partition count.
//
// The topics keep their records for ever (retention.ms=-1): the generated
// records carry timestamps of 2026-01-01 (bidEpoch), older than the default
// 7 days of retention, and the broker's first retention check (5 minutes
// after its start) deleted the input's closed segments under a run still
// reading them, which stopped it short of the end (issue 21's "hang").
func (b *bench) createTopics(names ...string) error {
	forever := "-1"
	resp, err := b.adm.CreateTopics(b.ctx, partitions, 1, map[string]*string{"retention.ms": &forever}, names...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// committedAll waits until group has committed, on every partition of
// topic, the partition's end offset: it has consumed all of it. It polls
// because under exactly-once the broker applies the offsets of a committed
// transaction when it writes the transaction's markers, which may be just
// after EndTxn returned.
func (b *bench) committedAll(group, topic string) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	ends, err := b.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	for {
		committed, err := b.adm.FetchOffsets(ctx, group)
		if err != nil {
			return fmt.Errorf("committed offsets of %s: %w", group, err)
		}
		var short []string
		ends.Each(func(e kadm.ListedOffset) {
			c, ok := committed.Lookup(e.Topic, e.Partition)
			if !ok || c.At != e.Offset {
				short = append(short, fmt.Sprintf("%s[%d] committed %d of %d", e.Topic, e.Partition, c.At, e.Offset))
			}
		})
		if len(short) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s did not commit all its input in 10s: %s", group, strings.Join(short, ", "))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// bytesOut returns the record batch bytes the broker has served to
// fetches of topic (runnel_broker_topic_bytes_out_total).
func (b *bench) bytesOut(topic string) (float64, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.broker.MetricsAddr()+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("broker metrics: %w", err)
	}
	defer resp.Body.Close()
	prefix := `runnel_broker_topic_bytes_out_total{topic="` + topic + `"} `
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("broker metrics: %w", err)
	}
	return 0, nil // nothing fetched from topic yet
}

// logger is the in-process apps' logger: stderr with -v.
// With -commit-timing it also writes each worker's commit time by step
// (the runtime's Debug record "stream: commit time", when the worker
// closes).
func (b *bench) logger() *slog.Logger {
	if b.commitTiming {
		text := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
		return slog.New(funcHandler(func(r slog.Record) {
			if r.Message == "stream: commit time" || (b.verbose && r.Level >= slog.LevelInfo) {
				text.Handle(context.Background(), r)
			}
		}))
	}
	if !b.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// progress prints what the benchmark does to stderr, one line per step.
type progress struct{ start time.Time }

func (p *progress) printf(format string, args ...any) {
	el := time.Since(p.start).Round(100 * time.Millisecond)
	fmt.Fprintf(os.Stderr, "[%7s] "+format+"\n", append([]any{el}, args...)...)
}
