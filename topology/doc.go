// Package topology is Runnel's processor graph and Processor API.
//
// A Builder holds sources (topics in), processors (Processor[KIn, VIn, KOut,
// VOut]: Init, Process, Close), sinks (topics out) and state stores connected
// to processors. Build cuts the graph into sub-topologies — connected parts,
// linked only through topics such as repartition topics — and Describe prints
// them like Kafka Streams' TopologyDescription:
//
//	source(topic) -> processor -> sink(<app>-x-repartition)     sub-topology 0
//	source(<app>-x-repartition) -> processor[store] -> sink     sub-topology 1
//
// Inside a task records travel as typed Go values (Record[K, V]); serdes
// apply only at the edges: sources deserialize, sinks serialize, stores hold
// bytes (the DSL's typed store views serialize). A nil key or value is a
// Kafka null.
//
// A Task runs one sub-topology for one partition. It is a thread-unsafe
// state machine: its driver (the stream runtime, or package
// stream/streamtest) feeds it records and wall-clock time and flushes it
// before commits; output leaves through the driver's RecordCollector.
// Internal topics are named "<application id>-<name>-repartition" and
// "<application id>-<store>-changelog".
package topology
