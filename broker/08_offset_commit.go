package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit v0-v9. A member commits with its generation and member id;
// a generation of -1 (and v0, which has none) from a group with no members
// is a simple commit. The response waits until the commit is durable in
// __consumer_offsets, as an acks=all produce does. The per-partition
// timestamp (v1) and the retention time (v2-v4) are ignored: offsets
// expire by offsets.retention.minutes once the group is empty, as in
// Kafka since 2.1.
//
// Not here yet: v10 (topics by id) and transactional commits
// (TxnOffsetCommit).

func init() { register(8, 0, 9, handleOffsetCommit) }

func handleOffsetCommit(c *conn, req *request) (finisher, error) {
	wait := c.b.groups.OffsetCommit(req.kreq.(*kmsg.OffsetCommitRequest))
	return func(ctx context.Context) kmsg.Response { return wait(ctx) }, nil
}
