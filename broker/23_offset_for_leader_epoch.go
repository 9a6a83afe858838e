package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch v2-v4 (the versions Kafka 4 serves; v3 adds
// ReplicaID, v4 is flexible). For each partition it answers the end
// offset of the requested leader epoch from the log's epoch history
// (broker/internal/log/epochs.go): the log end offset for the current epoch; for
// an older one, the largest epoch at or below it and the start offset of
// the next; epoch and offset -1 (UNDEFINED) when the history has nothing
// to say. A CurrentLeaderEpoch (>= 0) other than the partition's is
// FENCED_LEADER_EPOCH when older and UNKNOWN_LEADER_EPOCH when newer.
// Consumers use it to validate a position carrying a leader epoch
// (KIP-320): franz-go for offsets given with an epoch, the Java consumer
// after a leader epoch change.
//
// ReplicaID is not checked: a follower's request (which it sends before
// fetching at a new epoch, to find where to truncate) is answered as a
// consumer's, from the leader's log; only the leader answers. With an
// authorizer, as Kafka's: a follower's request (ReplicaID >= 0) needs
// CLUSTER_ACTION on the cluster, a consumer's DESCRIBE on each topic
// (TOPIC_AUTHORIZATION_FAILED).

func init() { register(23, 2, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	follower := r.Version >= 3 && r.ReplicaID >= 0
	followerDenied := follower && !c.allowedCluster(kmsg.ACLOperationClusterAction)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		denied := followerDenied || !follower && !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, code := c.b.leaderPartition(rt.Topic, rp.Partition)
			if code == 0 {
				if epoch := p.epoch(); rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch != epoch {
					code = kerr.FencedLeaderEpoch.Code
					if rp.CurrentLeaderEpoch > epoch {
						code = kerr.UnknownLeaderEpoch.Code
					}
				}
			}
			if code != 0 {
				sp.ErrorCode = code
			} else {
				sp.LeaderEpoch, sp.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp)
}

// leaderPartition returns the partition this broker leads, or the error
// code Kafka answers in its place: UNKNOWN_TOPIC_OR_PARTITION when the
// metadata has no such partition, NOT_LEADER_OR_FOLLOWER when it does but
// this broker does not hold it open as leader (another node leads it, or
// the partition is being opened or deleted).
func (b *Broker) leaderPartition(topic string, index int32) (*partition, int16) {
	if p := b.parts.get(topic, index); p != nil {
		if !p.isLeader() {
			return nil, kerr.NotLeaderForPartition.Code
		}
		return p, 0
	}
	t := b.meta.Cluster().Topics[topic]
	if t == nil {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	for _, mp := range t.Partitions {
		if mp.Index == index {
			return nil, kerr.NotLeaderForPartition.Code
		}
	}
	return nil, kerr.UnknownTopicOrPartition.Code
}
