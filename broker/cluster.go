package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// internalTopicRF is the replication factor an internal topic is created
// with: the configured one (offsets.topic.replication.factor,
// transaction.state.log.replication.factor) capped at the brokers of the
// cluster (the quorum's voters; one without a quorum), so a three-node
// cluster gets 3 and a single node 1. Before creating the topic it waits
// (within ctx) until that many brokers are live, so a cluster starting
// up does not create it on the first broker alone.
func (b *Broker) internalTopicRF(ctx context.Context, want int16) (int16, error) {
	if !b.meta.Clustered() {
		return 1, nil
	}
	voters, _ := meta.ParseQuorum(b.cfg.ControllerQuorum)
	rf := min(want, int16(len(voters)))
	if liveBrokers(b.meta.Cluster()) < int(rf) {
		b.logger.Info("waiting for brokers to create an internal topic", "live", liveBrokers(b.meta.Cluster()), "want", rf)
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for liveBrokers(b.meta.Cluster()) < int(rf) {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("broker: waiting for %d live brokers to create an internal topic: %w", rf, ctx.Err())
		case <-t.C:
		}
	}
	return rf, nil
}

// liveBrokers counts the registered brokers that are not fenced.
func liveBrokers(cl *meta.Cluster) int {
	n := 0
	for _, br := range cl.Brokers {
		if !br.Fenced {
			n++
		}
	}
	return n
}

// waitTopic waits (within ctx) until this node's metadata has the topic:
// one another broker created may not have been applied here yet.
func (b *Broker) waitTopic(ctx context.Context, name string) (*meta.Topic, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if top := b.meta.Cluster().Topics[name]; top != nil {
			return top, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("broker: %s missing after create: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}
