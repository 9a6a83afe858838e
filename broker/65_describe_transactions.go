package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeTransactions v0: state, producer id and epoch, timeout, start
// time and partitions of transactional ids this broker coordinates
// (TRANSACTIONAL_ID_NOT_FOUND for unknown ones, NOT_COORDINATOR for ids
// placed elsewhere). Kafka's kafka-transactions describe uses it.

func init() { register(65, 0, 0, handleDescribeTransactions) }

func handleDescribeTransactions(c *conn, req *request) (finisher, error) {
	return respond(c.b.txns.DescribeTransactions(req.kreq.(*kmsg.DescribeTransactionsRequest)))
}
