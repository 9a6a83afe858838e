package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete v0 (KIP-496). An empty group's offsets can all be deleted;
// a consumer group with members keeps the offsets of topics its members
// subscribe to (GROUP_SUBSCRIBED_TO_TOPIC per partition), and a non-consumer
// group with members refuses (NON_EMPTY_GROUP). The response waits until
// the tombstones are durable.

func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(c *conn, req *request) (finisher, error) {
	wait := c.b.groups.OffsetDelete(req.kreq.(*kmsg.OffsetDeleteRequest))
	return func(ctx context.Context) kmsg.Response { return wait(ctx) }, nil
}
