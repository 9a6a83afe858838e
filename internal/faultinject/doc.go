// Package faultinject breaks the things a replicated Kafka cluster runs
// on, for tests: the network between two endpoints (Proxy) and a broker's
// process (Process). With package history, which records what a load sent
// and read and checks it, it is the harness the replication fault tests
// share. It is test support: nothing in the broker imports it.
//
// # Links
//
// A Proxy listens on its own port and forwards each connection to one
// target. Per direction (Upstream from the dialer, Downstream back) it
// can add a fixed latency (Delay) or discard bytes while keeping the
// connection open (Drop: a one-way partition); Cut closes every
// connection and refuses new ones; Heal undoes all three and closes the
// connections that lost bytes, since no real TCP stream delivers a hole.
//
//	client ──▶ Proxy.Addr ──[Upstream: delay/drop]──▶ target
//	       ◀──            ◀─[Downstream: delay/drop]──
//
// Each connection has four goroutines (a reader and a writer per
// direction, with up to 64 chunks queued between them); Close waits for
// all of them. Brokers advertise their own addresses in Metadata, so a
// Kafka client is kept on the proxies with kgo.Dialer(RouteDialer(m)),
// m mapping each advertised address to its proxy.
//
// # Processes
//
// BuildRunnel builds cmd/runnel once per test run (from TestMain or a
// sync.Once); StartBroker runs `runnel broker FLAGS` and returns once it
// prints that it listens. Kill is SIGKILL (written data survives in the
// page cache, as after a process crash), Pause and Resume are SIGSTOP and
// SIGCONT, Stop is SIGTERM (a clean, or controlled, shutdown), Restart
// starts it again with the same flags and data directory; a "--listen
// HOST:0" is pinned to the port first chosen so clients find it again.
// Output keeps the last 256 KiB of every start for failure messages.
//
// # A cluster test
//
// A three-broker test builds the binary once, picks free ports, and puts
// a Proxy on every link it wants to break. Brokers advertise one address
// to everyone, so the proxies between brokers are chosen by the dialer:
// each broker runs with --peer-routes (broker.Config.Dial, RouteDial),
// which maps every other node's advertised and controller-quorum address
// to the proxy of this broker's own link to it, so replica fetches,
// transaction markers, the metadata Raft and heartbeats all cross a proxy
// per directed link; clients reach each broker through a front proxy at
// its advertised address. Then:
//
//	var rec history.Recorder
//	load, _ := history.StartLoad(history.LoadConfig{Brokers: seeds, Topic: "t",
//		Acks: -1, Idempotent: true, Consume: true}, &rec)
//	for i := 0; i < runs; i++ {
//		// wait for more acks, then one fault at random:
//		// procs[n].Kill() + Restart, procs[n].Pause() + Resume,
//		// links[a][b].Cut() / Drop(dir) / Delay(dir, d) + Heal
//	}
//	load.Stop(30 * time.Second)
//	history.ReadAll(ctx, &rec, seeds, "t")
//	rep := history.Check(rec.History(), history.Options{Idempotent: true})
//	// rep.Err() == nil: 0 lost, 0 duplicate, 0 inconsistent, 0 gone
//
// and, with each replica's copy read from its own broker by
// history.ReadReplica (a Fetch as Kafka's debugging consumer, which a
// follower serves up to its log end), history.CompareReplicas(topic,
// partition, hw, replicas) must be empty.
// TestClusterCampaign is that loop on three processes, with kills,
// pauses, a broker isolated from everyone, a partition {n} | {the other
// two} with clients still reaching n, one-way links and latency;
// TestClusterPartitionMinority checks the partition itself: the majority
// fences the minority broker and elects a leader, and the minority
// acknowledges no acks=all write.
// TestClusterAcksOneLossReported shows the checker failing on a cluster:
// acks=1 and a leader killed while its followers are frozen.
//
// The single-node campaigns in this package's tests are that loop with
// one broker: TestCampaignKillUnderLoad with SIGKILL as the only fault,
// TestCampaignMixedFaults with every fault above on the client's link and
// the broker's process. RUNNEL_FAULT_RUNS sets their number of faults
// (default 3 and 6) and RUNNEL_FAULT_SEED replays a run's choices.
// TestCampaignReportsLoss, TestCampaignReportsLostTail and
// TestCampaignReportsDuplicates show the checker failing on real runs:
// acks=0 through a one-way link, a broker whose segments lost their
// tails, and a producer without idempotence whose answers were lost.
package faultinject
