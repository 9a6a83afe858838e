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
//
// # Testing
//
// A topology's logic is tested in memory with stream/streamtest. To test
// it as it runs (over the broker, with its partitions, transactions and
// record cache), run an App on the embedded broker (or one started with
// broker/brokertest), produce the input, call App.WaitIdle, and read the
// output topics read_committed: WaitIdle returns once everything produced
// before the call has gone through every sub-topology and is committed, so
// the output is complete then and can be compared with what the test
// expects. Poll no offsets or metrics for it. Under AtLeastOnce the
// application reads uncommitted input, aborted transactions included, as
// Kafka Streams does.
//
// # Concurrency
//
// An App's goroutines, each with one owner that waits for it:
//
//   - runWorkers (app.go), started by Start and waited for by Close
//     through App.done, runs one goroutine per worker (runner.run,
//     runtime_loop.go) and closes the instance when they end.
//   - A worker's loop goroutine (runner.run) polls, processes, punctuates
//     and commits its tasks. Its kgo client calls the group callbacks
//     (assigned, revoked, lost) on the client's own goroutine; with
//     kgo.BlockRebalanceOnPoll they run only while no processed records
//     wait to be committed: during a poll that returns none, between
//     AllowRebalance and the next poll, or inside a client call of the
//     loop that waits for them (Flush, GroupTransactSession.End, Close).
//     Records fetched and still queued for their turn (runtime_queue.go)
//     are not committed: a revocation drops them, and the next owner
//     reads them from the committed offset.
//   - The instance (runtime_instance.go) is shared by its workers: the
//     Pebble DB (safe for concurrent use), the task owners (taskOwners,
//     under its own mutex: one worker at a time opens a task's state),
//     the standby updater (runtime_standby.go, one goroutine, its tasks
//     under its own taskMu) and the global-store updater
//     (runtime_global.go, one goroutine, its state under its mutex).
//   - The repartition purger runs one DeleteRecords at a time on a
//     goroutine of its own (runtime_purge.go), waited for at close.
//   - The metrics HTTP server (MetricsAddr) serves from Start to Close.
//   - The status publisher (app_status.go) writes the instance's status
//     record every StatusInterval on a goroutine of runWorkers, which
//     stops it with the workers and waits for it before closing the
//     instance it reads (task owners and standby tasks, under their
//     mutexes; the metrics, through a registry of its own).
//
// A worker's task state (its tasks with their Pebble batches, the tasks it
// owns, its restorations) is guarded by runner.taskMu, under one rule:
// taskMu is taken only where work on the tasks starts — by the loop for
// each step of a turn or a commit (runner.withTasks), by a group callback
// for the whole callback — and a function called with it held never
// releases it (such functions say REQUIRES: r.taskMu held). The loop makes
// the calls that may wait for a callback, or just wait (the restore poll,
// the client's Flush and offset commit, the session's End), between its
// steps, without taskMu, and each step reads the task state afresh, as a
// callback may have changed it in between. A callback, holding taskMu
// throughout, may make such calls itself: the client runs one callback at
// a time.
//
// Locks, in the order they may be taken: runner.taskMu, then runner.mu
// (produce callbacks: positions, errors); taskOwners.mu and the updaters'
// mutexes are taken alone. App.mu guards the App's fields and is never
// held across a call into the runtime; App.stateMu serializes state
// changes and the StateListener calls, which must not call back into the
// App's lifecycle (Start, Close).
package runnel
