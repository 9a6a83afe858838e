// Package stream is Runnel's typed DSL: Stream[K, V], Table[K, V],
// GroupedStream, GroupedTable, the windowed streams (TimeWindowedStream for
// tumbling and hopping windows, SlidingWindowedStream, SessionWindowedStream)
// and GlobalTable, which build a processor topology (package topology).
// Joins: stream-stream (Join, LeftJoin, OuterJoin), stream-table
// (JoinTable, LeftJoinTable), stream-global table (JoinGlobal,
// LeftJoinGlobal), table-table on key (JoinTables, LeftJoinTables,
// OuterJoinTables) and on a foreign key (JoinForeignKey,
// LeftJoinForeignKey).
//
// Go methods cannot take type parameters, so operations keeping a stream's
// types are methods (s.Filter, s.Merge, s.To, t.Suppress) and those
// changing them are functions (Map, MapValues, FlatMap, SelectKey, GroupBy,
// Aggregate, WindowedBy, the joins).
//
// Every operation can be named with Named; unnamed ones get Kafka Streams'
// style names from a counter ("KSTREAM-FILTER-0000000003"), so a topology
// rebuilt by the same code keeps its store and internal topic names.
// Stateful operations store their state in stores of package state, whose
// values are "timestamp (8 bytes big-endian) | value". Serdes come from the
// sources, WithSerdes, or serde.Default for the types.
//
// Time is milliseconds since the Unix epoch, as in Kafka record timestamps.
// Windowed operations and stream-stream joins keep their own stream time,
// the largest timestamp they have seen; records too late for a window's
// grace period are dropped and counted (topology.DropLate).
//
// # Order and stream time
//
// A task runs a sub-topology for one partition number of its input topics.
// When it reads several partitions (a join of two topics, a merge, a table
// and a stream), it processes their records in timestamp order, whatever
// order the fetches bring them in: fetched records wait in a queue per
// partition, across polls and commits, and the task takes the one with the
// smallest timestamp among the queues' heads. A partition with nothing
// queued holds the others back while it may have earlier records: while it
// has records to fetch, or is not yet known not to (at most 5 s, so a
// partition that cannot be fetched slows the task and does not stop it),
// and, once at its end, for the runtime's MaxTaskIdle (Kafka Streams'
// max.task.idle.ms; default 0, no wait). A stream-table join's result
// depends on that order: a stream record joins the table as it is when the
// record is processed, that is with the table updates of earlier
// timestamps that were in the topic when the stream record was fetched.
//
// Tasks of different sub-topologies are ordered by time too, more
// loosely: the runtime keeps the tasks that read a pipeline's input topics
// within the runtime's MaxSourceDrift (default 1 s) of one another in
// event time, so that reprocessing a backlog does not feed a later
// window or join records its stream time has passed.
//
// Stream time is per task, hence per partition: a window closes, and
// Suppress emits its final result, when the records of that partition move
// past its end plus grace, whatever other partitions hold. A partition that
// receives no records keeps its windows open (see WallClockClose).
//
// # Record caches
//
// By default every task has a record cache (CacheBytes, 10 MiB) in front of
// its aggregations' stores: updates of a key reach downstream when the
// cache flushes it (at every commit, or when the cache is full), once per
// flush with the latest value. Caching changes how many intermediate
// updates are emitted, never a final result: a window that closes before
// the flush is still forwarded, once. Package streamtest caches the same
// way by default: its Commit is the runtime's commit.
package stream
