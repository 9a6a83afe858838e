package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/group"
)

// FindCoordinator v0-v6 (v4+ batches keys, KIP-699). A group's coordinator
// is the leader of its __consumer_offsets partition, abs(hashCode(group))
// mod the partition count, as Kafka places it; the answer does not wait
// for that partition to load (the group APIs say
// COORDINATOR_LOAD_IN_PROGRESS until it has).
//
// Not here yet: transaction coordinators (key type 1 gets
// COORDINATOR_NOT_AVAILABLE until transactions exist) and share groups
// (key type 2, INVALID_REQUEST).

func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	for _, key := range keys {
		fc := c.b.findCoordinator(r.CoordinatorType, key)
		if r.Version < 4 {
			resp.ErrorCode, resp.ErrorMessage = fc.ErrorCode, fc.ErrorMessage
			resp.NodeID, resp.Host, resp.Port = fc.NodeID, fc.Host, fc.Port
			break
		}
		resp.Coordinators = append(resp.Coordinators, fc)
	}
	return respond(resp)
}

func (b *Broker) findCoordinator(keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	fc := kmsg.NewFindCoordinatorResponseCoordinator()
	fc.Key = key
	fc.NodeID = -1
	fc.Port = -1
	fail := func(code int16, msg string) kmsg.FindCoordinatorResponseCoordinator {
		fc.ErrorCode = code
		fc.ErrorMessage = &msg
		return fc
	}
	switch keyType {
	case 0:
	case 1:
		return fail(kerr.CoordinatorNotAvailable.Code, "transactions are not supported by this broker yet")
	default:
		return fail(kerr.InvalidRequest.Code, "unsupported coordinator key type")
	}
	if key == "" {
		return fail(kerr.InvalidRequest.Code, "empty group id")
	}
	cl := b.meta.Cluster()
	t := cl.Topics[offsetsTopic]
	if t == nil || len(t.Partitions) == 0 {
		return fail(kerr.CoordinatorNotAvailable.Code, offsetsTopic+" does not exist")
	}
	idx := group.PartitionFor(key, int32(len(t.Partitions)))
	leader := t.Partitions[idx].Leader
	br, ok := cl.Brokers[leader]
	if leader < 0 || !ok {
		return fail(kerr.CoordinatorNotAvailable.Code, "the group's partition has no leader")
	}
	fc.NodeID, fc.Host, fc.Port = br.ID, br.Host, br.Port
	return fc
}
