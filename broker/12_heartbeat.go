package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// Heartbeat v0-v4. A heartbeat keeps a member's session alive and tells it
// of a rebalance (REBALANCE_IN_PROGRESS) or a stale generation
// (ILLEGAL_GENERATION); v3+ checks group.instance.id (FENCED_INSTANCE_ID).

func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(c *conn, req *request) (finisher, error) {
	return respond(c.b.groups.Heartbeat(req.kreq.(*kmsg.HeartbeatRequest)))
}
