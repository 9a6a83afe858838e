package runnel

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/runnel-dev/runnel/topology"
)

// Guarantee is an application's processing guarantee (Kafka Streams'
// processing.guarantee).
type Guarantee int

const (
	// ExactlyOnce commits outputs, changelog writes and input offsets in one
	// transaction per commit interval (exactly_once_v2). The default.
	ExactlyOnce Guarantee = iota
	// AtLeastOnce flushes outputs and then commits input offsets; after a
	// failure some records are processed twice (at_least_once).
	AtLeastOnce
)

func (g Guarantee) String() string {
	if g == AtLeastOnce {
		return "at_least_once"
	}
	return "exactly_once_v2"
}

// AppOption configures an App; the functions of this file make them.
// Options are opaque so that every one of them records that it was set,
// and EnsureDefaults fills only what no option set (an explicit 0 or false
// is kept).
type AppOption interface{ apply(*AppOptions) }

type appOpt func(*AppOptions)

// optionSet has a bit for each option whose zero value is not its default.
type optionSet uint16

const (
	setCommitInterval optionSet = 1 << iota
	setCacheBytes
	setLeaveGroup
	setNumWorkers
	setSessionTimeout
	setLogger
	setStateDir
	setStallTimeout
	setStatusInterval
	setMaxSourceDrift
)

func (f appOpt) apply(o *AppOptions) { f(o) }

// AppOptions are the settings an App runs with; NewApp fills them from its
// Options and EnsureDefaults.
type AppOptions struct {
	ApplicationID    string
	Brokers          []string
	Guarantee        Guarantee
	CommitInterval   time.Duration
	StateDir         string
	NumWorkers       int
	CacheBytes       int64
	SourcePartitions int
	SinkPartitions   int
	Logger           *slog.Logger
	// ApplicationServer is this instance's host:port for interactive
	// queries (see ApplicationServer).
	ApplicationServer string
	// StandbyReplicas, SessionTimeout and LeaveGroupOnClose: see their
	// options.
	StandbyReplicas   int
	SessionTimeout    time.Duration
	LeaveGroupOnClose bool
	// set records the options given, so that EnsureDefaults fills only
	// the others and an explicit zero is kept (or refused by Validate).
	set optionSet

	// Error handling, state and metrics: see errors.go, app_state.go and
	// metrics.go. Nil handlers fail (LogAndFail, ProductionFail).
	DeserializationHandler DeserializationHandler
	ProductionHandler      ProductionHandler
	UncaughtErrorPolicy    UncaughtErrorPolicy
	StateListener          func(old, new State)
	MetricsRegisterer      prometheus.Registerer
	MetricsAddr            string

	// ReplicationFactor and RepartitionPurgeInterval: see options_topics.go.
	ReplicationFactor        int
	RepartitionPurgeInterval time.Duration

	// StallTimeout: see its option (runtime_watchdog.go); 0 turns the
	// check off.
	StallTimeout time.Duration
	// StatusInterval: see its option (app_status.go); 0 turns the
	// status records off.
	StatusInterval time.Duration
	// MaxTaskIdle: see its option (runtime_queue.go).
	MaxTaskIdle time.Duration
	// MaxSourceDrift: see its option (runtime_align.go); negative turns
	// source alignment off.
	MaxSourceDrift time.Duration

	// TLS and SASL: see options_security.go; nil for plaintext and no
	// authentication.
	TLS  *tls.Config
	SASL sasl.Mechanism

	// RegistryURL and NoEmbeddedRegistry: see options_registry.go.
	RegistryURL        string
	NoEmbeddedRegistry bool
}

// ApplicationID names the application: its consumer group, the prefix of
// its internal topics and transactional id, and its state directory
// (Kafka Streams' application.id). Required.
func ApplicationID(id string) AppOption { return appOpt(func(o *AppOptions) { o.ApplicationID = id }) }

// Brokers are the bootstrap servers of the Kafka-protocol cluster the
// application runs against (Kafka Streams' bootstrap.servers): Runnel's
// broker, Apache Kafka or Redpanda. Default none: the application starts
// Runnel's broker in-process, keeping its data under the state directory.
func Brokers(addrs ...string) AppOption {
	return appOpt(func(o *AppOptions) { o.Brokers = append(o.Brokers, addrs...) })
}

// ProcessingGuarantee sets the processing guarantee (Kafka Streams'
// processing.guarantee). Default ExactlyOnce.
func ProcessingGuarantee(g Guarantee) AppOption {
	return appOpt(func(o *AppOptions) { o.Guarantee = g })
}

// CommitInterval is how often the application commits: input offsets,
// outputs and changelog writes (Kafka Streams' commit.interval.ms).
// Default 100 ms under ExactlyOnce, 30 s under AtLeastOnce.
func CommitInterval(d time.Duration) AppOption {
	return appOpt(func(o *AppOptions) { o.CommitInterval = d; o.set |= setCommitInterval })
}

// StateDir is the directory holding the application's local state, under
// StateDir/<application id> (Kafka Streams' state.dir). Default
// os.TempDir()/runnel-streams.
func StateDir(dir string) AppOption {
	return appOpt(func(o *AppOptions) { o.StateDir = dir; o.set |= setStateDir })
}

// NumWorkers is the number of goroutines processing tasks (Kafka Streams'
// num.stream.threads). Each worker is a group member with its own client
// and, under ExactlyOnce, its own transactional producer; the workers of
// an instance share its state directory. Default 1.
func NumWorkers(n int) AppOption {
	return appOpt(func(o *AppOptions) { o.NumWorkers = n; o.set |= setNumWorkers })
}

// CacheBytes bounds each task's record cache; 0 turns caching off, so
// every update is forwarded (Kafka Streams' statestore.cache.max.bytes,
// formerly cache.max.bytes.buffering). Default 10 MiB.
func CacheBytes(n int64) AppOption {
	return appOpt(func(o *AppOptions) { o.CacheBytes = n; o.set |= setCacheBytes })
}

// CreateSourceTopics makes the application create the source topics it
// finds missing, with n partitions each. Default 0: a missing source topic
// is an error, as in Kafka Streams (MissingSourceTopicException). Handy with
// the embedded broker.
func CreateSourceTopics(n int) AppOption {
	return appOpt(func(o *AppOptions) { o.SourcePartitions = n })
}

// CreateSinkTopics makes the application create the topics its sinks
// write to that it finds missing, with n partitions each. Default 0: a
// missing sink topic makes Start fail (Kafka Streams would retry its
// produce until it timed out). Handy with the embedded broker.
func CreateSinkTopics(n int) AppOption { return appOpt(func(o *AppOptions) { o.SinkPartitions = n }) }

// ApplicationServer is the host:port at which this instance serves
// interactive queries (Kafka Streams' application.server). The runtime does
// not listen on it: it tells the other instances, so that any of them can
// say which instance holds a key. Default none.
func ApplicationServer(hostPort string) AppOption {
	return appOpt(func(o *AppOptions) { o.ApplicationServer = hostPort })
}

// StandbyReplicas is how many warm copies of each stateful task other
// instances keep, by tailing its changelog, so that a task moving to one of
// them after a failure restores only what the copy had not read yet (Kafka
// Streams' num.standby.replicas). A standby never runs on the instance
// running the task. Default 0.
func StandbyReplicas(n int) AppOption { return appOpt(func(o *AppOptions) { o.StandbyReplicas = n }) }

// SessionTimeout is how long the group waits for an instance that stopped
// heartbeating before moving its tasks (the consumer's session.timeout.ms).
// Members are static (KIP-345: group.instance.id is kept in the state
// directory), so an instance restarted within the timeout takes its tasks
// back without a rebalance. Default 45 s.
func SessionTimeout(d time.Duration) AppOption {
	return appOpt(func(o *AppOptions) { o.SessionTimeout = d; o.set |= setSessionTimeout })
}

// LeaveGroupOnClose says whether Close makes the instance leave the group,
// so that its tasks move to the other instances at once (Kafka Streams'
// CloseOptions.leaveGroup). Set it false for a rolling restart: the
// instance, back within the session timeout, gets its tasks again with no
// rebalance. Default true.
func LeaveGroupOnClose(leave bool) AppOption {
	return appOpt(func(o *AppOptions) { o.LeaveGroupOnClose = leave; o.set |= setLeaveGroup })
}

// Logger receives the runtime's structured log: state changes, rebalances,
// restorations (start, progress, end), and every error, at INFO and above,
// the Kafka clients' warnings and errors (messages starting "kafka
// client:"), and the Pebble state store's own messages at DEBUG. Default: a text
// handler on standard error at INFO. Logger(nil) discards everything.
func Logger(l *slog.Logger) AppOption {
	return appOpt(func(o *AppOptions) { o.Logger = l; o.set |= setLogger })
}

// StateListener is called on every change of the application's state
// (Kafka Streams' KafkaStreams.setStateListener), in order, on the
// goroutine making the change. It must return quickly and must not call
// the App's Start, Run or Close.
func StateListener(fn func(old, new State)) AppOption {
	return appOpt(func(o *AppOptions) { o.StateListener = fn })
}

// DeserializationErrorHandler sets what happens to input records that
// cannot be deserialized (Kafka Streams' deserialization.exception.handler):
// LogAndFail (the default), LogAndContinue, DeadLetterQueue(topic), or a
// handler of your own.
func DeserializationErrorHandler(h DeserializationHandler) AppOption {
	return appOpt(func(o *AppOptions) { o.DeserializationHandler = h })
}

// ProductionErrorHandler sets what happens when the broker rejects an
// output record (Kafka Streams' production.exception.handler):
// ProductionFail (the default), ProductionLogAndContinue, or a handler of
// your own.
func ProductionErrorHandler(h ProductionHandler) AppOption {
	return appOpt(func(o *AppOptions) { o.ProductionHandler = h })
}

// UncaughtError sets the policy for errors no handler took care of (Kafka
// Streams' StreamsUncaughtExceptionHandler). Default ShutdownApplication.
func UncaughtError(p UncaughtErrorPolicy) AppOption {
	return appOpt(func(o *AppOptions) { o.UncaughtErrorPolicy = p })
}

// MetricsRegisterer registers the application's Prometheus metrics with reg
// (Kafka Streams reports the same through its metrics.reporters). Every
// metric is named runnel_stream_… and carries the label application_id;
// per-task metrics carry task too ("<sub-topology>_<partition>"). Default:
// none registered; App.Metrics works either way. The metrics are
// unregistered by Close.
func MetricsRegisterer(reg prometheus.Registerer) AppOption {
	return appOpt(func(o *AppOptions) { o.MetricsRegisterer = reg })
}

// MetricsAddr serves the application's Prometheus metrics, with the Go
// runtime and process collectors, at http://ADDR/metrics from Start to
// Close (":9464" listens on every interface, "127.0.0.1:0" on a free port;
// App.MetricsAddr tells which). It needs no registry of the caller's; with
// MetricsRegisterer as well, the metrics are registered in both. Default
// none.
func MetricsAddr(addr string) AppOption {
	return appOpt(func(o *AppOptions) { o.MetricsAddr = addr })
}

// ReplicationFactor is the replication factor of the topics the
// application creates: changelog and repartition topics, and the source
// topics CreateSourceTopics makes (Kafka Streams' replication.factor).
// Default -1: the broker's default (default.replication.factor); 0 means
// the default too. A factor above the number of brokers makes Start fail
// with the broker's INVALID_REPLICATION_FACTOR.
func ReplicationFactor(n int) AppOption {
	return appOpt(func(o *AppOptions) { o.ReplicationFactor = n })
}

// RepartitionPurgeInterval is how often, at most, the application deletes
// the records of its repartition topics that it has consumed and committed
// (Kafka Streams' repartition.purge.interval.ms): after a commit, once the
// interval has passed since the last purge, it sends DeleteRecords below
// the committed offset of each repartition partition it owns. Default 30 s;
// 0 means the default; an interval at most the commit interval purges
// after every commit.
func RepartitionPurgeInterval(d time.Duration) AppOption {
	return appOpt(func(o *AppOptions) { o.RepartitionPurgeInterval = d })
}

// StallTimeout is how long a task may have input to read (lag above zero:
// records between its position and the end of one of its input
// partitions, the last stable offset under exactly-once) without its
// position moving before it is reported stalled: a log line at WARN
// ("stream: task stalled") and the gauge runnel_stream_task_stalled set to
// 1 for the task, back to 0 (and a log line at INFO) when its position
// moves again. Tasks restoring their stores are not watched: restoration
// reports its own progress. The end offsets are asked of the brokers a few
// times per timeout, at most every 10 s. Keep the timeout well above the
// time the worker takes to process one fetch (up to 1 MB per partition):
// with a backlog, a partition's records wait while the fetched records of
// the others are processed. Default 60 s; 0 turns the check off. (Kafka
// Streams has no equivalent.)
func StallTimeout(d time.Duration) AppOption {
	return appOpt(func(o *AppOptions) { o.StallTimeout = d; o.set |= setStallTimeout })
}

// MaxTaskIdle is how long a task reading several partitions (a join, a
// merge) waits, when one of them has nothing fetched and is known to be
// at its end, for records to arrive there before it processes the others'
// (Kafka Streams' max.task.idle.ms). A task always waits for a partition
// that has records to fetch, or not yet known to have none, since they may
// come earlier in time than those it holds: records are processed in
// timestamp order across its partitions, whatever the fetches bring
// first. That wait is bounded too (5 s, or MaxTaskIdle if longer), so a
// partition that cannot be fetched slows its task, never stops it. Default
// 0: no wait for a partition at its end. (Kafka Streams' -1, never waiting,
// has no equivalent.)
func MaxTaskIdle(d time.Duration) AppOption {
	return appOpt(func(o *AppOptions) { o.MaxTaskIdle = d })
}

// defaultMaxSourceDrift is MaxSourceDrift's default.
const defaultMaxSourceDrift = time.Second

// MaxSourceDrift is how far ahead in event time a task reading the
// application's input may run of the other input tasks of its pipeline
// (those whose records meet in a later stage, through repartition
// topics) on the same worker. A later stage's windows and windowed joins
// drop records that arrive later than their grace behind the latest they
// have seen; when the application works through a backlog (a replay from
// an offset, a restart after downtime), an input topic with few records
// per second of event time would otherwise run minutes of event time
// ahead of a busy one, and the later stage would drop the busy topic's
// records as late. Live, the input tasks read near the ends of their
// partitions and rarely wait. Default 1 s; a negative d turns the
// alignment off, as Kafka Streams has none. (Flink calls it watermark
// alignment.)
func MaxSourceDrift(d time.Duration) AppOption {
	return appOpt(func(o *AppOptions) { o.MaxSourceDrift = d; o.set |= setMaxSourceDrift })
}

// EnsureDefaults fills the settings no option set with their defaults. An
// option given explicitly keeps its value, zero included: CommitInterval(0)
// commits after every poll, CacheBytes(0) turns caching off,
// LeaveGroupOnClose(false) stays false and Logger(nil) discards; values
// that cannot work (NumWorkers(0), a negative interval) are left for
// Validate to report.
func (o *AppOptions) EnsureDefaults() {
	if o.set&setCommitInterval == 0 {
		o.CommitInterval = 100 * time.Millisecond
		if o.Guarantee == AtLeastOnce {
			o.CommitInterval = 30 * time.Second
		}
	}
	if o.set&setStateDir == 0 {
		o.StateDir = filepath.Join(os.TempDir(), "runnel-streams")
	}
	if o.set&setNumWorkers == 0 {
		o.NumWorkers = 1
	}
	if o.set&setCacheBytes == 0 {
		o.CacheBytes = topology.DefaultCacheBytes
	}
	if o.set&setSessionTimeout == 0 {
		o.SessionTimeout = 45 * time.Second
	}
	if o.set&setStallTimeout == 0 {
		o.StallTimeout = defaultStallTimeout
	}
	if o.set&setStatusInterval == 0 {
		o.StatusInterval = defaultStatusInterval
	}
	if o.set&setMaxSourceDrift == 0 {
		o.MaxSourceDrift = defaultMaxSourceDrift
	}
	if o.set&setLeaveGroup == 0 {
		o.LeaveGroupOnClose = true
	}
	if o.set&setLogger == 0 {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.ensureTopicDefaults()
}

// Validate reports every problem with o at once.
func (o *AppOptions) Validate() error {
	var problems []string
	if o.ApplicationID == "" {
		problems = append(problems, "application id is empty")
	}
	if strings.ContainsAny(o.ApplicationID, "/\\ ") {
		problems = append(problems, fmt.Sprintf("application id %q contains a slash or space", o.ApplicationID))
	}
	if o.Guarantee != ExactlyOnce && o.Guarantee != AtLeastOnce {
		problems = append(problems, fmt.Sprintf("unknown processing guarantee %d", o.Guarantee))
	}
	if o.CommitInterval < 0 {
		problems = append(problems, fmt.Sprintf("commit interval %v is negative", o.CommitInterval))
	}
	if o.StateDir == "" {
		problems = append(problems, "state dir is empty")
	}
	if o.NumWorkers < 1 {
		problems = append(problems, fmt.Sprintf("num workers %d is below 1", o.NumWorkers))
	}
	if o.CacheBytes < 0 {
		problems = append(problems, fmt.Sprintf("cache bytes %d is negative", o.CacheBytes))
	}
	if o.SessionTimeout <= 0 {
		problems = append(problems, fmt.Sprintf("session timeout %v is not positive", o.SessionTimeout))
	}
	if o.StallTimeout < 0 {
		problems = append(problems, fmt.Sprintf("stall timeout %v is negative", o.StallTimeout))
	}
	if o.StatusInterval < 0 {
		problems = append(problems, fmt.Sprintf("status interval %v is negative", o.StatusInterval))
	}
	if o.MaxTaskIdle < 0 {
		problems = append(problems, fmt.Sprintf("max task idle %v is negative", o.MaxTaskIdle))
	}
	if o.StandbyReplicas < 0 {
		problems = append(problems, "standby replicas is negative")
	}
	if o.SourcePartitions < 0 {
		problems = append(problems, "source topic partitions is negative")
	}
	if o.SinkPartitions < 0 {
		problems = append(problems, "sink topic partitions is negative")
	}
	problems = append(problems, o.topicProblems()...)
	problems = append(problems, o.securityProblems()...)
	problems = append(problems, o.registryProblems()...)
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("stream: invalid app options: %s", strings.Join(problems, "; "))
}

// String prints the values in force.
func (o *AppOptions) String() string {
	driftMs := o.MaxSourceDrift.Milliseconds()
	if o.MaxSourceDrift < 0 {
		driftMs = -1 // off, however negative
	}
	brokers := "embedded"
	if len(o.Brokers) > 0 {
		brokers = strings.Join(o.Brokers, ",")
	}
	return fmt.Sprintf("application.id=%s bootstrap.servers=%s processing.guarantee=%s commit.interval.ms=%d state.dir=%s num.stream.threads=%d statestore.cache.max.bytes=%d num.standby.replicas=%d session.timeout.ms=%d",
		o.ApplicationID, brokers, o.Guarantee, o.CommitInterval.Milliseconds(), o.StateDir, o.NumWorkers, o.CacheBytes, o.StandbyReplicas, o.SessionTimeout.Milliseconds()) +
		o.topicString() + fmt.Sprintf(" leave.group.on.close=%t application.server=%s uncaught.error.policy=%s stall.timeout.ms=%d status.interval.ms=%d max.task.idle.ms=%d max.source.drift.ms=%d",
		o.LeaveGroupOnClose, o.ApplicationServer, o.UncaughtErrorPolicy, o.StallTimeout.Milliseconds(), o.StatusInterval.Milliseconds(), o.MaxTaskIdle.Milliseconds(), driftMs)
}
