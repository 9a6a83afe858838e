// Command brokerbench measures Runnel's broker against franz-go's kfake
// (persisted, fsync per batch) and Apache Kafka (KRaft, default flush), each
// in its own process on this machine, with the same franz-go client
// settings.
//
// Run it from the bench module:
//
//	cd bench && go run ./brokerbench
//
// For every broker and record size (100 B and 1 KiB, 6 partitions,
// acks=all) it produces at full speed, consumes everything from the start,
// and then produces at a fixed rate (half of Runnel's peak) to measure
// per-record produce latency. It reports records/s and MB/s, latency p50
// and p99, and the broker process's CPU seconds per GB, then the ratios
// Runnel/kfake and Runnel/Kafka. Progress goes to stderr, results to
// stdout.
//
// With -security plaintext,tls,sasl_ssl it measures Runnel and Apache
// Kafka over each: plaintext, TLS (Kafka's SSL: a certificate the
// benchmark generates, no client certificates) and SASL_SSL (TLS, then
// SCRAM-SHA-512), the same settings on both, and reports each broker's
// throughput over TLS as a fraction of its plaintext throughput:
//
//	cd bench && go run ./brokerbench -brokers runnel,kafka -security plaintext,tls,sasl_ssl
//
// Two more workloads measure a broker serving several applications at
// once (-workloads clients100B,clients1KiB,conns): 4 producers and 2
// consumer groups of 2 on a 24-partition topic, each group reading
// everything (aggregate records/s in and out, produce p99 at half of
// Runnel's rate, CPU per GB in and out; clients.go), and 200 producers,
// each its own connection, at a modest rate on 1,000 partitions (resident
// memory and produce p99; conns.go).
//
// With -replicas 3 it runs the replicated workload instead: three Runnel
// broker processes against a three-node Apache Kafka KRaft cluster (every
// node broker and controller), topics of replication factor 3 with
// min.insync.replicas 2, the same phases, and CPU summed over the
// cluster's broker processes:
//
//	cd bench && go run ./brokerbench -replicas 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/runnel-dev/runnel/bench/kafkabroker"
)

func main() {
	var (
		brokers   = flag.String("brokers", "runnel,kfake,kafka,ceiling", "comma-separated brokers to measure: runnel, kfake, kafka, ceiling (kfake discarding every record: the client's own limit), fetchceiling (records kept in memory, fetches written from it, groups in memory: the consumers' own limit, single or many clients)")
		records   = flag.Int64("records", 0, "records per produce phase (default 10,000,000 for 100 B and 2,000,000 for 1 KiB; -quick: 200,000 and 50,000)")
		duration  = flag.Duration("duration", 0, "produce for this long instead of a record count")
		quick     = flag.Bool("quick", false, "a small run for a CI smoke test")
		linger    = flag.Duration("linger", time.Millisecond, "franz-go ProducerLinger, for every broker")
		paced     = flag.Duration("paced", 10*time.Second, "measured length of the fixed-rate latency phase")
		rate      = flag.Float64("rate", 0, "records/s of the latency phase (default: half of Runnel's peak for that record size)")
		kafkaHome = flag.String("kafka-home", "", "Kafka install holding libs/*.jar (default $KAFKA_HOME, else what scripts/fetch-kafka.sh prints)")
		profile   = flag.String("runnel-cpuprofile", "", "write a CPU profile of the Runnel broker process to this file (with -replicas, broker N's to FILE.N)")
		ceilBin   = flag.String("fetchceiling-bin", "", "run this fetchceiling binary instead of building bench/cmd/fetchceiling (to compare builds of the ceiling)")
		runnelBin = flag.String("runnel-bin", "", "run this runnelbroker binary instead of building bench/cmd/runnelbroker; NAME=FILE,NAME=FILE,... measures each build in turn, as runnel-NAME (an A/B of builds)")
		keep      = flag.Bool("keep", false, "keep the brokers' data directories and logs")
		rounds    = flag.Int("rounds", 1, "measure every broker this many times, in turn, and report the median of each figure")
		idle      = flag.Duration("wait-idle", 0, "before each broker, wait up to this long for the machine to be idle (other processes below 0.15 cores)")
		settle    = flag.Duration("settle", 0, "after the warm-up, leave each broker idle this long before its first measured phase, as a server that runs a while before its load: Runnel takes its direct-writes cache while idle (about 6 s for 3 GB on this machine's cold host), the JVM finishes compiling; 0 measures a broker loaded right after its start")
		drop      = flag.Bool("drop-caches", false, "before each broker, empty the kernel's page cache (Linux, as root), so every broker starts with the same memory: on a VM whose host backs memory lazily, pages an earlier broker freed cost a later one far less than fresh ones")
		only      = flag.String("workloads", "100B,1KiB", "comma-separated workloads to run: 100B, 1KiB (one producer, one consumer); clients100B, clients1KiB (4 producers, 2 groups of 2 consumers, 24 partitions); conns (200 producers, 1,000 partitions)")
		replicas  = flag.Int("replicas", 1, "brokers per peer and topic replication factor; above 1 runs Runnel and Kafka as clusters of this many broker processes (kfake and ceiling are single-broker only)")
		minISR    = flag.Int("min-isr", 2, "min.insync.replicas of the topics when -replicas is above 1")
		secList   = flag.String("security", "plaintext", "comma-separated ways the clients reach runnel and kafka: plaintext, tls, sasl_ssl (SCRAM-SHA-512 over TLS); each is measured as a broker of its own (kafka/tls); kfake and ceiling are plaintext only")
	)
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if *replicas < 1 || *replicas > 16 {
		fatal(fmt.Errorf("-replicas %d: want 1 to 16", *replicas))
	}
	s := settings{duration: *duration, linger: *linger, paced: *paced, warmup: time.Second, replicas: int16(*replicas)}
	workloads := []workload{
		{name: "100B", size: 100, records: 10_000_000},
		{name: "1KiB", size: 1024, records: 2_000_000},
		{name: "clients100B", kind: manyClients, size: 100, records: 4_000_000},
		{name: "clients1KiB", kind: manyClients, size: 1024, records: 1_000_000},
		{name: "conns", kind: manyConns, size: 1024},
	}
	if *replicas > 1 {
		if *minISR < 1 || *minISR > *replicas {
			fatal(fmt.Errorf("-min-isr %d: want 1 to -replicas (%d)", *minISR, *replicas))
		}
		s.minISR = *minISR
		// Seconds per phase, not minutes: the replicated clusters are
		// measured on a shared machine (raise -records on a quiet one).
		workloads[0].records, workloads[1].records = 3_000_000, 600_000
		workloads[2].records, workloads[3].records = 1_000_000, 200_000
		if !set["paced"] {
			s.paced = 5 * time.Second
		}
		if !set["brokers"] {
			*brokers = "runnel,kafka"
		}
	}
	modes, err := parseSecurity(*secList)
	if err != nil {
		fatal(err)
	}
	if *replicas > 1 && (len(modes) > 1 || modes[0] != plaintext) {
		fatal(fmt.Errorf("-security %s: with -replicas %d only plaintext (the brokers' own links are plaintext)", *secList, *replicas))
	}
	if *quick {
		workloads[0].records, workloads[1].records = 200_000, 50_000
		workloads[2].records, workloads[3].records = 100_000, 25_000
		s.paced = 2 * time.Second
		s.warmup = 500 * time.Millisecond
	}
	var names []string
	for _, w := range workloads {
		names = append(names, w.name)
	}
	want := strings.Split(*only, ",")
	for _, n := range want {
		if !slices.Contains(names, n) {
			fatal(fmt.Errorf("-workloads: unknown workload %q (want any of %s)", n, strings.Join(names, ", ")))
		}
	}
	workloads = slices.DeleteFunc(workloads, func(w workload) bool { return !slices.Contains(want, w.name) })
	if *records > 0 {
		for i := range workloads {
			workloads[i].records = *records
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tmp, err := os.MkdirTemp("", "brokerbench-")
	if err != nil {
		fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(tmp)
	}
	prog := &progress{w: os.Stderr, start: time.Now()}
	secs := map[secMode]*security{}
	for _, m := range modes {
		if m == plaintext {
			continue
		}
		if secs[m], err = newSecurity(m, filepath.Join(tmp, "pki-"+string(m))); err != nil {
			fatal(err)
		}
	}

	scripts, err := kafkabroker.ScriptsDir()
	if err != nil {
		fatal(err)
	}
	peers, err := choosePeers(*brokers, filepath.Join(tmp, "bin"), &kafkaPeer{home: *kafkaHome, scripts: scripts, prog: prog, nodes: *replicas}, *profile, *replicas, *runnelBin, modes, secs)
	if err != nil {
		fatal(err)
	}
	for _, p := range peers {
		if fc, ok := p.(*fetchCeilingPeer); ok {
			fc.bin = *ceilBin
		}
	}
	r := &run{s: s, workloads: workloads, rate: *rate, prog: prog, peak: map[string]peakRate{}, waitIdle: *idle, settle: *settle, dropCaches: *drop, quick: *quick}
	for r.rounds < *rounds && ctx.Err() == nil {
		r.rounds++
		for _, p := range roundOrder(peers, r.rounds) {
			if ctx.Err() != nil {
				break
			}
			r.measure(ctx, p, filepath.Join(tmp, p.name()), *keep)
		}
	}
	if *keep {
		prog.printf("data and logs kept in %s", tmp)
	}
	r.report(os.Stdout)
}

// choosePeers parses -brokers. Runnel is always measured first, because the
// latency phase of every broker runs at half of Runnel's peak. Runnel and
// Kafka are measured in each of modes, in turn (secs holds the security
// of every mode but plaintext); kfake and ceiling in plaintext only.
func choosePeers(list, binDir string, kafka *kafkaPeer, profile string, nodes int, runnelBin string, modes []secMode, secs map[secMode]*security) ([]peer, error) {
	var names []string
	for n := range strings.SplitSeq(list, ",") {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if i := slices.Index(names, "runnel"); i > 0 {
		names = slices.Insert(slices.Delete(names, i, i+1), 0, "runnel")
	}
	var peers []peer
	for _, n := range names {
		switch n {
		case "runnel":
			builds, err := runnelBuilds(runnelBin)
			if err != nil {
				return nil, err
			}
			for _, m := range modes {
				for _, build := range builds {
					rp := *build
					rp.binDir, rp.profile, rp.nodes, rp.sec = binDir, profile, nodes, secs[m]
					if profile != "" && rp.label != "" {
						rp.profile = profile + "." + rp.label
					}
					peers = append(peers, &rp)
				}
			}
		case "kfake", "ceiling", "fetchceiling":
			if !slices.Contains(modes, plaintext) {
				continue
			}
			if nodes > 1 {
				return nil, fmt.Errorf("-brokers %s: runs one broker only; with -replicas %d measure runnel and kafka", n, nodes)
			}
			switch n {
			case "kfake":
				peers = append(peers, &kfakePeer{binDir: binDir})
			case "ceiling":
				peers = append(peers, &blackholePeer{binDir: binDir})
			default:
				peers = append(peers, &fetchCeilingPeer{binDir: binDir})
			}
		case "kafka":
			for _, m := range modes {
				k := *kafka
				k.sec = secs[m]
				peers = append(peers, &k)
			}
		default:
			return nil, fmt.Errorf("-brokers: unknown broker %q (want runnel, kfake, kafka, ceiling, fetchceiling)", n)
		}
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("-brokers: no broker named")
	}
	return peers, nil
}

// roundOrder is the order the peers are measured in round (from 1): as
// given, except that several builds of Runnel alone (-runnel-bin
// NAME=FILE,...) take turns going first, so that none always runs right
// after the same other one (the page cache and the disk carry one run's
// traces into the next).
func roundOrder(peers []peer, round int) []peer {
	for _, p := range peers {
		if rp, ok := p.(*runnelPeer); !ok || rp.label == "" {
			return peers
		}
	}
	k := (round - 1) % len(peers)
	return append(slices.Clone(peers[k:]), peers[:k]...)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "brokerbench:", err)
	os.Exit(1)
}
