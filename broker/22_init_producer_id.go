package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// InitProducerId v0-v5. Without a transactional id: a new producer id
// with epoch 0, for an idempotent producer. With one: the transaction
// coordinator bumps the id's epoch (fencing older producers), aborting
// the previous producer's open transaction first; v3+ producers
// recovering with their current id and epoch (KIP-360) are bumped the
// same way. transaction.timeout.ms above transaction.max.timeout.ms is
// INVALID_TRANSACTION_TIMEOUT.
//
// With an authorizer, as Kafka's: a transactional id needs WRITE on it
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent producer needs
// IDEMPOTENT_WRITE on the cluster or WRITE on some topic
// (CLUSTER_AUTHORIZATION_FAILED).
//
// Not here: two-phase commit (v6, KIP-939).

func init() { register(22, 0, 5, handleInitProducerID) }

func handleInitProducerID(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.InitProducerIDRequest)
	if code := c.initProducerIDDenied(r); code != 0 {
		resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode = code
		return respond(resp)
	}
	return func(ctx context.Context) kmsg.Response { return c.b.txns.InitProducerID(ctx, r) }, nil
}

// initProducerIDDenied is the error the authorizer answers r with, or 0.
func (c *conn) initProducerIDDenied(r *kmsg.InitProducerIDRequest) int16 {
	a := c.b.authz
	switch {
	case a == nil:
		return 0
	case r.TransactionalID != nil:
		if !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *r.TransactionalID) {
			return kerr.TransactionalIDAuthorizationFailed.Code
		}
		return 0
	}
	if c.allowedQuiet(kmsg.ACLOperationIdempotentWrite, kmsg.ACLResourceTypeCluster, meta.ClusterResourceName) {
		return 0
	}
	principal, host := c.who()
	if a.authorizeAny(principal, host, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic) {
		return 0
	}
	c.denied(kmsg.ACLOperationIdempotentWrite, kmsg.ACLResourceTypeCluster, meta.ClusterResourceName)
	return kerr.ClusterAuthorizationFailed.Code
}
