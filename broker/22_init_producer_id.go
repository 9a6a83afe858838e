package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId v0-v5. Without a transactional id: a new producer id
// with epoch 0, for an idempotent producer. With one: the transaction
// coordinator bumps the id's epoch (fencing older producers), aborting
// the previous producer's open transaction first; v3+ producers
// recovering with their current id and epoch (KIP-360) are bumped the
// same way. transaction.timeout.ms above transaction.max.timeout.ms is
// INVALID_TRANSACTION_TIMEOUT.
//
// Not here: two-phase commit (v6, KIP-939).

func init() { register(22, 0, 5, handleInitProducerID) }

func handleInitProducerID(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.InitProducerIDRequest)
	return func(ctx context.Context) kmsg.Response { return c.b.txns.InitProducerID(ctx, r) }, nil
}
