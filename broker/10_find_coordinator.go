package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/group"
	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// FindCoordinator v0-v6 (v4+ batches keys, KIP-699). A group's coordinator
// (key type 0) is the leader of its __consumer_offsets partition,
// abs(hashCode(group)) mod the partition count, as Kafka places it; a
// transactional id's (key type 1) is the leader of its
// __transaction_state partition, placed the same way. The answer does not
// wait for that partition to load (the coordinator APIs say
// COORDINATOR_LOAD_IN_PROGRESS until it has).
//
// With an authorizer a group needs DESCRIBE (GROUP_AUTHORIZATION_FAILED)
// and a transactional id DESCRIBE (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
//
// Not here: share groups (key type 2, INVALID_REQUEST).

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
		if code := c.findCoordinatorDenied(r.CoordinatorType, key); code != 0 {
			fc = kmsg.NewFindCoordinatorResponseCoordinator()
			fc.Key, fc.NodeID, fc.Port, fc.ErrorCode = key, -1, -1, code
		}
		if fc.ErrorCode == 0 {
			fc.Host, fc.Port = c.endpoint(meta.Broker{ID: fc.NodeID, Host: fc.Host, Port: fc.Port})
		}
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
	topic, what := offsetsTopic, "group id"
	switch keyType {
	case 0:
	case 1:
		topic, what = txnStateTopic, "transactional id"
	default:
		return fail(kerr.InvalidRequest.Code, "unsupported coordinator key type")
	}
	if key == "" {
		return fail(kerr.InvalidRequest.Code, "empty "+what)
	}
	cl := b.meta.Cluster()
	t := cl.Topics[topic]
	if t == nil || len(t.Partitions) == 0 {
		return fail(kerr.CoordinatorNotAvailable.Code, topic+" does not exist")
	}
	idx := group.PartitionFor(key, int32(len(t.Partitions)))
	leader := t.Partitions[idx].Leader
	br, ok := cl.Brokers[leader]
	if leader < 0 || !ok {
		return fail(kerr.CoordinatorNotAvailable.Code, "the "+what+"'s partition has no leader")
	}
	fc.NodeID, fc.Host, fc.Port = br.ID, br.Host, br.Port
	return fc
}

// findCoordinatorDenied is the error the authorizer answers a key with,
// or 0.
func (c *conn) findCoordinatorDenied(keyType int8, key string) int16 {
	switch keyType {
	case 0:
		if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, key) {
			return kerr.GroupAuthorizationFailed.Code
		}
	case 1:
		if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, key) {
			return kerr.TransactionalIDAuthorizationFailed.Code
		}
	}
	return 0
}
