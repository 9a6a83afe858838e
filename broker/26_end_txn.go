package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn v0-v5: commit or abort the producer's transaction. The decision
// is made durable in __transaction_state, markers go to every partition
// in the transaction (and to the group coordinator for offsets), and the
// answer waits a few seconds at most for them. v5 (KIP-890 part 2) bumps
// the producer epoch with every transaction and returns it, so a marker
// or write delayed from one transaction cannot land in the next. Errors
// as Kafka's: INVALID_TXN_STATE, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH
// before v2), CONCURRENT_TRANSACTIONS while a previous end completes.

func init() { register(26, 0, 5, handleEndTxn) }

func handleEndTxn(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.EndTxnRequest)
	// As Kafka's: WRITE on the transactional id.
	if !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, r.TransactionalID) {
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return respond(resp)
	}
	return func(ctx context.Context) kmsg.Response { return c.b.txns.EndTxn(ctx, r) }, nil
}
