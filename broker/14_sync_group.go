package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup v0-v5. The leader sends the assignment it computed; every
// member's response waits until the assignment is stored durably in
// __consumer_offsets, then carries that member's part. v5+ checks the
// protocol type and name (INCONSISTENT_GROUP_PROTOCOL). The broker never
// reads assignments: every client-side assignor works.

func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(c *conn, req *request) (finisher, error) {
	wait := c.b.groups.SyncGroup(req.kreq.(*kmsg.SyncGroupRequest))
	return func(ctx context.Context) kmsg.Response { return wait(ctx) }, nil
}
