package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/broker"
)

const brokerSynopsis = "broker [flags]"

// prefaultByDefault is --direct-writes-cache-prefault's default: a broker
// run on its own takes its cache at start. The package's tests, which run
// many brokers in one process, turn it off (TestMain).
var prefaultByDefault = true

// runBroker runs a broker until the context ends (SIGINT or SIGTERM), then
// closes it cleanly. Once clients can connect it prints
// "runnel broker listening on HOST:PORT" on standard output (with
// --listeners, then "runnel broker listener NAME on HOST:PORT" for each), and
// "runnel broker metrics on http://HOST:PORT/metrics" when metrics are on,
// "runnel broker schema registry on http://HOST:PORT" when the registry is,
// "runnel broker console on http://HOST:PORT/" when the console is;
// its log goes to standard error.
func runBroker(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "broker", brokerSynopsis, false)
	cfg := broker.Config{}
	fs.StringVar(&cfg.DataDir, "data-dir", "./runnel-data", "`DIR` for partition logs and metadata (log.dirs)")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:9092", "Kafka protocol listener `HOST:PORT`; port 0 picks a free port (listeners)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "serve Prometheus metrics at /metrics on `HOST:PORT` (default off)")
	fs.StringVar(&cfg.RegistryListen, "registry-listen", "", "serve the schema registry (Confluent Schema Registry API) on `HOST:PORT` (default off)")
	fs.StringVar(&cfg.HTTPListen, "http-listen", "", "serve the web console on `HOST:PORT` (default off)")
	fs.BoolVar(&cfg.ConsoleAllowWrites, "console-allow-writes", false, "let the web console create and delete topics, produce, reset offsets of empty groups and alter topic configs")
	consoleConfig := fs.String("console-command-config", "", "the web console connects with these Kafka client properties, `FILE` (bootstrap.servers: which listener; security.protocol, sasl.*, ssl.*: as which principal); default: the inter-broker listener, anonymously")
	fs.StringVar(&cfg.AdvertisedHost, "advertised-host", "", "`HOST` clients are told to connect to (advertised.listeners; default: the listen host)")
	finishSecurity := brokerSecurityFlags(fs, &cfg.Security)
	finishLimits := brokerLimitFlags(fs, &cfg.ClientLimits)
	fs.IntVar(&cfg.ReplicationQuota.WindowNum, "replication-quota-window-num", 0, "`N` windows replication throttle rates are measured over (replication.quota.window.num; default 11)")
	fs.DurationVar(&cfg.ReplicationQuota.WindowSize, "replication-quota-window-size", 0, "length of one replication throttle window (replication.quota.window.size.seconds; default 1s)")
	nodeID := fs.Int("node-id", 1, "this broker's id `N` (node.id)")
	fs.BoolVar(&cfg.AutoCreateTopics, "auto-create-topics", false, "create topics on first use (auto.create.topics.enable)")
	numPartitions := fs.Int("num-partitions", 1, "`N` partitions for topics created without a count (num.partitions)")
	logLevel := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	// Limits on what one client may make the broker hold; 0 keeps the
	// broker.Config default, which the help text gives.
	socketMax := fs.Int("socket-request-max-bytes", 0, "largest request frame, `BYTES` (socket.request.max.bytes; default 104857600)")
	sendBuffer := fs.Int("socket-send-buffer-bytes", 0, "each connection's socket send buffer, `BYTES`, or -1 for the kernel's (socket.send.buffer.bytes; default 262144)")
	fs.Int64Var(&cfg.QueuedMaxRequestBytes, "queued-max-request-bytes", 0, "`BYTES` all requests read but not yet answered may hold (queued.max.request.bytes; default 268435456)")
	fs.Int64Var(&cfg.QueuedMaxResponseBytes, "queued-max-response-bytes", 0, "`BYTES` all Fetch responses read but not yet written may hold (queued.max.response.bytes; default 268435456)")
	memoryLimit := fs.String("memory-limit", "auto", "the Go runtime's memory limit (GOMEMLIMIT) in `BYTES`, 0 for none, or auto: queued.max.request.bytes + queued.max.response.bytes + 512 MiB (1 GiB with their defaults) unless GOMEMLIMIT is set")
	fs.IntVar(&cfg.QueuedMaxRequests, "queued-max-requests", 0, "`N` requests one connection may have in flight (queued.max.requests; default 64)")
	fs.DurationVar(&cfg.ConnectionsMaxIdle, "connections-max-idle", 0, "close a connection idle `DURATION` (connections.max.idle.ms; default 10m)")
	fs.DurationVar(&cfg.RequestReadTimeout, "request-read-timeout", 0, "drop a client that takes longer to send one request frame (default 30s)")
	fs.DurationVar(&cfg.FetchMaxWait, "fetch-max-wait", 0, "cap on a Fetch's MaxWait (default 30s)")
	maxPartitions := fs.Int("max-broker-partitions", 0, "`N` partitions the broker may hold (max.broker.partitions; default 10000)")
	fs.StringVar(&cfg.ControllerQuorum, "controller-quorum", "", "the controller quorum's voters, ID@HOST:PORT,... (controller.quorum.voters); without it the broker is a cluster of one")
	fs.StringVar(&cfg.ControllerListen, "controller-listen", "", "controller listener for the metadata Raft (default: this node's quorum address; required for a node not in the quorum)")
	fs.StringVar(&cfg.Rack, "rack", "", "this broker's rack (broker.rack)")
	peerRoutes := fs.String("peer-routes", "", "for fault tests: dial `ADDR=VIA,...` in place of each ADDR this broker connects to (other brokers' advertised listeners, controller listeners), e.g. proxies that cut or slow the links")
	defaultRF := fs.Int("default-replication-factor", 1, "replication factor of topics created without one (default.replication.factor)")
	offsetsRF := fs.Int("offsets-topic-replication-factor", 3, "__consumer_offsets replication factor, capped at the quorum size (offsets.topic.replication.factor)")
	txnRF := fs.Int("transaction-state-log-replication-factor", 3, "__transaction_state replication factor, capped at the quorum size (transaction.state.log.replication.factor)")
	fs.DurationVar(&cfg.ReplicaLagTimeMax, "replica-lag-time-max", 30*time.Second, "a follower this far behind leaves the ISR (replica.lag.time.max.ms)")
	fs.DurationVar(&cfg.BrokerSessionTimeout, "broker-session-timeout", 9*time.Second, "a broker silent this long is fenced and its leaderships move (broker.session.timeout.ms)")
	fs.DurationVar(&cfg.BrokerHeartbeatInterval, "broker-heartbeat-interval", 2*time.Second, "how often a broker heartbeats to the controller (broker.heartbeat.interval.ms)")
	controlledShutdown := fs.Bool("controlled-shutdown", true, "on SIGTERM, move this broker's leaderships away before stopping (controlled.shutdown.enable)")
	fs.DurationVar(&cfg.ControlledShutdownTimeout, "controlled-shutdown-timeout", 30*time.Second, "longest wait for the controlled shutdown before stopping anyway")
	autoRebalance := fs.Bool("auto-leader-rebalance", true, "the controller moves leaderships back to preferred replicas (auto.leader.rebalance.enable)")
	dropBehind := fs.Bool("cache-drop-behind", true, "drop from the page cache the log pages every connection fetching a partition has fetched, so appends reuse them (log.cache.drop.behind.enable)")
	fs.Int64Var(&cfg.FlushMessages, "flush-messages", 1, "fsync a partition once `N` records are unflushed (log.flush.interval.messages): 1 fsyncs before every acknowledgement; above 1 a produce is acknowledged once its records are written to the segment file, durable against the broker process dying but not a power cut, as with Kafka's default (9223372036854775807); topics may set their own (flush.messages)")
	directWrites := fs.Bool("direct-writes", true, "write appends with O_DIRECT, bypassing the page cache; =false writes through it, as Kafka does (log.direct.writes.enable)")
	fs.Int64Var(&cfg.TailCacheBytes, "direct-writes-cache", 0, "`BYTES` of memory keeping what the partitions this broker leads wrote directly, for the consumers that read it (log.direct.writes.cache.bytes; default an eighth of the machine's memory, or of the container's memory limit where lower; negative for none, and then a partition being fetched is written through the page cache)")
	fs.BoolVar(&cfg.TailCachePrefault, "direct-writes-cache-prefault", prefaultByDefault, "take and fault in the whole direct-writes cache ahead of need while the broker is idle (at start, and in pauses of the load), so that appends do not pay for new memory; =false takes it only as appends need it (log.direct.writes.cache.prefault)")
	fs.DurationVar(&cfg.LeaderImbalanceCheckInterval, "leader-imbalance-check-interval", 5*time.Minute, "how often the controller checks leadership balance (leader.imbalance.check.interval.seconds)")
	fs.IntVar(&cfg.LeaderImbalancePerBrokerPercentage, "leader-imbalance-per-broker-percentage", 10, "`PERCENT` of a broker's preferred partitions led elsewhere that triggers a rebalance (leader.imbalance.per.broker.percentage)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	if err := finishSecurity(); err != nil {
		return usagef(fs, "%v", err)
	}
	if err := finishLimits(); err != nil {
		return usagef(fs, "%v", err)
	}
	if *consoleConfig != "" {
		props, err := readClientProps(*consoleConfig)
		if err != nil {
			return usagef(fs, "--console-command-config: %v", err)
		}
		if cfg.ConsoleClientOpts, err = props.security.opts(); err != nil {
			return usagef(fs, "--console-command-config: %v", err)
		}
		for s := range strings.SplitSeq(props.bootstrap, ",") {
			if s = strings.TrimSpace(s); s != "" {
				cfg.ConsoleBootstrap = append(cfg.ConsoleBootstrap, s)
			}
		}
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
	if cfg.MemoryLimit, err = memoryLimitFlag(*memoryLimit, cfg, e.getenv("GOMEMLIMIT")); err != nil {
		return usagef(fs, "--memory-limit: %v", err)
	}
	cfg.SocketRequestMaxBytes = int32(*socketMax)
	if *sendBuffer < -1 || *sendBuffer > 1<<31-1 {
		return usagef(fs, "--socket-send-buffer-bytes %d is out of range", *sendBuffer)
	}
	cfg.SocketSendBufferBytes = int32(*sendBuffer)
	cfg.MaxBrokerPartitions = int32(*maxPartitions)
	for _, rf := range []struct {
		name string
		v    int
		dst  *int16
	}{{"default-replication-factor", *defaultRF, &cfg.DefaultReplicationFactor}, {"offsets-topic-replication-factor", *offsetsRF, &cfg.OffsetsTopicReplicationFactor}, {"transaction-state-log-replication-factor", *txnRF, &cfg.TransactionStateLogReplicationFactor}} {
		if rf.v < 1 || rf.v > 1<<15-1 {
			return usagef(fs, "--%s %d must be between 1 and 32767", rf.name, rf.v)
		}
		*rf.dst = int16(rf.v)
	}
	if *peerRoutes != "" {
		routes, err := broker.ParseRoutes(*peerRoutes)
		if err != nil {
			return usagef(fs, "--peer-routes: %v", err)
		}
		cfg.Dial = broker.RouteDial(routes)
	}
	cfg.DisableControlledShutdown = !*controlledShutdown
	cfg.DisableAutoLeaderRebalance = !*autoRebalance
	cfg.DisableCacheDropBehind = !*dropBehind
	cfg.DisableDirectWrites = !*directWrites
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
	printListeners(e.stdout, b, &cfg.Security)
	if m := b.MetricsAddr(); m != "" {
		fmt.Fprintf(e.stdout, "runnel broker metrics on http://%s/metrics\n", m)
	}
	if r := b.RegistryAddr(); r != "" {
		fmt.Fprintf(e.stdout, "runnel broker schema registry on http://%s\n", r)
	}
	if h := b.HTTPAddr(); h != "" {
		fmt.Fprintf(e.stdout, "runnel broker console on http://%s/\n", h)
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

// memoryLimitFlag turns --memory-limit into Config.MemoryLimit: a number
// of bytes, 0 for none, or "auto" for the limit derived from the budgets
// in cfg, unless GOMEMLIMIT (gomemlimit) already set one for the runtime.
func memoryLimitFlag(v string, cfg broker.Config, gomemlimit string) (int64, error) {
	if v != "auto" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q: want a number of bytes, 0 or auto", v)
		}
		return n, nil
	}
	if gomemlimit != "" {
		return 0, nil
	}
	cfg.EnsureDefaults()
	return cfg.DerivedMemoryLimit(), nil
}
