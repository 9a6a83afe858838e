package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// OffsetFetch v0-v9: one group before v8, several from v8 (KIP-709).
// Partitions with no committed offset come back as offset -1; null topics
// (v2+) ask for every committed offset of the group. Errors are
// per-partition before v2, top-level (per group from v8) after.
// With RequireStable (v7+), a partition whose offset a transaction holds
// uncommitted answers UNSTABLE_OFFSET_COMMIT and the client retries. The
// member epoch (v9) is ignored: classic groups have no member epochs.
//
// Not here yet: v10 (topics by id).

func init() { register(9, 0, 9, handleOffsetFetch) }

func handleOffsetFetch(c *conn, req *request) (finisher, error) {
	return respond(c.b.groups.OffsetFetch(req.kreq.(*kmsg.OffsetFetchRequest)))
}
