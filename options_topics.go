package runnel

import (
	"fmt"
	"math"
	"time"
)

// Options of the topics the application creates and of their upkeep. The
// fields are in AppOptions; EnsureDefaults, Validate and String call the
// helpers below.

// defaultRepartitionPurgeInterval is Kafka Streams' default
// repartition.purge.interval.ms.
const defaultRepartitionPurgeInterval = 30 * time.Second

// ReplicationFactor is the replication factor of the topics the
// application creates: changelog and repartition topics, and the source
// topics CreateSourceTopics makes (Kafka Streams' replication.factor).
// Default -1: the broker's default (default.replication.factor); 0 means
// the default too. A factor above the number of brokers makes Start fail
// with the broker's INVALID_REPLICATION_FACTOR.
func ReplicationFactor(n int) AppOption { return func(o *AppOptions) { o.ReplicationFactor = n } }

// RepartitionPurgeInterval is how often, at most, the application deletes
// the records of its repartition topics that it has consumed and committed
// (Kafka Streams' repartition.purge.interval.ms): after a commit, once the
// interval has passed since the last purge, it sends DeleteRecords below
// the committed offset of each repartition partition it owns. Default 30 s;
// 0 means the default; an interval at most the commit interval purges
// after every commit.
func RepartitionPurgeInterval(d time.Duration) AppOption {
	return func(o *AppOptions) { o.RepartitionPurgeInterval = d }
}

func (o *AppOptions) ensureTopicDefaults() {
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = -1
	}
	if o.RepartitionPurgeInterval == 0 {
		o.RepartitionPurgeInterval = defaultRepartitionPurgeInterval
	}
}

func (o *AppOptions) topicProblems() []string {
	var problems []string
	if o.ReplicationFactor < -1 || o.ReplicationFactor > math.MaxInt16 {
		problems = append(problems, fmt.Sprintf("replication factor %d is not -1 (the broker's default) or 1 to %d", o.ReplicationFactor, math.MaxInt16))
	}
	if o.RepartitionPurgeInterval < 0 {
		problems = append(problems, fmt.Sprintf("repartition purge interval %v is negative", o.RepartitionPurgeInterval))
	}
	return problems
}

func (o *AppOptions) topicString() string {
	return fmt.Sprintf(" replication.factor=%d repartition.purge.interval.ms=%d", o.ReplicationFactor, o.RepartitionPurgeInterval.Milliseconds())
}
