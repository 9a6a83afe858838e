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
