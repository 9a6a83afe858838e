// Command runnelbroker runs Runnel's broker in its own process for
// brokerbench, so that the benchmark can read the broker's CPU time from
// /proc. It is the same broker.Start the runnel command line uses, with the
// default configuration: every acknowledged batch is fsynced (group commit).
//
// Like the runnel command line, it sets the Go runtime's memory limit
// derived from the broker's budgets (broker.Config.DerivedMemoryLimit,
// 1 GiB) unless GOMEMLIMIT is set or -memory-limit says otherwise (0: none).
//
// With -controller-quorum it is one broker of a replicated cluster, a
// voter of the controller quorum when -node-id is among the voters (as
// `runnel broker --controller-quorum` is).
//
// With -security-protocol SSL or SASL_SSL its one listener is of that
// protocol (Kafka's listeners=SSL://... or SASL_SSL://...), with the
// certificate and key of -ssl-cert-file and -ssl-key-file, and for
// SASL_SSL the users of -sasl-users-file (NAME=PASSWORD lines; PLAIN and
// SCRAM-SHA-256/512).
//
// It prints "runnel broker listening on HOST:PORT" once it accepts
// connections and runs until SIGINT or SIGTERM.
//
// Environment:
//
//	RUNNEL_CPUPROFILE=FILE   write a CPU profile of the whole run to FILE
//	RUNNEL_MEMPROFILE=FILE   write a heap (alloc) profile to FILE on exit
//	RUNNEL_LOG_LEVEL=LEVEL   log at debug, info, warn or error to standard
//	                         error (brokerbench keeps it in the broker's log
//	                         file); default: no log
//	RUNNEL_FLUSH_MESSAGES=N  log.flush.interval.messages (default 1: fsync
//	                         before every acknowledgement); a large N
//	                         acknowledges from the page cache as Kafka does,
//	                         to measure what the fsyncs cost
//	RUNNEL_METRICS_LISTEN=HOST:PORT  serve Prometheus metrics at /metrics
//	                         (request durations, acks=all waits, fsyncs)
//	RUNNEL_PPROF_LISTEN=HOST:PORT  serve net/http/pprof at /debug/pprof/,
//	                         for an execution trace of a chosen moment
//	                         (/debug/pprof/trace?seconds=N)
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with RUNNEL_PPROF_LISTEN
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/runnel-dev/runnel/broker"
)

func main() {
	dataDir := flag.String("data-dir", "", "broker data directory (required)")
	listen := flag.String("listen", "127.0.0.1:0", "Kafka protocol listener address")
	memoryLimit := flag.Int64("memory-limit", -1, "the Go runtime's memory limit in bytes; 0: none; default: derived from the budgets unless GOMEMLIMIT is set")
	nodeID := flag.Int("node-id", 1, "this broker's id (node.id)")
	quorum := flag.String("controller-quorum", "", "the controller quorum's voters, ID@HOST:PORT,... (controller.quorum.voters); without it the broker is a cluster of one")
	defaultRF := flag.Int("default-replication-factor", 1, "replication factor of topics created without one (default.replication.factor)")
	protocol := flag.String("security-protocol", "PLAINTEXT", "the listener's security protocol: PLAINTEXT, SSL or SASL_SSL")
	certFile := flag.String("ssl-cert-file", "", "the broker's certificate chain, PEM (SSL and SASL_SSL)")
	keyFile := flag.String("ssl-key-file", "", "the certificate's private key, PEM (SSL and SASL_SSL)")
	usersFile := flag.String("sasl-users-file", "", "SASL users, NAME=PASSWORD lines (SASL_SSL)")
	dropBehind := flag.Bool("cache-drop-behind", true, "drop from the page cache the log pages every reader has fetched (log.cache.drop.behind.enable)")
	tailCache := flag.Int64("direct-writes-cache", 0, "bytes of memory keeping the partitions' last direct appends (log.direct.writes.cache.bytes; default an eighth of the machine's memory, negative for none)")
	prefault := flag.Bool("direct-writes-cache-prefault", true, "take and fault in the whole direct-writes cache ahead of need while idle, as `runnel broker` does by default (log.direct.writes.cache.prefault)")
	direct := flag.Bool("direct-writes", true, "write appends with O_DIRECT; =false through the page cache (log.direct.writes.enable)")
	flag.Parse()
	if *nodeID < 0 || *nodeID > 1<<31-1 {
		fmt.Fprintf(os.Stderr, "runnelbroker: -node-id %d is out of range\n", *nodeID)
		os.Exit(2)
	}
	if *defaultRF < 1 || *defaultRF > 1<<15-1 {
		fmt.Fprintf(os.Stderr, "runnelbroker: -default-replication-factor %d must be between 1 and 32767\n", *defaultRF)
		os.Exit(2)
	}

	cfg := broker.Config{DataDir: *dataDir, Listen: *listen, MemoryLimit: *memoryLimit,
		NodeID: int32(*nodeID), ControllerQuorum: *quorum, DefaultReplicationFactor: int16(*defaultRF)}
	switch p := strings.ToUpper(*protocol); p {
	case "PLAINTEXT":
	case "SSL", "SASL_SSL":
		cfg.Security.Listeners = p + "://" + *listen
		cfg.Security.TLS = broker.TLSConfig{CertFile: *certFile, KeyFile: *keyFile}
		if p == "SASL_SSL" {
			cfg.Security.SASL.UsersFile = *usersFile
		}
	default:
		fmt.Fprintf(os.Stderr, "runnelbroker: -security-protocol %q: want PLAINTEXT, SSL or SASL_SSL\n", *protocol)
		os.Exit(2)
	}
	if *memoryLimit < 0 {
		cfg.MemoryLimit = 0
		if os.Getenv("GOMEMLIMIT") == "" {
			cfg.EnsureDefaults()
			cfg.MemoryLimit = cfg.DerivedMemoryLimit()
		}
	}
	if v := os.Getenv("RUNNEL_FLUSH_MESSAGES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "runnelbroker: RUNNEL_FLUSH_MESSAGES %q: want a count of at least 1\n", v)
			os.Exit(2)
		}
		cfg.FlushMessages = n
	}
	cfg.DisableCacheDropBehind = !*dropBehind
	cfg.DisableDirectWrites = !*direct
	cfg.TailCacheBytes = *tailCache
	cfg.TailCachePrefault = *prefault
	cfg.MetricsListen = os.Getenv("RUNNEL_METRICS_LISTEN")
	if lv := os.Getenv("RUNNEL_LOG_LEVEL"); lv != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(lv)); err != nil {
			fmt.Fprintf(os.Stderr, "runnelbroker: RUNNEL_LOG_LEVEL %q: want debug, info, warn or error\n", lv)
			os.Exit(2)
		}
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "runnelbroker:", err)
		os.Exit(1)
	}
}

func run(cfg broker.Config) error {
	if path := os.Getenv("RUNNEL_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if addr := os.Getenv("RUNNEL_PPROF_LISTEN"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("RUNNEL_PPROF_LISTEN: %w", err)
		}
		srv := &http.Server{Handler: http.DefaultServeMux}
		go srv.Serve(ln)
		defer srv.Close()
	}

	b, err := broker.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("runnel broker listening on %s\n", b.Addr())

	<-ctx.Done()
	err = b.Close()

	if path := os.Getenv("RUNNEL_MEMPROFILE"); path != "" {
		if werr := writeHeapProfile(path); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}
