package broker

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// DescribeQuorum v0-v2 (KIP-595, KIP-836, KIP-853): the state of the
// controller quorum, the Raft group that holds the metadata, as KRaft
// reports its __cluster_metadata-0 partition: the leader (the
// controller) and its epoch (the Raft term), the high watermark (the
// index after the last committed entry), and each voter's and observer's
// log end offset with when the leader last heard from it and last saw it
// caught up (v1+). v2 adds each voter's controller listener (named
// CONTROLLER) as a node. Any broker answers: it asks the controller.
// Kafka's `kafka-metadata-quorum describe --status` and `--replication`
// read it.
//
// v2 reports each member's directory id (KIP-853): the id of its
// metadata directory, made when the node first starts with it and kept
// in the data dir (meta/directory.id), so it is stable across restarts
// and new when a disk is replaced; zero for a member that has not
// registered yet.
//
// It needs DESCRIBE on the cluster, as Kafka's: denied, the response
// carries CLUSTER_AUTHORIZATION_FAILED and no partition.
//
// Not here: AddRaftVoter/RemoveRaftVoter (the voters are fixed by
// --controller-quorum), so the voter set does not change with a
// directory id either.

func init() { register(55, 0, 2, handleDescribeQuorum) }

// quorumTopic is KRaft's metadata log, the one partition DescribeQuorum
// describes.
const quorumTopic = "__cluster_metadata"

// controllerListenerName names the controller listener in DescribeQuorum
// v2's nodes, as KRaft's controller.listener.names usually does.
const controllerListenerName = "CONTROLLER"

func handleDescribeQuorum(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DescribeQuorumRequest)
	resp := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
	if !c.allowedCluster(kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp)
	}
	// The request has no timeout of its own; the controller answers
	// from memory, so a few seconds cover a loaded machine.
	ctx, cancel := adminContext(c, 5000)
	defer cancel()
	var q meta.QuorumInfo
	var qerr error
	asked := false
	for _, rt := range r.Topics {
		st := kmsg.NewDescribeQuorumResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDescribeQuorumResponseTopicPartition()
			sp.Partition = rp.Partition
			if rt.Topic != quorumTopic || rp.Partition != 0 {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if !asked {
				asked = true
				q, qerr = c.b.meta.DescribeQuorum(ctx)
			}
			if qerr != nil {
				sp.ErrorCode = quorumErrorCode(qerr)
				sp.ErrorMessage = errorMessage(qerr)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			sp.LeaderID, sp.LeaderEpoch, sp.HighWatermark = q.LeaderID, q.LeaderEpoch, q.HighWatermark
			sp.CurrentVoters = replicaStates(q.Voters)
			sp.Observers = replicaStates(q.Observers)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if asked && qerr == nil {
		resp.Nodes = quorumNodes(q.Voters)
	}
	return respond(resp)
}

// quorumErrorCode maps a failure to describe the quorum to the error
// Kafka's admin client retries on while the quorum elects a leader.
func quorumErrorCode(err error) int16 {
	if errors.Is(err, meta.ErrNotController) || errors.Is(err, meta.ErrClosed) {
		return kerr.NotLeaderForPartition.Code
	}
	return errorCode(err)
}

func replicaStates(rs []meta.ReplicaProgress) []kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	out := make([]kmsg.DescribeQuorumResponseTopicPartitionReplicaState, 0, len(rs))
	for _, r := range rs {
		s := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		s.ReplicaID = r.ID
		s.ReplicaDirectoryID = r.DirectoryID
		s.LogEndOffset = r.LogEndOffset
		s.LastFetchTimestamp = unixMillisOrNone(r.LastFetch)
		s.LastCaughtUpTimestamp = unixMillisOrNone(r.LastCaughtUp)
		out = append(out, s)
	}
	return out
}

// quorumNodes lists the voters' controller listeners (v2). A quorum of
// one has none to list.
func quorumNodes(voters []meta.ReplicaProgress) []kmsg.DescribeQuorumResponseNode {
	var out []kmsg.DescribeQuorumResponseNode
	for _, v := range voters {
		host, port, ok := meta.ControllerEndpoint(v.Addr)
		if !ok {
			continue
		}
		n := kmsg.NewDescribeQuorumResponseNode()
		n.NodeID = v.ID
		l := kmsg.NewDescribeQuorumResponseNodeListener()
		l.Name, l.Host, l.Port = controllerListenerName, host, port
		n.Listeners = append(n.Listeners, l)
		out = append(out, n)
	}
	return out
}

// unixMillisOrNone is t in Unix milliseconds, or -1 for the zero time
// (Kafka's "unknown").
func unixMillisOrNone(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}
