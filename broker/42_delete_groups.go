package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups v0-v2. Only an empty group can be deleted
// (NON_EMPTY_GROUP otherwise); its offsets and metadata get tombstones in
// __consumer_offsets and the response waits until they are durable.
//
// Not here: v3 (the KIP-1043 error messages and consumer-protocol groups).

func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(c *conn, req *request) (finisher, error) {
	wait := c.b.groups.DeleteGroups(req.kreq.(*kmsg.DeleteGroupsRequest))
	return func(ctx context.Context) kmsg.Response { return wait(ctx) }, nil
}
