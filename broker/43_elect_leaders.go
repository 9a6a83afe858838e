package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// ElectLeaders v0-v2: the PREFERRED (0) and UNCLEAN (1) election types,
// on the named partitions or, with null topics, on every partition (the
// partitions that need none are then left out of the answer, as Kafka's
// controller does). Any broker takes the request and forwards the
// election to the controller. A preferred election moves the lead to the
// first replica if it is live and in the ISR (ELECTION_NOT_NEEDED when it
// leads already, PREFERRED_LEADER_NOT_AVAILABLE otherwise); an unclean one
// gives a partition without a live leader the first live ISR member, or
// failing that any live replica (ELECTION_NOT_NEEDED when it has a live
// leader, ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live). The
// answer comes once the controller has applied the election; the new
// leaders take over as their brokers see it.
// With an authorizer it needs ALTER on the cluster
// (CLUSTER_AUTHORIZATION_FAILED).

func init() { register(43, 0, 2, handleElectLeaders) }

func handleElectLeaders(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	if !c.allowedCluster(kmsg.ACLOperationAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp)
	}
	typ := meta.ElectionType(r.ElectionType)
	if r.Version == 0 {
		typ = meta.ElectPreferred
	}
	if typ != meta.ElectPreferred && typ != meta.ElectUnclean {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return respond(resp)
	}
	var parts []meta.PartitionRef
	if r.Topics != nil {
		parts = []meta.PartitionRef{}
		for _, rt := range r.Topics {
			for _, p := range rt.Partitions {
				parts = append(parts, meta.PartitionRef{Topic: rt.Topic, Index: p})
			}
		}
	}
	ctx, cancel := adminContext(c, r.TimeoutMillis)
	defer cancel()
	res, err := c.b.meta.ElectLeaders(ctx, typ, parts)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		if resp.ErrorCode == kerr.UnknownServerError.Code && ctx.Err() != nil {
			resp.ErrorCode = kerr.RequestTimedOut.Code
		}
		return respond(resp)
	}
	byTopic := map[string]int{}
	for ref, perr := range res {
		i, ok := byTopic[ref.Topic]
		if !ok {
			i = len(resp.Topics)
			byTopic[ref.Topic] = i
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = ref.Topic
			resp.Topics = append(resp.Topics, st)
		}
		sp := kmsg.NewElectLeadersResponseTopicPartition()
		sp.Partition = ref.Index
		sp.ErrorCode = electionCode(perr)
		sp.ErrorMessage = errorMessage(perr)
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
	}
	return respond(resp)
}

// electionCode maps an election's outcome to its Kafka error.
func electionCode(err error) int16 {
	switch {
	case errors.Is(err, meta.ErrElectionNotNeeded):
		return kerr.ElectionNotNeeded.Code
	case errors.Is(err, meta.ErrPreferredLeaderNotAvailable):
		return kerr.PreferredLeaderNotAvailable.Code
	case errors.Is(err, meta.ErrEligibleLeadersNotAvailable):
		return kerr.EligibleLeadersNotAvailable.Code
	case errors.Is(err, meta.ErrInvalidReplicaAssignment):
		return kerr.InvalidReplicaAssignment.Code
	case errors.Is(err, meta.ErrNoReassignmentInProgress):
		return kerr.NoReassignmentInProgress.Code
	}
	return errorCode(err)
}

// adminContext bounds an admin request's wait for the controller by its
// timeout (at least a second, at most a minute) and by the connection.
func adminContext(c *conn, timeoutMillis int32) (context.Context, context.CancelFunc) {
	d := time.Duration(timeoutMillis) * time.Millisecond
	return context.WithTimeout(c.ctx, min(max(d, time.Second), time.Minute))
}
