package stream

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// AppOption configures an App.
type AppOption func(*AppOptions)

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
	Logger           *slog.Logger
	// ApplicationServer is this instance's host:port for interactive
	// queries (see ApplicationServer).
	ApplicationServer string
	// StandbyReplicas, SessionTimeout and LeaveGroupOnClose: see their
	// options.
	StandbyReplicas   int
	SessionTimeout    time.Duration
	LeaveGroupOnClose bool
	leaveSet          bool
	commitIntervalSet bool
	cacheBytesSet     bool

	// Error handling, state and metrics: see errors.go, app_state.go and
	// metrics.go. Nil handlers fail (LogAndFail, ProductionFail).
	DeserializationHandler DeserializationHandler
	ProductionHandler      ProductionHandler
	UncaughtErrorPolicy    UncaughtErrorPolicy
	StateListener          func(old, new State)
	MetricsRegisterer      prometheus.Registerer

	// ReplicationFactor and RepartitionPurgeInterval: see options_topics.go.
	ReplicationFactor        int
	RepartitionPurgeInterval time.Duration

	// StallTimeout: see its option (runtime_watchdog.go); 0 turns the
	// check off.
	StallTimeout    time.Duration
	stallTimeoutSet bool
}

// ApplicationID names the application: its consumer group, the prefix of
// its internal topics and transactional id, and its state directory
// (Kafka Streams' application.id). Required.
func ApplicationID(id string) AppOption { return func(o *AppOptions) { o.ApplicationID = id } }

// Brokers are the bootstrap servers of the Kafka-protocol cluster the
// application runs against (Kafka Streams' bootstrap.servers): Runnel's
// broker, Apache Kafka or Redpanda. Default none: the application starts
// Runnel's broker in-process, keeping its data under the state directory.
func Brokers(addrs ...string) AppOption {
	return func(o *AppOptions) { o.Brokers = append(o.Brokers, addrs...) }
}

// ProcessingGuarantee sets the processing guarantee (Kafka Streams'
// processing.guarantee). Default ExactlyOnce.
func ProcessingGuarantee(g Guarantee) AppOption { return func(o *AppOptions) { o.Guarantee = g } }

// CommitInterval is how often the application commits: input offsets,
// outputs and changelog writes (Kafka Streams' commit.interval.ms).
// Default 100 ms under ExactlyOnce, 30 s under AtLeastOnce.
func CommitInterval(d time.Duration) AppOption {
	return func(o *AppOptions) { o.CommitInterval, o.commitIntervalSet = d, true }
}

// StateDir is the directory holding the application's local state, under
// StateDir/<application id> (Kafka Streams' state.dir). Default
// os.TempDir()/runnel-streams.
func StateDir(dir string) AppOption { return func(o *AppOptions) { o.StateDir = dir } }

// NumWorkers is the number of goroutines processing tasks (Kafka Streams'
// num.stream.threads). Each worker is a group member with its own client
// and, under ExactlyOnce, its own transactional producer; the workers of
// an instance share its state directory. Default 1.
func NumWorkers(n int) AppOption { return func(o *AppOptions) { o.NumWorkers = n } }

// CacheBytes bounds each task's record cache; 0 turns caching off, so
// every update is forwarded (Kafka Streams' statestore.cache.max.bytes,
// formerly cache.max.bytes.buffering). Default 10 MiB.
func CacheBytes(n int64) AppOption {
	return func(o *AppOptions) { o.CacheBytes, o.cacheBytesSet = n, true }
}

// CreateSourceTopics makes the application create the source topics it
// finds missing, with n partitions each. Default 0: a missing source topic
// is an error, as in Kafka Streams (MissingSourceTopicException). Handy with
// the embedded broker.
func CreateSourceTopics(n int) AppOption { return func(o *AppOptions) { o.SourcePartitions = n } }

// ApplicationServer is the host:port at which this instance serves
// interactive queries (Kafka Streams' application.server). The runtime does
// not listen on it: it tells the other instances, so that any of them can
// say which instance holds a key. Default none.
func ApplicationServer(hostPort string) AppOption {
	return func(o *AppOptions) { o.ApplicationServer = hostPort }
}

// StandbyReplicas is how many warm copies of each stateful task other
// instances keep, by tailing its changelog, so that a task moving to one of
// them after a failure restores only what the copy had not read yet (Kafka
// Streams' num.standby.replicas). A standby never runs on the instance
// running the task. Default 0.
func StandbyReplicas(n int) AppOption { return func(o *AppOptions) { o.StandbyReplicas = n } }

// SessionTimeout is how long the group waits for an instance that stopped
// heartbeating before moving its tasks (the consumer's session.timeout.ms).
// Members are static (KIP-345: group.instance.id is kept in the state
// directory), so an instance restarted within the timeout takes its tasks
// back without a rebalance. Default 45 s.
func SessionTimeout(d time.Duration) AppOption { return func(o *AppOptions) { o.SessionTimeout = d } }

// LeaveGroupOnClose says whether Close makes the instance leave the group,
// so that its tasks move to the other instances at once (Kafka Streams'
// CloseOptions.leaveGroup). Set it false for a rolling restart: the
// instance, back within the session timeout, gets its tasks again with no
// rebalance. Default true.
func LeaveGroupOnClose(leave bool) AppOption {
	return func(o *AppOptions) { o.LeaveGroupOnClose, o.leaveSet = leave, true }
}

// Logger receives the runtime's structured log. Default: discard.
func Logger(l *slog.Logger) AppOption { return func(o *AppOptions) { o.Logger = l } }

// EnsureDefaults fills the zero fields of o with their defaults.
func (o *AppOptions) EnsureDefaults() {
	if !o.commitIntervalSet || o.CommitInterval <= 0 {
		o.CommitInterval = 100 * time.Millisecond
		if o.Guarantee == AtLeastOnce {
			o.CommitInterval = 30 * time.Second
		}
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(os.TempDir(), "runnel-streams")
	}
	if o.NumWorkers <= 0 {
		o.NumWorkers = 1
	}
	if !o.cacheBytesSet {
		o.CacheBytes = 10 << 20
	}
	o.CacheBytes = max(o.CacheBytes, 0)
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 45 * time.Second
	}
	if !o.leaveSet {
		o.LeaveGroupOnClose = true
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !o.stallTimeoutSet {
		o.StallTimeout = defaultStallTimeout
	}
	o.StallTimeout = max(o.StallTimeout, 0)
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
	if o.StandbyReplicas < 0 {
		problems = append(problems, "standby replicas is negative")
	}
	if o.SourcePartitions < 0 {
		problems = append(problems, "source topic partitions is negative")
	}
	problems = append(problems, o.topicProblems()...)
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("stream: invalid app options: %s", strings.Join(problems, "; "))
}

// String prints the values in force.
func (o *AppOptions) String() string {
	brokers := "embedded"
	if len(o.Brokers) > 0 {
		brokers = strings.Join(o.Brokers, ",")
	}
	return fmt.Sprintf("application.id=%s bootstrap.servers=%s processing.guarantee=%s commit.interval.ms=%d state.dir=%s num.stream.threads=%d statestore.cache.max.bytes=%d num.standby.replicas=%d session.timeout.ms=%d",
		o.ApplicationID, brokers, o.Guarantee, o.CommitInterval.Milliseconds(), o.StateDir, o.NumWorkers, o.CacheBytes, o.StandbyReplicas, o.SessionTimeout.Milliseconds()) +
		o.topicString() + fmt.Sprintf(" leave.group.on.close=%t application.server=%s uncaught.error.policy=%s stall.timeout.ms=%d",
		o.LeaveGroupOnClose, o.ApplicationServer, o.UncaughtErrorPolicy, o.StallTimeout.Milliseconds())
}
