package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListTransactions v0-v2: the transactional ids this broker coordinates,
// filtered by state names and producer ids, by how long the transaction
// has been open (v1, KIP-994), and by a regular expression over the id
// (v2, KIP-1152). Kafka's kafka-transactions list asks every broker.
// With an authorizer only the ids the principal may DESCRIBE are listed.

func init() { register(66, 0, 2, handleListTransactions) }

func handleListTransactions(c *conn, req *request) (finisher, error) {
	resp := c.b.txns.ListTransactions(req.kreq.(*kmsg.ListTransactionsRequest))
	resp.TransactionStates = slices.DeleteFunc(resp.TransactionStates, func(st kmsg.ListTransactionsResponseTransactionState) bool {
		return !c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, st.TransactionalID)
	})
	return respond(resp)
}
