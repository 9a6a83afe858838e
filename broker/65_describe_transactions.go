package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions v0: state, producer id and epoch, timeout, start
// time and partitions of transactional ids this broker coordinates
// (TRANSACTIONAL_ID_NOT_FOUND for unknown ones, NOT_COORDINATOR for ids
// placed elsewhere). Kafka's kafka-transactions describe uses it.
// With an authorizer an id needs DESCRIBE
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

func init() { register(65, 0, 0, handleDescribeTransactions) }

func handleDescribeTransactions(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DescribeTransactionsRequest)
	allowed := *r
	allowed.TransactionalIDs = nil
	for _, id := range r.TransactionalIDs {
		if c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, id) {
			allowed.TransactionalIDs = append(allowed.TransactionalIDs, id)
		}
	}
	if len(allowed.TransactionalIDs) == len(r.TransactionalIDs) {
		return respond(c.b.txns.DescribeTransactions(r))
	}
	served := c.b.txns.DescribeTransactions(&allowed)
	byID := make(map[string]kmsg.DescribeTransactionsResponseTransactionState, len(served.TransactionStates))
	for _, st := range served.TransactionStates {
		byID[st.TransactionalID] = st
	}
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range r.TransactionalIDs {
		st, ok := byID[id]
		if !ok {
			st = kmsg.NewDescribeTransactionsResponseTransactionState()
			st.TransactionalID, st.ErrorCode = id, kerr.TransactionalIDAuthorizationFailed.Code
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return respond(resp)
}
