// Package group is the broker's consumer group coordinator for Kafka's
// classic group protocol: JoinGroup, SyncGroup, Heartbeat and LeaveGroup
// with static membership (KIP-345), committed offsets, and the admin APIs
// that describe, list and delete groups.
//
// # Ownership and concurrency
//
// Groups live in shards, one per partition of __consumer_offsets that this
// broker leads: a group belongs to the shard of partition
// PartitionFor(group, n), the same placement Kafka uses. The shared
// coordinator runtime (package coordinator) holds the shard table and
// loads and unloads shards as leadership comes and goes. A shard's mutex
// guards every group in it; functions that need it held end in Locked.
// Requests that must wait for the group (a JoinGroup until the rebalance
// completes, a SyncGroup until the leader's assignment arrives, any write
// until it is durable) return a wait function that blocks on a channel
// the group answers on (buffered, so the group never blocks) and returns
// early when the caller's context ends. Timers (session, rebalance and
// initial-delay timeouts, offset expiry) run on an injected Clock; their
// callbacks take the shard lock and check that they are still current.
// The runtime owns the loader goroutines and timer callbacks and waits for
// them in Close. Unloading a shard stops its groups' timers and answers
// the members waiting in JoinGroup or SyncGroup with NOT_COORDINATOR.
//
// # Persistence
//
// Group state is kept in __consumer_offsets in Kafka's own formats, so the
// topic reads the same as a Kafka broker's:
//
//	key OffsetCommitKey v1 (group, topic, partition)  value OffsetCommitValue v3
//	key GroupMetadataKey v2 (group)                   value GroupMetadataValue v3
//
// A nil value is a tombstone: a deleted offset, or a deleted (Dead) group.
// Each write is one uncompressed RecordBatch v2 appended through the
// partition's normal append path; the request that caused it is answered
// once the batch is durable. The in-memory state changes when the batch is
// appended, so a later request sees it at once. On start the coordinator
// replays each partition it leads, from its log start to its high
// watermark, before serving groups in it (COORDINATOR_LOAD_IN_PROGRESS
// until then). A group loaded with members is Stable, and its members must
// heartbeat within their session timeout to stay in it.
package group
