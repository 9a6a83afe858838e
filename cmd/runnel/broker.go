package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/runnel-dev/runnel/broker"
)

const brokerSynopsis = "broker [flags]"

// runBroker runs a broker until the context ends (SIGINT or SIGTERM), then
// closes it cleanly. Once clients can connect it prints
// "runnel broker listening on HOST:PORT" on standard output, and
// "runnel broker metrics on http://HOST:PORT/metrics" when metrics are on;
// its log goes to standard error.
func runBroker(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "broker", brokerSynopsis, false)
	cfg := broker.Config{}
	fs.StringVar(&cfg.DataDir, "data-dir", "./runnel-data", "`DIR` for partition logs and metadata (log.dirs)")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:9092", "Kafka protocol listener `HOST:PORT`; port 0 picks a free port (listeners)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "serve Prometheus metrics at /metrics on `HOST:PORT` (default off)")
	fs.StringVar(&cfg.AdvertisedHost, "advertised-host", "", "`HOST` clients are told to connect to (advertised.listeners; default: the listen host)")
	nodeID := fs.Int("node-id", 1, "this broker's id `N` (node.id)")
	fs.BoolVar(&cfg.AutoCreateTopics, "auto-create-topics", false, "create topics on first use (auto.create.topics.enable)")
	numPartitions := fs.Int("num-partitions", 1, "`N` partitions for topics created without a count (num.partitions)")
	logLevel := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	// Limits on what one client may make the broker hold; 0 keeps the
	// broker.Config default, which the help text gives.
	socketMax := fs.Int("socket-request-max-bytes", 0, "largest request frame, `BYTES` (socket.request.max.bytes; default 104857600)")
	fs.Int64Var(&cfg.QueuedMaxRequestBytes, "queued-max-request-bytes", 0, "`BYTES` all requests read but not yet answered may hold (queued.max.request.bytes; default 268435456)")
	fs.IntVar(&cfg.QueuedMaxRequests, "queued-max-requests", 0, "`N` requests one connection may have in flight (queued.max.requests; default 64)")
	fs.DurationVar(&cfg.ConnectionsMaxIdle, "connections-max-idle", 0, "close a connection idle `DURATION` (connections.max.idle.ms; default 10m)")
	fs.DurationVar(&cfg.RequestReadTimeout, "request-read-timeout", 0, "drop a client that takes longer to send one request frame (default 30s)")
	fs.DurationVar(&cfg.FetchMaxWait, "fetch-max-wait", 0, "cap on a Fetch's MaxWait (default 30s)")
	maxPartitions := fs.Int("max-broker-partitions", 0, "`N` partitions the broker may hold (max.broker.partitions; default 10000)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef(fs, "--log-level %q: want debug, info, warn or error", *logLevel)
	}
	if *nodeID < 0 || *nodeID > 1<<31-1 {
		return usagef(fs, "--node-id %d is out of range", *nodeID)
	}
	if *numPartitions < 1 || *numPartitions > 1<<31-1 {
		return usagef(fs, "--num-partitions %d must be at least 1", *numPartitions)
	}
	if *socketMax < 0 || *socketMax > 1<<31-1 {
		return usagef(fs, "--socket-request-max-bytes %d is out of range", *socketMax)
	}
	if *maxPartitions < 0 || *maxPartitions > 1<<31-1 {
		return usagef(fs, "--max-broker-partitions %d is out of range", *maxPartitions)
	}
	cfg.SocketRequestMaxBytes = int32(*socketMax)
	cfg.MaxBrokerPartitions = int32(*maxPartitions)
	cfg.NodeID = int32(*nodeID)
	cfg.NumPartitions = int32(*numPartitions)
	cfg.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	if e.stopSignals != nil {
		// From the first signal on, start-up or not, a second one kills
		// the process should the clean way hang.
		defer context.AfterFunc(ctx, e.stopSignals)()
	}
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "runnel broker listening on %s\n", b.Addr())
	if m := b.MetricsAddr(); m != "" {
		fmt.Fprintf(e.stdout, "runnel broker metrics on http://%s/metrics\n", m)
	}

	<-ctx.Done()
	start := time.Now()
	cfg.Logger.Info("shutting down")
	if err := b.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	cfg.Logger.Info("shut down cleanly", "took", time.Since(start).Round(time.Millisecond))
	return nil
}
