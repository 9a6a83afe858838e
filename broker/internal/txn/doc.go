// Package txn is the broker's transaction coordinator: InitProducerId
// (producer ids and epochs, fencing), AddPartitionsToTxn and
// AddOffsetsToTxn, EndTxn, the KIP-890 verification a partition asks for
// before it takes a transactional produce (VerifyPartition), and the admin
// APIs that describe and list transactions.
//
// # Transactions
//
// A transactional id moves through Kafka's states (State): Empty, then
// Ongoing with its first partition, then PrepareCommit or PrepareAbort
// when EndTxn decides, then CompleteCommit or CompleteAbort once every
// partition in the transaction holds its marker. The decision is durable
// before the first marker is written, so a coordinator that stops between
// the two finishes the transaction when its partition is loaded again.
// Markers are written through Config.WriteMarker (the broker routes those
// for __consumer_offsets through the group coordinator), in parallel,
// each retried until durable. A transaction older than its timeout is
// aborted and its producer fenced by an epoch bump; an id idle for
// transactional.id.expiration.ms is forgotten and tombstoned. Producer ids
// come in blocks from Config.AllocateProducerIDs.
//
// # Ownership and concurrency
//
// Transactional ids live in shards, one per partition of
// __transaction_state this broker leads (PartitionFor), run by the shared
// coordinator runtime (package coordinator), which answers NOT_COORDINATOR
// and COORDINATOR_LOAD_IN_PROGRESS for shards that are not served. A
// shard's mutex guards every id in it; functions that need it held end in
// Locked. A request that must wait (for a write to be durable, for the
// markers of the previous transaction) releases the lock and waits on a
// channel or the write, bounded by its context. The marker writers of a
// completing transaction are goroutines owned by the runtime; they stop
// when the shard is unloaded or the coordinator closes, leaving the
// transaction prepared. Timeout and expiry checks run on the injected
// Clock every AbortTimedOutCheckInterval. idMu guards the producer id
// block; it may be taken with a shard lock held, never the other way.
//
// # Persistence
//
// State is kept in __transaction_state in Kafka's formats, so the topic
// reads as a Kafka broker's:
//
//	key TxnMetadataKey v0 (transactional id)   value TxnMetadataValue v1
//
// A nil value is a tombstone. Each write is one uncompressed RecordBatch
// appended through the partition's normal append path; a request is
// answered once its write is durable, while the in-memory state changes at
// once so later requests see it. Loading replays the partition from its
// log start to its high watermark.
package txn
