package broker

import (
	"errors"
	"fmt"
	"github.com/twmb/franz-go/pkg/kgo"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Config holds the broker's engine knobs. The zero value is not usable; call
// EnsureDefaults, then Validate. Field comments give the default and the
// Apache Kafka broker property each corresponds to.
type Config struct {
	// NodeID is this broker's id (node.id). Default 0, like any other
	// non-negative id.
	NodeID int32
	// DataDir holds partition logs and the metadata Raft state (log.dirs).
	// Required.
	DataDir string
	// Listen is the Kafka protocol listener address (listeners). Port 0
	// picks a free port; Broker.Addr reports the one chosen.
	// Default "127.0.0.1:9092". Unused when Security.Listeners is set.
	Listen string
	// AdvertisedHost is the host clients are told to connect to
	// (advertised.listeners). Default: the listener's host, or 127.0.0.1
	// when the listener binds all interfaces.
	AdvertisedHost string
	// MetricsListen, when set, serves Prometheus metrics at /metrics on
	// this address. Default: none.
	MetricsListen string
	// RegistryListen, when set, serves the schema registry (the Confluent
	// Schema Registry REST API, schemas in the topic _schemas) on this
	// address. Default: none.
	RegistryListen string
	// HTTPListen, when set, serves the web console (package console) on
	// this address: the cluster, its topics and messages, and its
	// consumer groups. Default: none.
	HTTPListen string
	// ConsoleAllowWrites lets the console change the cluster: produce a
	// test record, reset an empty group's offsets, alter topic configs.
	// Default false: the console is read-only.
	ConsoleAllowWrites bool
	// ConsoleBootstrap and ConsoleClientOpts are how the console connects
	// to the cluster: by default to this broker's inter-broker listener
	// (the first, unless Security.InterBroker names another) with no
	// credentials (User:ANONYMOUS). When that listener is secured, or
	// the authorizer should see the console as a principal of its own,
	// name a listener address and give the client's security options
	// (kgo.DialTLSConfig, kgo.SASL).
	ConsoleBootstrap  []string
	ConsoleClientOpts []kgo.Opt
	// Rack is this broker's rack (broker.rack), reported to clients.
	// Default: none.
	Rack string
	// Security is the listeners with their security protocols, TLS and
	// SASL (security_config.go). Default: one PLAINTEXT listener on Listen.
	Security SecurityConfig

	// Cluster. Without ControllerQuorum the broker is a cluster of one,
	// as it always was, and the fields below it are unused.

	// ControllerQuorum lists the controller quorum's voters,
	// "1@host:port,2@host:port,3@host:port" (controller.quorum.voters).
	// A broker whose NodeID is among them is a voter as well as a broker
	// (KRaft's combined mode), with its entry's address as its controller
	// listener unless ControllerListen says otherwise; any other broker is
	// broker-only: it follows the metadata log as a Raft non-voter and
	// needs a ControllerListen of its own.
	ControllerQuorum string
	// ControllerListen is the address the controller listener binds
	// (the CONTROLLER listener), which carries the metadata Raft and
	// forwarded metadata requests. Default: this node's quorum address.
	ControllerListen string
	// DefaultReplicationFactor is the replication factor of topics
	// created with the default (-1) and of auto-created ones
	// (default.replication.factor). Default 1.
	DefaultReplicationFactor int16
	// OffsetsTopicReplicationFactor is __consumer_offsets' replication
	// factor (offsets.topic.replication.factor), capped at the brokers in
	// the quorum. Default 3.
	OffsetsTopicReplicationFactor int16
	// TransactionStateLogReplicationFactor is __transaction_state's
	// (transaction.state.log.replication.factor), capped the same way.
	// Default 3.
	TransactionStateLogReplicationFactor int16
	// ReplicaLagTimeMax drops from the ISR a follower that has not caught
	// up with the leader for this long (replica.lag.time.max.ms).
	// Default 30s.
	ReplicaLagTimeMax time.Duration
	// BrokerSessionTimeout fences a broker whose heartbeats stop for this
	// long, and moves its leaderships (broker.session.timeout.ms).
	// Default 9s.
	BrokerSessionTimeout time.Duration
	// BrokerHeartbeatInterval is how often the broker heartbeats to the
	// controller (broker.heartbeat.interval.ms). Default 2s.
	BrokerHeartbeatInterval time.Duration
	// ControlledShutdownTimeout bounds the controlled shutdown Close
	// begins with in a cluster: the controller moves this broker's
	// leaderships to other ISR members and takes it out of the ISRs, and
	// Close waits for that before it stops (controlled.shutdown.enable;
	// Kafka bounds it by controlled.shutdown.max.retries). Default 30s.
	ControlledShutdownTimeout time.Duration
	// DisableControlledShutdown stops without moving leaderships first
	// (controlled.shutdown.enable=false): they move when the controller
	// fences the silent broker.
	DisableControlledShutdown bool
	// DisableAutoLeaderRebalance turns off the controller's automatic
	// preferred-leader election (auto.leader.rebalance.enable=false).
	DisableAutoLeaderRebalance bool
	// DisableCacheDropBehind keeps every log page in the page cache until
	// the kernel evicts it, as Kafka does
	// (log.cache.drop.behind.enable=false). By default a partition's
	// durable records that every connection fetching it has fetched are
	// dropped from the cache, so appends reuse their pages
	// (read_marks.go).
	DisableCacheDropBehind bool
	// DisableDirectWrites writes every append through the page cache,
	// as Kafka does (log.direct.writes.enable=false). By default appends
	// are written with O_DIRECT, bypassing the page cache, which saves
	// most of an append's CPU where new page-cache pages are dear; the
	// direct writes' cache (TailCacheBytes) keeps what the partitions
	// this broker leads wrote for their readers, and a follower's copy,
	// which nobody fetches unless consumers read from followers, is
	// written directly and not cached. A fetch of what the cache no
	// longer holds, and the page cache does not either, reads the
	// files with O_DIRECT into buffers the broker reuses, rather than
	// through the page cache (direct reads). Without the cache
	// (TailCacheBytes < 0), a partition fetched within the last 30 s
	// writes through the page cache so its readers find the tail there,
	// and one nobody fetches writes directly. See
	// broker/internal/log/direct.go and tailcache.go.
	DisableDirectWrites bool
	// TailCacheBytes is, with direct writes, the memory that keeps what
	// the partitions this broker leads last wrote directly
	// (log.direct.writes.cache.bytes): a consumer that comes to read it
	// soon after reads it from there rather than from the disk. The
	// oldest bytes make room for new ones, whichever partition holds
	// them. Default (0): an eighth of the memory the broker may use
	// (the machine's, or its container's memory limit where lower);
	// negative: none. The memory is taken as appends need it (and ahead
	// of them with TailCachePrefault), outside the Go heap (so outside
	// MemoryLimit), and kept for reuse. See
	// broker/internal/log/tailcache.go.
	TailCacheBytes int64
	// TailCachePrefault has the direct writes' cache take and fault in
	// its whole budget (TailCacheBytes) ahead of need whenever the
	// broker is idle (no page taken by an append, and under a fifth of
	// a CPU used, over 50 ms: at start, before clients come, and in the
	// pauses of their load), rather than only as appends need it
	// (log.direct.writes.cache.prefault). Memory new to a
	// process costs the kernel's zeroing, and on a virtual machine whose
	// host backs memory lazily far more (1-3 s of CPU per GB on the
	// machines the benchmarks run on): growing with its appends, a
	// broker pays that for its first budget's worth of bytes in, on the
	// CPUs its clients wait on. For a broker that has the machine to
	// itself (`runnel broker` sets it by default); off by default here,
	// for brokers embedded in other programs and in tests, which seldom
	// fill the budget. No effect without the cache. See
	// broker/internal/log/tailcache_prefault.go.
	TailCachePrefault bool
	// LeaderImbalanceCheckInterval is how often the controller looks
	// for brokers not leading the partitions they prefer
	// (leader.imbalance.check.interval.seconds). Default 5 minutes.
	LeaderImbalanceCheckInterval time.Duration
	// LeaderImbalancePerBrokerPercentage is the share of a broker's
	// preferred partitions led by others above which the controller
	// elects the preferred leaders (leader.imbalance.per.broker.percentage).
	// Default 10.
	LeaderImbalancePerBrokerPercentage int

	// AutoCreateTopics creates a topic on first Metadata or Produce
	// reference (auto.create.topics.enable). Default false: a Runnel
	// program should say which topics it wants.
	AutoCreateTopics bool
	// NumPartitions is the partition count of auto-created topics and of
	// CreateTopics requests that ask for the default (num.partitions).
	// Default 1.
	NumPartitions int32

	// Log defaults, overridable per topic by the Kafka topic config of the
	// same name.

	// SegmentBytes: log.segment.bytes, default 1 GiB.
	SegmentBytes int64
	// SegmentMs: log.roll.ms, default 7 days.
	SegmentMs time.Duration
	// RetentionMs: log.retention.ms, default 7 days; negative means
	// unlimited.
	RetentionMs time.Duration
	// RetentionBytes: log.retention.bytes, default -1 (unlimited).
	RetentionBytes int64
	// MaxMessageBytes: message.max.bytes, default 1048588.
	MaxMessageBytes int32
	// FlushMessages: log.flush.interval.messages. Default 1: every
	// acknowledged batch is fsynced first (group commit). Larger values
	// acknowledge before the fsync.
	FlushMessages int64
	// FlushMs: log.flush.interval.ms. Default 0 (only FlushMessages
	// decides).
	FlushMs time.Duration
	// RetentionCheckInterval: log.retention.check.interval.ms, default 5
	// minutes.
	RetentionCheckInterval time.Duration
	// ProducerIDExpiration: producer.id.expiration.ms, default 1 day. A
	// partition forgets a producer id (its epoch and sequence numbers)
	// this long after its last write, unless it has an open transaction;
	// checked every RetentionCheckInterval.
	ProducerIDExpiration time.Duration
	// LogCleanerIOBytesPerSecond: log.cleaner.io.max.bytes.per.second,
	// the bytes the log cleaner reads and writes per second. Default
	// log.DefaultCleanerIOBytesPerSecond; negative means unlimited.
	LogCleanerIOBytesPerSecond float64
	// LogCleanerBackoff: log.cleaner.backoff.ms, how long the cleaner
	// sleeps when no log needs cleaning. Default 15s.
	LogCleanerBackoff time.Duration

	// Limits on what one client may make the broker hold (see
	// limits.go); each mirrors the Kafka broker property named.

	// SocketRequestMaxBytes bounds one request frame
	// (socket.request.max.bytes). A larger size prefix closes the
	// connection. Default 100 MiB.
	SocketRequestMaxBytes int32
	// QueuedMaxRequestBytes bounds the memory held by requests read but
	// not yet answered, across all connections (queued.max.request.bytes;
	// Kafka's default is unbounded). A request is charged its frame
	// size, or for APIs other than Produce its frame size times the
	// decoded amplification bound (decodeAmplification), from the moment
	// its size prefix is read until its response is written; readers wait
	// while the budget is spent, and a frame that could never fit closes
	// its connection. Default 256 MiB; it must be at least
	// SocketRequestMaxBytes.
	QueuedMaxRequestBytes int64
	// QueuedMaxResponseBytes bounds the record bytes of Fetch responses
	// read from the log but not yet written, across all connections
	// (queued.max.response.bytes, Runnel's own, named after
	// queued.max.request.bytes: Kafka sends records with sendfile and
	// holds none). A fetch takes what is free, up to its fetch.max.bytes,
	// and answers with that much; with less than message.max.bytes free it
	// waits for room as it waits for data, then answers empty at its
	// MaxWait. A response is charged from the moment it is read until it
	// is written. Default 256 MiB; it must be at least message.max.bytes.
	QueuedMaxResponseBytes int64
	// SocketSendBufferBytes is the send buffer (SO_SNDBUF) of each
	// accepted TCP connection (socket.send.buffer.bytes); -1 leaves it to
	// the kernel's autotuning. Default 256 KiB. Serving a consumer over
	// loopback with the kernel's buffer (up to 4 MiB in flight) cost 1.5x
	// the CPU per GB of this one and read slower (bench/README.md,
	// "Consume at 1 KiB and CPU per GB out"); Kafka's default is 100 KiB.
	// It bounds one connection's bytes in flight (Linux allows twice the
	// value): over a long round trip, raise it or use -1.
	SocketSendBufferBytes int32
	// MemoryLimit, when positive, is set as the Go runtime's soft memory
	// limit (debug.SetMemoryLimit, GOMEMLIMIT) from Start to Close. The
	// budgets above bound what clients make the broker hold, but the
	// garbage collector lets the heap grow to about twice what is live
	// (GOGC=100) before it collects, so the resident set under attack
	// reaches about twice the budgets; under a limit the collector runs
	// sooner instead. The limit is process-wide, which is why the default
	// is 0 (leave the runtime alone): a broker embedded in a program
	// shares the heap with it (an App's state stores and caches), which a
	// limit derived from the broker's budgets does not describe, and the
	// collector would run hot to keep the program under it. The runnel
	// command line, where the broker is the process, sets
	// DerivedMemoryLimit (1 GiB with the defaults) unless --memory-limit or
	// GOMEMLIMIT says otherwise. Kafka's nearest is the JVM's -Xmx.
	MemoryLimit int64
	// QueuedMaxRequests bounds the requests one connection may have read
	// but not yet answered (queued.max.requests, which Kafka applies to
	// its shared request queue; Runnel applies it per connection). The
	// reader stops reading from a connection that has this many in
	// flight. Default 64.
	QueuedMaxRequests int
	// ConnectionsMaxIdle closes a connection that sends nothing, and
	// accepts no response bytes, for this long (connections.max.idle.ms).
	// Default 10 minutes.
	ConnectionsMaxIdle time.Duration
	// RequestReadTimeout bounds the time from a frame's size prefix to
	// its last byte: a client that stalls inside a frame is
	// disconnected and its buffer freed. Kafka has no separate setting
	// (it relies on connections.max.idle.ms). Default 30 seconds.
	RequestReadTimeout time.Duration
	// FetchMaxWait caps the MaxWait of a Fetch (a consumer's
	// fetch.max.wait.ms): a longer wait is cut to it. Default 30 seconds.
	FetchMaxWait time.Duration
	// MaxBrokerPartitions bounds the partition replicas assigned to this
	// broker (max.broker.partitions, KIP-578). The broker registers it
	// with the metadata, whose state machine refuses with
	// POLICY_VIOLATION a CreateTopics, CreatePartitions or auto-creation
	// that would put more replicas on a broker than its own limit,
	// counting concurrent requests in commit order; a topic that could
	// not fit under all live brokers' limits together gets
	// INVALID_PARTITIONS before it is placed. Nothing of a refused topic
	// is created. Internal topics count but are never refused.
	// Default 10,000.
	MaxBrokerPartitions int32
	// ClientLimits are the client quotas' windows and the connection
	// limits (max.connections, max.connections.per.ip).
	ClientLimits ClientLimitsConfig
	// ReplicationQuota is the window the replication throttles measure
	// rates over (replication.quota.window.*; replication_throttle.go).
	ReplicationQuota ReplicationQuotaConfig

	// Group coordinator.

	// OffsetsTopicPartitions is the partition count __consumer_offsets is
	// created with when missing (offsets.topic.num.partitions). Default
	// 50.
	OffsetsTopicPartitions int32
	// GroupInitialRebalanceDelay holds an empty group's first rebalance
	// open for more members (group.initial.rebalance.delay.ms). Default
	// 3s; negative means none.
	GroupInitialRebalanceDelay time.Duration
	// GroupMinSessionTimeout: group.min.session.timeout.ms, default 6s.
	GroupMinSessionTimeout time.Duration
	// GroupMaxSessionTimeout: group.max.session.timeout.ms, default 30
	// minutes.
	GroupMaxSessionTimeout time.Duration
	// GroupMaxSize: group.max.size, default unlimited (math.MaxInt32).
	GroupMaxSize int
	// OffsetsRetention: offsets.retention.minutes, default 7 days. An
	// empty group's offsets are deleted this long after it emptied.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval:
	// offsets.retention.check.interval.ms, default 10 minutes.
	OffsetsRetentionCheckInterval time.Duration

	// Transaction coordinator.

	// TransactionStateTopicPartitions is the partition count
	// __transaction_state is created with when missing
	// (transaction.state.log.num.partitions). Default 50.
	TransactionStateTopicPartitions int32
	// TransactionMaxTimeout bounds the transaction timeout a producer may
	// ask for (transaction.max.timeout.ms). Default 15 minutes.
	TransactionMaxTimeout time.Duration
	// TransactionalIDExpiration: transactional.id.expiration.ms, default
	// 7 days. An idle transactional id is forgotten after it.
	TransactionalIDExpiration time.Duration
	// TransactionAbortTimedOutCheckInterval is how often transactions
	// open longer than their timeout are looked for and aborted
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms).
	// Default 10s.
	TransactionAbortTimedOutCheckInterval time.Duration

	// Logger receives the broker's structured log. Default: discard.
	Logger *slog.Logger
	// Now is the broker's clock. Default time.Now. Tests inject one.
	Now func() time.Time
	// Dial opens every connection this broker makes to another node:
	// replica fetches and transaction markers to other brokers, the
	// metadata Raft and forwarded calls to controllers. Default: a plain
	// TCP dial with a 5 s timeout. Fault tests route the links through
	// proxies with RouteDial (runnel broker --peer-routes).
	Dial DialFunc
}

// EnsureDefaults fills every zero field with its default.
func (c *Config) EnsureDefaults() {
	c.Security.ensureDefaults()
	c.ClientLimits.ensureDefaults()
	c.ReplicationQuota.ensureDefaults()
	if c.Dial == nil {
		c.Dial = defaultDial
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9092"
	}
	if c.NumPartitions == 0 {
		c.NumPartitions = 1
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 1 << 30
	}
	if c.SegmentMs == 0 {
		c.SegmentMs = 7 * 24 * time.Hour
	}
	if c.RetentionMs == 0 {
		c.RetentionMs = 7 * 24 * time.Hour
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = -1
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 1048588
	}
	if c.FlushMessages == 0 {
		c.FlushMessages = 1
	}
	if !c.DisableDirectWrites && c.TailCacheBytes == 0 {
		c.TailCacheBytes = defaultTailCacheBytes()
	}
	if c.RetentionCheckInterval == 0 {
		c.RetentionCheckInterval = 5 * time.Minute
	}
	if c.ProducerIDExpiration == 0 {
		c.ProducerIDExpiration = 24 * time.Hour
	}
	if c.SocketRequestMaxBytes == 0 {
		c.SocketRequestMaxBytes = 100 << 20
	}
	if c.QueuedMaxRequestBytes == 0 {
		c.QueuedMaxRequestBytes = 256 << 20
	}
	if c.QueuedMaxResponseBytes == 0 {
		c.QueuedMaxResponseBytes = 256 << 20
	}
	if c.SocketSendBufferBytes == 0 {
		c.SocketSendBufferBytes = 256 << 10
	}
	if c.QueuedMaxRequests == 0 {
		c.QueuedMaxRequests = 64
	}
	if c.ConnectionsMaxIdle == 0 {
		c.ConnectionsMaxIdle = 10 * time.Minute
	}
	if c.RequestReadTimeout == 0 {
		c.RequestReadTimeout = 30 * time.Second
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = 30 * time.Second
	}
	if c.MaxBrokerPartitions == 0 {
		c.MaxBrokerPartitions = 10000
	}
	if c.OffsetsTopicPartitions == 0 {
		c.OffsetsTopicPartitions = 50
	}
	if c.GroupInitialRebalanceDelay == 0 {
		c.GroupInitialRebalanceDelay = 3 * time.Second
	}
	if c.GroupMinSessionTimeout == 0 {
		c.GroupMinSessionTimeout = 6 * time.Second
	}
	if c.GroupMaxSessionTimeout == 0 {
		c.GroupMaxSessionTimeout = 30 * time.Minute
	}
	if c.GroupMaxSize == 0 {
		c.GroupMaxSize = math.MaxInt32
	}
	if c.OffsetsRetention == 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.OffsetsRetentionCheckInterval == 0 {
		c.OffsetsRetentionCheckInterval = 10 * time.Minute
	}
	if c.TransactionStateTopicPartitions == 0 {
		c.TransactionStateTopicPartitions = 50
	}
	if c.TransactionMaxTimeout == 0 {
		c.TransactionMaxTimeout = 15 * time.Minute
	}
	if c.TransactionalIDExpiration == 0 {
		c.TransactionalIDExpiration = 7 * 24 * time.Hour
	}
	if c.TransactionAbortTimedOutCheckInterval == 0 {
		c.TransactionAbortTimedOutCheckInterval = 10 * time.Second
	}
	if c.DefaultReplicationFactor == 0 {
		c.DefaultReplicationFactor = 1
	}
	if c.OffsetsTopicReplicationFactor == 0 {
		c.OffsetsTopicReplicationFactor = 3
	}
	if c.TransactionStateLogReplicationFactor == 0 {
		c.TransactionStateLogReplicationFactor = 3
	}
	if c.ReplicaLagTimeMax == 0 {
		c.ReplicaLagTimeMax = 30 * time.Second
	}
	if c.BrokerSessionTimeout == 0 {
		c.BrokerSessionTimeout = 9 * time.Second
	}
	if c.BrokerHeartbeatInterval == 0 {
		c.BrokerHeartbeatInterval = 2 * time.Second
	}
	if c.ControlledShutdownTimeout == 0 {
		c.ControlledShutdownTimeout = 30 * time.Second
	}
	if c.LeaderImbalanceCheckInterval == 0 {
		c.LeaderImbalanceCheckInterval = 5 * time.Minute
	}
	if c.LeaderImbalancePerBrokerPercentage == 0 {
		c.LeaderImbalancePerBrokerPercentage = 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("broker: "+format, args...)) }
	if c.NodeID < 0 {
		bad("node id %d is negative", c.NodeID)
	}
	if c.DataDir == "" {
		bad("data dir is required")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen address %q: %v", c.Listen, err)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics listen address %q: %v", c.MetricsListen, err)
		}
	}
	if c.HTTPListen != "" {
		if _, _, err := net.SplitHostPort(c.HTTPListen); err != nil {
			bad("http listen address %q: %v", c.HTTPListen, err)
		}
	}
	if c.RegistryListen != "" {
		if _, _, err := net.SplitHostPort(c.RegistryListen); err != nil {
			bad("registry listen address %q: %v", c.RegistryListen, err)
		}
	}
	if c.NumPartitions < 1 {
		bad("num.partitions %d must be at least 1", c.NumPartitions)
	}
	if c.ControllerQuorum != "" {
		voters, err := meta.ParseQuorum(c.ControllerQuorum)
		switch {
		case err != nil:
			bad("controller quorum: %v", err)
		case c.ControllerListen == "" && !slices.ContainsFunc(voters, func(v meta.Voter) bool { return v.ID == c.NodeID }):
			bad("node id %d is not in the controller quorum %q: a broker-only node needs a controller listener", c.NodeID, c.ControllerQuorum)
		}
		if c.ControllerListen != "" {
			if _, _, err := net.SplitHostPort(c.ControllerListen); err != nil {
				bad("controller listen address %q: %v", c.ControllerListen, err)
			}
		}
	} else if c.ControllerListen != "" {
		bad("a controller listener needs a controller quorum")
	}
	if c.DefaultReplicationFactor < 1 {
		bad("default.replication.factor %d must be at least 1", c.DefaultReplicationFactor)
	}
	if c.OffsetsTopicReplicationFactor < 1 {
		bad("offsets.topic.replication.factor %d must be at least 1", c.OffsetsTopicReplicationFactor)
	}
	if c.TransactionStateLogReplicationFactor < 1 {
		bad("transaction.state.log.replication.factor %d must be at least 1", c.TransactionStateLogReplicationFactor)
	}
	if c.ControlledShutdownTimeout < time.Millisecond || c.LeaderImbalanceCheckInterval < time.Millisecond {
		bad("controlled shutdown timeout %v and leader.imbalance.check.interval %v must be at least 1ms", c.ControlledShutdownTimeout, c.LeaderImbalanceCheckInterval)
	}
	if c.LeaderImbalancePerBrokerPercentage < 0 || c.LeaderImbalancePerBrokerPercentage > 100 {
		bad("leader.imbalance.per.broker.percentage %d must be between 0 and 100", c.LeaderImbalancePerBrokerPercentage)
	}
	if c.ReplicaLagTimeMax < time.Millisecond {
		bad("replica.lag.time.max.ms %v must be at least 1ms", c.ReplicaLagTimeMax)
	}
	if c.BrokerSessionTimeout < time.Millisecond || c.BrokerHeartbeatInterval < time.Millisecond || c.BrokerHeartbeatInterval >= c.BrokerSessionTimeout {
		bad("broker.heartbeat.interval.ms %v must be positive and below broker.session.timeout.ms %v", c.BrokerHeartbeatInterval, c.BrokerSessionTimeout)
	}
	if c.SegmentBytes < 14 {
		bad("segment.bytes %d is too small", c.SegmentBytes)
	}
	if c.SegmentMs < time.Millisecond {
		bad("segment.ms %v must be at least 1ms", c.SegmentMs)
	}
	if c.MaxMessageBytes < 0 {
		bad("max.message.bytes %d is negative", c.MaxMessageBytes)
	}
	if c.FlushMessages < 1 {
		bad("flush.messages %d must be at least 1", c.FlushMessages)
	}
	if c.FlushMs < 0 {
		bad("flush.ms %v is negative", c.FlushMs)
	}
	if c.ProducerIDExpiration < time.Millisecond {
		bad("producer.id.expiration.ms %v must be at least 1ms", c.ProducerIDExpiration)
	}
	if c.SocketRequestMaxBytes < 1<<10 {
		bad("socket.request.max.bytes %d must be at least 1024", c.SocketRequestMaxBytes)
	}
	if c.QueuedMaxRequestBytes < int64(c.SocketRequestMaxBytes) {
		bad("queued.max.request.bytes %d must be at least socket.request.max.bytes %d", c.QueuedMaxRequestBytes, c.SocketRequestMaxBytes)
	}
	if c.QueuedMaxResponseBytes < int64(c.MaxMessageBytes) {
		bad("queued.max.response.bytes %d must be at least message.max.bytes %d", c.QueuedMaxResponseBytes, c.MaxMessageBytes)
	}
	if c.SocketSendBufferBytes < -1 {
		bad("socket.send.buffer.bytes %d must be positive, or -1 for the kernel's default", c.SocketSendBufferBytes)
	}
	if c.MemoryLimit < 0 {
		bad("memory limit %d is negative (0 means none)", c.MemoryLimit)
	}
	if c.QueuedMaxRequests < 1 {
		bad("queued.max.requests %d must be at least 1", c.QueuedMaxRequests)
	}
	if c.ConnectionsMaxIdle < time.Millisecond {
		bad("connections.max.idle.ms %v must be at least 1ms", c.ConnectionsMaxIdle)
	}
	if c.RequestReadTimeout < time.Millisecond {
		bad("request read timeout %v must be at least 1ms", c.RequestReadTimeout)
	}
	if c.FetchMaxWait < 0 {
		bad("fetch max wait %v is negative", c.FetchMaxWait)
	}
	if c.MaxBrokerPartitions < 1 {
		bad("max.broker.partitions %d must be at least 1", c.MaxBrokerPartitions)
	}
	if c.OffsetsTopicPartitions < 1 {
		bad("offsets.topic.num.partitions %d must be at least 1", c.OffsetsTopicPartitions)
	}
	if c.GroupMinSessionTimeout < 0 || c.GroupMaxSessionTimeout < c.GroupMinSessionTimeout {
		bad("group session timeouts: min %v, max %v", c.GroupMinSessionTimeout, c.GroupMaxSessionTimeout)
	}
	if c.GroupMaxSize < 1 {
		bad("group.max.size %d must be at least 1", c.GroupMaxSize)
	}
	if c.OffsetsRetention < time.Millisecond {
		bad("offsets.retention %v must be at least 1ms", c.OffsetsRetention)
	}
	if c.OffsetsRetentionCheckInterval < time.Millisecond {
		bad("offsets.retention.check.interval %v must be at least 1ms", c.OffsetsRetentionCheckInterval)
	}
	if c.TransactionStateTopicPartitions < 1 {
		bad("transaction.state.log.num.partitions %d must be at least 1", c.TransactionStateTopicPartitions)
	}
	if c.TransactionMaxTimeout < time.Millisecond {
		bad("transaction.max.timeout.ms %v must be at least 1ms", c.TransactionMaxTimeout)
	}
	if c.TransactionalIDExpiration < time.Millisecond {
		bad("transactional.id.expiration.ms %v must be at least 1ms", c.TransactionalIDExpiration)
	}
	if c.TransactionAbortTimedOutCheckInterval < time.Millisecond {
		bad("transaction.abort.timed.out.transaction.cleanup.interval.ms %v must be at least 1ms", c.TransactionAbortTimedOutCheckInterval)
	}
	errs = append(errs, c.Security.validate(c)...)
	errs = append(errs, c.ClientLimits.validate()...)
	errs = append(errs, c.ReplicationQuota.validate()...)
	return errors.Join(errs...)
}

// String prints the values in force, one per line.
func (c *Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "node.id=%d\n", c.NodeID)
	fmt.Fprintf(&b, "log.dirs=%s\n", c.DataDir)
	fmt.Fprintf(&b, "listeners=%s\n", c.listenersString())
	fmt.Fprintf(&b, "advertised.host=%s\n", c.AdvertisedHost)
	b.WriteString(c.Security.string())
	b.WriteString(c.ClientLimits.string())
	b.WriteString(c.ReplicationQuota.string())
	fmt.Fprintf(&b, "metrics.listen=%s\n", c.MetricsListen)
	fmt.Fprintf(&b, "registry.listen=%s\n", c.RegistryListen)
	fmt.Fprintf(&b, "http.listen=%s console.allow.writes=%t\n", c.HTTPListen, c.ConsoleAllowWrites)
	fmt.Fprintf(&b, "broker.rack=%s\n", c.Rack)
	fmt.Fprintf(&b, "controller.quorum.voters=%s\n", c.ControllerQuorum)
	fmt.Fprintf(&b, "controller.listener=%s\n", c.ControllerListen)
	fmt.Fprintf(&b, "default.replication.factor=%d\n", c.DefaultReplicationFactor)
	fmt.Fprintf(&b, "offsets.topic.replication.factor=%d\n", c.OffsetsTopicReplicationFactor)
	fmt.Fprintf(&b, "transaction.state.log.replication.factor=%d\n", c.TransactionStateLogReplicationFactor)
	fmt.Fprintf(&b, "replica.lag.time.max.ms=%d\n", c.ReplicaLagTimeMax.Milliseconds())
	fmt.Fprintf(&b, "broker.session.timeout.ms=%d\n", c.BrokerSessionTimeout.Milliseconds())
	fmt.Fprintf(&b, "broker.heartbeat.interval.ms=%d\n", c.BrokerHeartbeatInterval.Milliseconds())
	fmt.Fprintf(&b, "controlled.shutdown.enable=%t\n", !c.DisableControlledShutdown)
	fmt.Fprintf(&b, "controlled.shutdown.timeout.ms=%d\n", c.ControlledShutdownTimeout.Milliseconds())
	fmt.Fprintf(&b, "auto.leader.rebalance.enable=%t\n", !c.DisableAutoLeaderRebalance)
	fmt.Fprintf(&b, "log.cache.drop.behind.enable=%t\n", !c.DisableCacheDropBehind)
	fmt.Fprintf(&b, "log.direct.writes.enable=%t\n", !c.DisableDirectWrites)
	fmt.Fprintf(&b, "log.direct.writes.cache.bytes=%d\n", c.TailCacheBytes)
	fmt.Fprintf(&b, "log.direct.writes.cache.prefault=%t\n", c.TailCachePrefault)
	fmt.Fprintf(&b, "leader.imbalance.check.interval.seconds=%d\n", int64(c.LeaderImbalanceCheckInterval.Seconds()))
	fmt.Fprintf(&b, "leader.imbalance.per.broker.percentage=%d\n", c.LeaderImbalancePerBrokerPercentage)
	fmt.Fprintf(&b, "auto.create.topics.enable=%t\n", c.AutoCreateTopics)
	fmt.Fprintf(&b, "num.partitions=%d\n", c.NumPartitions)
	fmt.Fprintf(&b, "log.segment.bytes=%d\n", c.SegmentBytes)
	fmt.Fprintf(&b, "log.roll.ms=%d\n", c.SegmentMs.Milliseconds())
	fmt.Fprintf(&b, "log.retention.ms=%d\n", c.RetentionMs.Milliseconds())
	fmt.Fprintf(&b, "log.retention.bytes=%d\n", c.RetentionBytes)
	fmt.Fprintf(&b, "message.max.bytes=%d\n", c.MaxMessageBytes)
	fmt.Fprintf(&b, "log.flush.interval.messages=%d\n", c.FlushMessages)
	fmt.Fprintf(&b, "log.flush.interval.ms=%d\n", c.FlushMs.Milliseconds())
	fmt.Fprintf(&b, "log.retention.check.interval.ms=%d\n", c.RetentionCheckInterval.Milliseconds())
	fmt.Fprintf(&b, "producer.id.expiration.ms=%d\n", c.ProducerIDExpiration.Milliseconds())
	fmt.Fprintf(&b, "socket.request.max.bytes=%d\n", c.SocketRequestMaxBytes)
	fmt.Fprintf(&b, "queued.max.request.bytes=%d\n", c.QueuedMaxRequestBytes)
	fmt.Fprintf(&b, "queued.max.response.bytes=%d\n", c.QueuedMaxResponseBytes)
	fmt.Fprintf(&b, "socket.send.buffer.bytes=%d\n", c.SocketSendBufferBytes)
	fmt.Fprintf(&b, "memory.limit=%d\n", c.MemoryLimit)
	fmt.Fprintf(&b, "queued.max.requests=%d\n", c.QueuedMaxRequests)
	fmt.Fprintf(&b, "connections.max.idle.ms=%d\n", c.ConnectionsMaxIdle.Milliseconds())
	fmt.Fprintf(&b, "request.read.timeout.ms=%d\n", c.RequestReadTimeout.Milliseconds())
	fmt.Fprintf(&b, "fetch.max.wait.ms=%d\n", c.FetchMaxWait.Milliseconds())
	fmt.Fprintf(&b, "max.broker.partitions=%d\n", c.MaxBrokerPartitions)
	fmt.Fprintf(&b, "offsets.topic.num.partitions=%d\n", c.OffsetsTopicPartitions)
	fmt.Fprintf(&b, "group.initial.rebalance.delay.ms=%d\n", max(c.GroupInitialRebalanceDelay, 0).Milliseconds())
	fmt.Fprintf(&b, "group.min.session.timeout.ms=%d\n", c.GroupMinSessionTimeout.Milliseconds())
	fmt.Fprintf(&b, "group.max.session.timeout.ms=%d\n", c.GroupMaxSessionTimeout.Milliseconds())
	fmt.Fprintf(&b, "group.max.size=%d\n", c.GroupMaxSize)
	fmt.Fprintf(&b, "offsets.retention.minutes=%d\n", int64(c.OffsetsRetention.Minutes()))
	fmt.Fprintf(&b, "offsets.retention.check.interval.ms=%d\n", c.OffsetsRetentionCheckInterval.Milliseconds())
	fmt.Fprintf(&b, "transaction.state.log.num.partitions=%d\n", c.TransactionStateTopicPartitions)
	fmt.Fprintf(&b, "transaction.max.timeout.ms=%d\n", c.TransactionMaxTimeout.Milliseconds())
	fmt.Fprintf(&b, "transactional.id.expiration.ms=%d\n", c.TransactionalIDExpiration.Milliseconds())
	fmt.Fprintf(&b, "transaction.abort.timed.out.transaction.cleanup.interval.ms=%d\n", c.TransactionAbortTimedOutCheckInterval.Milliseconds())
	return b.String()
}
