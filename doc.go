// Package runnel runs stream-processing applications: a topology built with
// the typed DSL of package stream (or by hand with package topology) runs as
// an App over a Kafka-protocol log, with exactly-once (or at-least-once)
// results and changelog-backed Pebble state.
//
//	b := stream.NewBuilder()
//	// ... the pipeline ...
//	topo, err := b.Build()
//	app, err := runnel.NewApp(topo, runnel.ApplicationID("orders"))
//	err = app.Run(ctx)
//
// The App is Kafka Streams' KafkaStreams and its options are Kafka Streams'
// configs (each option's doc names the config it stands for). Without
// Brokers the App starts an embedded Runnel broker, so a pipeline runs with
// nothing else installed; with Brokers it runs unchanged against any
// Kafka-protocol cluster (Runnel, Apache Kafka, Redpanda).
//
// The packages split as Kafka Streams' do: package stream is the DSL and
// links no broker, store engine or metrics library, so building a topology
// and testing it with stream/streamtest stays light; this package is the
// application (App, its options, error handlers, metrics, interactive
// queries, reset) and the runtime behind it (the unexported runner, task,
// restore, standby and assignment code in the runtime_*.go files), and it
// links the embedded broker.
package runnel
