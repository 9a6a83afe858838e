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
package stream
