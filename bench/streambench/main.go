// Command streambench measures Runnel's stream runtime (runnel.App) on
// Runnel's broker running in the same process, as an application with no
// bootstrap servers does.
//
// Run it from the bench module:
//
//	cd bench && go run ./streambench
//
// Workloads (-workloads, all by default):
//
//   - wordcount: lines of a few words in, a count per word out (a
//     repartition through the broker, then a counting store with its
//     changelog), under at-least-once and under exactly-once;
//   - q5: Nexmark query 5's shape: bids keyed by auction id, counted per
//     auction in hopping windows of 10 s advancing by 2 s of event time
//     (the records' timestamps), under both guarantees;
//   - q5-suppress-uncached: q5 with Suppress(UntilWindowCloses) after the
//     count and the record cache off (CacheBytes(0)), under both
//     guarantees: the windowed path where no cache absorbs updates;
//   - restart: an exactly-once word count over -keys distinct words runs in
//     a child process (this binary re-executed) until its state holds every
//     key, is killed with SIGKILL, and is started again on the same state
//     directory: the time from the new process's start until it processes
//     a new record, with a timeline of what it spent the time on;
//   - nexmark (not run by default): the Nexmark queries of package
//     internal/nexmark (-nexmark-queries, all by default) over
//     -nexmark-events generated events, each under both guarantees with
//     a commit interval of 100 ms (see nexmarkSettings); with -kstreams
//     each query is also run as a Kafka Streams application (bench/kstreams)
//     on the same broker and input, and the two compared; then each query
//     runs again while its input is produced at a fixed rate, for the
//     latency of its outputs (latency.go); -nexmark-broker runs all of it
//     on Runnel's broker, on Apache Kafka, or on both in turn (nexbroker.go);
//   - restore: a fresh instance (empty state directory, same broker)
//     restores that store's whole changelog: MB/s and records/s;
//   - restore-bulk (not run by default): the same restore of a changelog
//     written directly, -restore-mb MB of keys and -restore-value-byte
//     values with overwrites and tombstones (see bulkRestore).
//
// The input of every workload is produced before its timing starts, by one
// franz-go producer as fast as it goes, to topics of 6 partitions. Progress
// goes to stderr, the report to stdout (and, with -out, a Markdown table to
// a file).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/internal/nexmark"
)

// partitions of every input topic.
const partitions = 6

var (
	allWorkloads     = []string{"wordcount", "q5", "q5-suppress-uncached", "restart", "restore", "restart-embedded", "nexmark", "restore-bulk"}
	defaultWorkloads = []string{"wordcount", "q5", "q5-suppress-uncached", "restart", "restore"}
)

func main() {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	var (
		records    = flag.Int64("records", 500_000, "input records of the wordcount and q5 workloads")
		keys       = flag.Int64("keys", 1_000_000, "keys of state in the restart and restore workloads")
		workloads  = flag.String("workloads", strings.Join(defaultWorkloads, ","), "comma-separated workloads: "+strings.Join(allWorkloads, ", ")+" (restore runs on the state restart builds; restart-embedded adds about 80 s)")
		out        = flag.String("out", "", "also write the results as a Markdown table to this file")
		cpuprofile = flag.String("cpuprofile", "", "write CPU profiles of this process (the broker and the app run in it) during each throughput run, to this file name with the run's name inserted before the extension")
		memprofile = flag.String("memprofile", "", "write a heap profile of this process when each throughput run has processed every record (before it closes), to this file name with the run's name inserted before the extension; nexmark runs also write one before Start (name-start), to diff with pprof -base")
		childProf  = flag.String("restart-cpuprofile", "", "write a CPU profile of the restarted child process, from its start until it processed the new record, to this file")
		interval   = flag.Duration("commit-interval", 0, "commit interval of the throughput apps under both guarantees (default: the runtime's, 30 s at-least-once and 100 ms exactly-once)")
		verbose    = flag.Bool("v", false, "log the runtime of the in-process apps to stderr")
		commitTime = flag.Bool("commit-timing", false, "write each in-process worker's commit time by step, and the share of its loop's time commits took, to stderr when it closes (enables the runtime's Debug log)")
		workers    = flag.Int("workers", 1, "worker goroutines (NumWorkers) of the throughput apps")
		guarantees = flag.String("guarantees", "at_least_once,exactly_once_v2", "comma-separated processing guarantees the throughput workloads run under")
		stallAfter = flag.Duration("stall-dump", 0, "when a throughput run processes nothing for this long, write every goroutine's stack to stderr and fail the run (0: wait)")
		nxEvents   = flag.Int64("nexmark-events", 1_000_000, "events the nexmark workload generates")
		nxRate     = flag.Int64("nexmark-rate", 10_000, "events per second of event time in the nexmark workload")
		nxQueries  = flag.String("nexmark-queries", strings.Join(nexmark.QueryNames, ","), "comma-separated Nexmark queries the nexmark workload runs")
		kstreams   = flag.Bool("kstreams", false, "in the nexmark workload, also run the Kafka Streams version of each query that has one ("+strings.Join(kstreamsQueries, ", ")+"; bench/kstreams, built with Maven) on the same broker and input, and compare")
		restoreMB  = flag.Int64("restore-mb", 256, "MB of keys and values the restore-bulk workload writes to the changelog")
		restoreVal = flag.Int("restore-value", 1000, "bytes of each value in the restore-bulk workload")
		keep       = flag.Bool("keep", false, "keep the temporary directory (broker data, state directories)")
		nxCache    = flag.Int64("nexmark-cache-bytes", -1, "record cache of the nexmark apps in bytes (CacheBytes; -1: the runtime's default, 10 MiB)")
		nxDrift    = flag.String("nexmark-source-drift", "", "MaxSourceDrift of the nexmark apps, a duration (negative: no source alignment, as in Kafka Streams; empty: the runtime's default, 1s)")
		nxBroker   = flag.String("nexmark-broker", "runnel", "brokers the nexmark workload runs on, in turn: runnel (Runnel's, in this process), kafka (Apache Kafka 4.3.1 in its own JVM, from scripts/fetch-kafka.sh), or both")
		kafkaHome  = flag.String("kafka-home", "", "with -nexmark-broker kafka: the Kafka install holding libs/*.jar (default $KAFKA_HOME, else what scripts/fetch-kafka.sh prints)")
		latRate    = flag.Float64("nexmark-latency-rate", 0, "input events/s of the nexmark latency phase (0: half of what each engine reached on that query and guarantee in the throughput phase)")
		latWarmup  = flag.Duration("nexmark-latency-warmup", 3*time.Second, "paced input before the measured span of each latency run")
		latDur     = flag.Duration("nexmark-latency-duration", 7*time.Second, "measured span of each nexmark latency run (0: no latency phase)")
		nxFormat   = flag.String("nexmark-format", "json", "how the nexmark workload writes its events: json, or avro (Confluent's wire format, schemas in the in-process broker's registry; Runnel's broker only, without -kstreams)")
		plot       = flag.String("plot", "", "in the nexmark workload, draw events/s per query (Runnel and, with -kstreams, Kafka Streams, under each guarantee) as a PNG file at this path")
	)
	flag.Parse()
	chosen, err := chooseWorkloads(*workloads)
	if err != nil {
		fatal(err)
	}
	queries, err := chooseQueries(*nxQueries)
	if err != nil {
		fatal(err)
	}
	nxBrokers, err := chooseNexmarkBrokers(*nxBroker)
	if err != nil {
		fatal(err)
	}
	if err := checkNexmarkFormat(*nxFormat, *kstreams, nxBrokers); err != nil {
		fatal(err)
	}
	if *latRate < 0 || *latWarmup < 0 || *latDur < 0 {
		fatal(fmt.Errorf("-nexmark-latency-rate, -nexmark-latency-warmup and -nexmark-latency-duration must not be negative"))
	}
	if *records <= 0 || *keys <= 0 || *nxEvents <= 0 || *nxRate <= 0 || *restoreMB <= 0 || *restoreVal <= 0 {
		fatal(fmt.Errorf("-records, -keys, -nexmark-events, -nexmark-rate, -restore-mb and -restore-value must be positive"))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tmp, err := os.MkdirTemp("", "streambench-")
	if err != nil {
		fatal(err)
	}
	var drift *time.Duration
	if *nxDrift != "" {
		d, err := time.ParseDuration(*nxDrift)
		if err != nil {
			fatal(fmt.Errorf("-nexmark-source-drift: %w", err))
		}
		drift = &d
	}
	prog := &progress{start: time.Now()}
	b := &bench{nexmarkDrift: drift, ctx: ctx, tmp: tmp, prog: prog, records: *records, keys: *keys, childProfile: *childProf, verbose: *verbose, commitTiming: *commitTime, cpuprofile: *cpuprofile, memprofile: *memprofile, commitInterval: *interval, workers: *workers, stallDump: *stallAfter, restoreMB: *restoreMB, restoreValue: *restoreVal,
		nexmarkEvents: *nxEvents, nexmarkRate: *nxRate, nexmarkQueries: queries, kstreamsOn: *kstreams, nexmarkCache: *nxCache,
		nexmarkBrokers: nxBrokers, nexmarkFormat: *nxFormat, nexSerdes: nexmark.JSON, kafkaHome: *kafkaHome, latencyRate: *latRate, latencyWarmup: *latWarmup, latencyDuration: *latDur}
	for _, g := range strings.Split(*guarantees, ",") {
		switch g {
		case runnel.AtLeastOnce.String():
			b.guarantees = append(b.guarantees, runnel.AtLeastOnce)
		case runnel.ExactlyOnce.String():
			b.guarantees = append(b.guarantees, runnel.ExactlyOnce)
		default:
			fmt.Fprintf(os.Stderr, "streambench: unknown guarantee %q (want at_least_once or exactly_once_v2)\n", g)
			os.Exit(2)
		}
	}
	code := 0
	if err := b.run(chosen); err != nil {
		fmt.Fprintln(os.Stderr, "streambench:", err)
		code = 1
	}
	if *keep {
		prog.printf("data kept in %s", tmp)
	} else if err := os.RemoveAll(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "streambench: remove temp dir:", err)
	}
	b.report(os.Stdout)
	if *plot != "" && len(b.nexmarks) > 0 {
		if err := b.writePlot(*plot, b.plotTitle()); err != nil {
			fmt.Fprintln(os.Stderr, "streambench:", err)
			code = 1
		}
	}
	if *out != "" {
		if err := b.writeMarkdown(*out); err != nil {
			fmt.Fprintln(os.Stderr, "streambench:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func chooseWorkloads(list string) ([]string, error) {
	var chosen []string
	for w := range strings.SplitSeq(list, ",") {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		if !slices.Contains(allWorkloads, w) {
			return nil, fmt.Errorf("-workloads: unknown workload %q (want %s)", w, strings.Join(allWorkloads, ", "))
		}
		if !slices.Contains(chosen, w) {
			chosen = append(chosen, w)
		}
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("-workloads: none named")
	}
	return chosen, nil
}

// run starts the broker and measures the chosen workloads in a fixed order.
func (b *bench) run(chosen []string) (err error) {
	if err := b.startBroker(); err != nil {
		return err
	}
	defer func() {
		b.cl.Close()
		if cerr := b.broker.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close broker: %w", cerr)
		}
	}()
	has := func(w string) bool { return slices.Contains(chosen, w) }
	if has("wordcount") {
		if err := b.throughput(wordCountWorkload(b.records)); err != nil {
			return err
		}
	}
	if has("q5") {
		if err := b.throughput(q5Workload(b.records)); err != nil {
			return err
		}
	}
	if has("q5-suppress-uncached") {
		if err := b.throughput(q5SuppressUncachedWorkload(b.records)); err != nil {
			return err
		}
	}
	if has("restart") || has("restore") {
		if err := b.stateWorkloads(has("restart"), has("restore")); err != nil {
			return err
		}
	}
	if has("nexmark") {
		if err := b.nexmarkBench(); err != nil {
			return err
		}
	}
	if has("restore-bulk") {
		if err := b.bulkRestore(); err != nil {
			return err
		}
	}
	if has("restart-embedded") {
		if err := b.restartEmbedded(); err != nil {
			return err
		}
	}
	return nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "streambench:", err)
	os.Exit(1)
}
