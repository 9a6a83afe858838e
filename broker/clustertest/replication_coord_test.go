package clustertest_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

// Coordinators and transactions on a cluster of three broker processes:
// the group and transaction coordinators move with the leadership of
// their partitions when a broker dies, and a transaction's partitions
// may be led by other brokers than its coordinator.

// readCommittedCluster reads a one-partition topic with read_committed
// from the start to its last stable offset, which it waits to reach the
// high watermark (no transaction open), and returns the values.
func readCommittedCluster(t *testing.T, c *testCluster, topic string) []string {
	t.Helper()
	cl := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var hw int64 = -1
	for hw < 0 {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			if o, ok := ends.Lookup(topic, 0); ok && o.Err == nil {
				hw = o.Offset
			}
		}
		if hw < 0 {
			if ctx.Err() != nil {
				t.Fatalf("list end offsets of %s: %v", topic, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var out []string
	var pos int64
	for pos < hw {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: read committed up to %d of %d", topic, pos, hw)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if n := len(fp.Records); n > 0 {
				pos = max(pos, fp.Records[n-1].Offset+1)
			}
			pos = max(pos, fp.LastStableOffset)
		})
	}
	return out
}

// coordinatorsOn finds a group id and a transactional id whose
// coordinators are the same broker, and returns them with it.
func coordinatorsOn(t *testing.T, adm *kadm.Client, prefix string) (groupID, txnID string, node int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var groups, txns []string
	for i := range 12 {
		groups = append(groups, fmt.Sprintf("%s-group-%d", prefix, i))
		txns = append(txns, fmt.Sprintf("%s-txn-%d", prefix, i))
	}
	for {
		gcs := adm.FindGroupCoordinators(ctx, groups...)
		tcs := adm.FindTxnCoordinators(ctx, txns...)
		for _, g := range groups {
			gc, ok := gcs[g]
			if !ok || gc.Err != nil {
				continue
			}
			for _, x := range txns {
				if tc, ok := tcs[x]; ok && tc.Err == nil && tc.NodeID == gc.NodeID {
					return g, x, gc.NodeID
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no group and transactional id with the same coordinator")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The broker hosting a consumer group's and a transactional id's
// coordinators is SIGKILLed. The coordinators move with the leadership of
// their partitions: the group rejoins on the new coordinator with its
// committed offsets intact (a new member starts where the old one
// committed), and a new producer with the same transactional id aborts
// the transaction the old one left open (its records never become
// visible to read_committed) and completes a new one.
func TestReplicationCoordinatorFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	c := startCluster(t, 3, 3)
	step("cluster up")
	admCl := c.client()
	adm := kadm.NewClient(admCl)
	const topic = "coord-failover"
	createReplicated(t, admCl, topic, "2")
	groupID, txnID, coord := coordinatorsOn(t, adm, "cf")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Ten plain records, consumed and committed by a group member.
	plain := c.client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	var want []string
	for i := range 10 {
		v := fmt.Sprintf("plain-%d", i)
		if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	member := c.client(kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	for n := 0; n < 10; {
		fs := member.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("first member read %d of 10", n)
		}
		n += fs.NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	member.Close()

	// A transaction left open: its records are on the data partition,
	// its state in the coordinator's log.
	old := c.client(kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(time.Minute))
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := old.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "open-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	step("before kill")
	c.kill(coord)
	t.Logf("killed broker %d, the coordinator of %s and %s", coord, groupID, txnID)

	// The group: a new member resumes at the committed offset.
	for i := range 3 {
		v := fmt.Sprintf("after-%d", i)
		if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	step("produced after the kill")
	// Read uncommitted: the open transaction holds read_committed
	// readers back until it is aborted, below.
	again := c.client(kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	var got []*kgo.Record
	for len(got) < 8 {
		fs := again.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("new member read %d records after the failover", len(got))
		}
		got = append(got, fs.Records()...)
	}
	step("group rejoined")
	if got[0].Offset != 10 {
		t.Errorf("new member started at offset %d, want 10: the committed offset was lost", got[0].Offset)
	}
	// A client made before the kill may keep the dead coordinator for
	// sharded requests (OffsetFetch); a new one looks it up, though it
	// may try the dead broker first too.
	var offs kadm.OffsetResponses
	for {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
		if err != nil {
			t.Fatal(err)
		}
		offs, err = kadm.NewClient(cl).FetchOffsets(ctx, groupID)
		cl.Close()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("fetch offsets after the failover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if o, ok := offs.Lookup(topic, 0); !ok || o.At != 10 {
		t.Errorf("committed offset after the failover: %+v (found %v), want 10", o, ok)
	}

	// The transactional id: a new producer fences the old one, whose
	// open transaction is aborted, and commits its own.
	fresh := c.client(kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(time.Minute))
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := fresh.BeginTransaction()
		for i := 0; err == nil && i < 3; i++ {
			err = fresh.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "txn-%d", i)}).FirstErr()
		}
		if err == nil {
			err = fresh.EndTransaction(ctx, kgo.TryCommit)
		} else {
			fresh.EndTransaction(ctx, kgo.TryAbort)
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transaction after the failover: %v", err)
		}
		t.Logf("transaction after the failover, retrying: %v", err)
	}
	step("transaction committed")
	want = append(want, "txn-0", "txn-1", "txn-2")
	if got := readCommittedCluster(t, c, topic); !slices.Equal(got, want) {
		t.Errorf("read_committed after the failover:\n got %v\nwant %v", got, want)
	}
	step("read")
	if err := old.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the fenced producer committed its transaction")
	}
}

// transactionOutcome is what the test knows of one transaction.
type transactionOutcome int

const (
	committed transactionOutcome = iota
	aborted
	unknown // ended in an error: all its records or none
)

// A transactional producer writes to three partitions led by three
// different brokers, so its coordinator writes markers on other brokers
// and they verify its writes with it. Committed transactions are read
// by read_committed consumers, aborted ones are not, each record once.
// Then the same while the leader of one partition is SIGKILLed mid-run:
// markers reach its new leader, and every transaction is all or nothing.
func TestReplicationTransactionsAcrossBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	c := startCluster(t, 3, 3)
	admCl := c.client()
	topics := []string{"xb-1", "xb-2", "xb-3"}
	for i, tp := range topics {
		lead := int32(i + 1)
		createReplicated(t, admCl, tp, "2", lead, lead%3+1, (lead+1)%3+1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pr := c.client(kgo.TransactionalID("xb-txn"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionTimeout(30*time.Second), kgo.RequiredAcks(kgo.AllISRAcks()))

	var outcomes []transactionOutcome
	run := func(n int, commit bool) {
		t.Helper()
		i := len(outcomes)
		err := pr.BeginTransaction()
		for _, tp := range topics {
			for j := 0; err == nil && j < n; j++ {
				err = pr.ProduceSync(ctx, &kgo.Record{Topic: tp, Value: fmt.Appendf(nil, "t%d-%d", i, j)}).FirstErr()
			}
		}
		if err == nil {
			err = pr.EndTransaction(ctx, kgo.TransactionEndTry(commit))
		} else {
			// A failed produce aborts; so may the coordinator
			// (kgo retries what it can).
			if aerr := pr.EndTransaction(ctx, kgo.TryAbort); aerr != nil {
				t.Logf("abort of transaction %d: %v", i, aerr)
			}
		}
		switch {
		case err != nil:
			t.Logf("transaction %d: %v", i, err)
			outcomes = append(outcomes, unknown)
		case commit:
			outcomes = append(outcomes, committed)
		default:
			outcomes = append(outcomes, aborted)
		}
	}
	check := func(what string) {
		t.Helper()
		for _, tp := range topics {
			got := readCommittedCluster(t, c, tp)
			seen := map[string]int{}
			for _, v := range got {
				seen[v]++
			}
			for i, o := range outcomes {
				var n int
				for j := 0; ; j++ {
					k := seen[fmt.Sprintf("t%d-%d", i, j)]
					if k == 0 {
						break
					}
					if k > 1 {
						t.Errorf("%s: %s: t%d-%d read %d times", what, tp, i, j, k)
					}
					n++
				}
				switch {
				case o == committed && n == 0:
					t.Errorf("%s: %s: committed transaction %d not read", what, tp, i)
				case o == aborted && n > 0:
					t.Errorf("%s: %s: aborted transaction %d read", what, tp, i)
				}
			}
		}
	}

	run(3, true)
	run(3, false)
	run(3, true)
	if slices.Contains(outcomes, unknown) {
		t.Fatalf("transactions failed with every broker up: %v", outcomes)
	}
	check("all brokers up")

	// Kill the leader of xb-2 between transactions, and run more while
	// its partition fails over.
	run(2, true)
	c.kill(2)
	for i := range 8 {
		run(2, i%3 != 2)
	}
	committedAfter := 0
	for _, o := range outcomes[4:] {
		if o == committed {
			committedAfter++
		}
	}
	if committedAfter == 0 {
		t.Fatalf("no transaction committed after the kill: %v", outcomes)
	}
	check("after a leader's kill")

	// Every transaction is all or nothing across the three partitions.
	reads := map[string][]string{}
	for _, tp := range topics {
		reads[tp] = readCommittedCluster(t, c, tp)
	}
	for i := range outcomes {
		in := 0
		for _, tp := range topics {
			if slices.Contains(reads[tp], fmt.Sprintf("t%d-0", i)) {
				in++
			}
		}
		if in != 0 && in != len(topics) {
			t.Errorf("transaction %d visible on %d of %d partitions", i, in, len(topics))
		}
	}
}

// produceRawTo sends batches in one acks=all Produce to partition 0 of
// topic on broker node alone, and returns the partition's error code and
// base offset.
func produceRawTo(t *testing.T, cl *kgo.Client, node int32, topic string, batches ...[]byte) (int16, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("list topic: %v %v", err, td[topic].Err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, td[topic].ID
	rp := kmsg.NewProduceRequestTopicPartition()
	for _, b := range batches {
		rp.Records = append(rp.Records, b...)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(node)))
	if err != nil {
		t.Fatal(err)
	}
	sp := resp.Topics[0].Partitions[0]
	return sp.ErrorCode, sp.BaseOffset
}

// An idempotent producer's batch acknowledged by a leader that is then
// SIGKILLed, retried on the new leader, is answered with its original
// offsets and not written again: the followers rebuilt the producer state
// from the replicated log. The sequence goes on from there, and a gap is
// still refused.
func TestReplicationIdempotentRetryAfterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	c := startCluster(t, 3, 3)
	cl := c.client()
	const topic = "idem-failover"
	createReplicated(t, cl, topic, "2", 1, 2, 3)
	batch := func(pid int64, epoch int16, seq int32, values ...string) []byte {
		return testBatch(recordbatch.Producer{ID: pid, Epoch: epoch, Sequence: seq}, values...)
	}
	const pid = 4242
	first, second := batch(pid, 0, 0, "a", "b"), batch(pid, 0, 2, "c")
	for _, s := range []struct {
		b    []byte
		base int64
	}{{first, 0}, {second, 2}} {
		// The leader may not have applied the metadata that made it
		// one, or opened the partition, yet: NOT_LEADER_OR_FOLLOWER and
		// UNKNOWN_TOPIC_OR_PARTITION write nothing, try again.
		deadline := time.Now().Add(30 * time.Second)
		code, base := produceRawTo(t, cl, 1, topic, s.b)
		for (code == kerr.NotLeaderForPartition.Code || code == kerr.UnknownTopicOrPartition.Code) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			code, base = produceRawTo(t, cl, 1, topic, s.b)
		}
		if code != 0 || base != s.base {
			t.Fatalf("produce to the first leader: %v at %d, want offset %d", kerr.ErrorForCode(code), base, s.base)
		}
	}
	c.kill(1)
	leader, _, _ := waitPartitionState(t, kadm.NewClient(cl), topic, "a new leader", func(leader int32, _ []int32) bool { return leader > 1 })
	for _, s := range []struct {
		what string
		b    []byte
		code int16
		base int64
	}{
		{"retry of the last batch", second, 0, 2},
		{"retry of the first batch", first, 0, 0},
		{"next batch", batch(pid, 0, 3, "d"), 0, 3},
		{"gap", batch(pid, 0, 9, "x"), kerr.OutOfOrderSequenceNumber.Code, -1},
	} {
		// The new leader may learn of its election a moment after the
		// broker that answered the metadata query.
		deadline := time.Now().Add(30 * time.Second)
		code, base := produceRawTo(t, cl, leader, topic, s.b)
		for code == kerr.NotLeaderForPartition.Code && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			code, base = produceRawTo(t, cl, leader, topic, s.b)
		}
		if code != s.code || (code == 0 && base != s.base) {
			t.Errorf("%s on the new leader %d: %v at %d, want %v at %d", s.what, leader, kerr.ErrorForCode(code), base, kerr.ErrorForCode(s.code), s.base)
		}
	}
	if got, want := consumeCluster(t, c, topic), []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("read %v, want %v: a retried batch was written twice", got, want)
	}
}

// SCENARIOS.md 17 on a cluster: a consume-process-produce loop (franz-go
// GroupTransactSession, its group offsets committed in its transactions)
// copies an input topic to an output topic on three brokers while the
// broker hosting its group and transaction coordinators is SIGKILLed and
// later restarted. The read_committed output equals the input, record for
// record: nothing lost, nothing twice.
func TestReplicationExactlyOnceCoordinatorKill(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	c := startCluster(t, 3, 3)
	admCl := c.client()
	const in, out = "eos-in", "eos-out"
	createReplicated(t, admCl, in, "2")
	createReplicated(t, admCl, out, "2")
	groupID, txnID, coord := coordinatorsOn(t, kadm.NewClient(admCl), "eos")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const n = 3000
	prod := c.client(kgo.DefaultProduceTopic(in), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(1024))
	var recs []*kgo.Record
	var want []string
	for i := range n {
		v := fmt.Sprintf("%05d", i)
		recs = append(recs, &kgo.Record{Value: []byte(v)})
		want = append(want, "out-"+v)
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(c.seeds()...),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(10*time.Second),
		kgo.ConsumerGroup(groupID),
		kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		clusterClientLogger(),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The copy loop: few records per transaction, so the kill lands
	// among many of them.
	loopCtx, stopLoop := context.WithCancel(ctx)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for loopCtx.Err() == nil {
			fs := sess.PollRecords(loopCtx, 20)
			if err := sess.Begin(); err != nil {
				t.Errorf("begin: %v", err)
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				sess.Produce(loopCtx, &kgo.Record{Topic: out, Value: append([]byte("out-"), r.Value...)}, nil)
			})
			// An End that fails (a request to the killed coordinator's
			// broker) leaves its outcome unknown: the EndTxn may have
			// reached the coordinator, which prepared the commit before
			// it died, and the next coordinator completes it. End it by
			// aborting, again until that goes through (the client's
			// producer re-initializes, which waits for a prepared
			// transaction to complete), then read where the group
			// stands: the session would rewind to the offsets it last
			// saw committed and copy a committed transaction twice.
			_, err := sess.End(loopCtx, kgo.TryCommit)
			if err == nil {
				continue
			}
			for err != nil && loopCtx.Err() == nil {
				t.Logf("end: %v", err)
				select {
				case <-loopCtx.Done():
				case <-time.After(100 * time.Millisecond): // a new coordinator takes an election
				}
				_, err = sess.End(loopCtx, kgo.TryAbort)
			}
			for loopCtx.Err() == nil {
				at, err := stableCommitted(loopCtx, c, groupID, in)
				if err == nil {
					t.Logf("resuming from the group's committed offset %d", at)
					sess.Client().SetOffsets(map[string]map[int32]kgo.EpochOffset{in: {0: {Epoch: -1, Offset: at}}})
					break
				}
				t.Logf("fetch committed offsets: %v", err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	defer func() {
		stopLoop()
		<-loopDone
		sess.Close()
	}()

	// committed is the group's committed input offset, asked of a new
	// client each time (one made before a kill may keep the dead
	// coordinator).
	committed := func() int64 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		defer qcancel()
		offs, err := kadm.NewClient(cl).FetchOffsets(qctx, groupID)
		if err != nil {
			return -1
		}
		o, _ := offs.Lookup(in, 0)
		return o.At
	}
	waitCommitted := func(atLeast int64) {
		t.Helper()
		for {
			got := committed()
			if got >= atLeast {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("waiting for %d committed input records: %d", atLeast, got)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitCommitted(n / 4)
	c.kill(coord)
	t.Logf("killed broker %d, the coordinator of %s and %s", coord, groupID, txnID)
	waitCommitted(n / 2)
	c.restart(coord)
	waitCommitted(n)
	stopLoop()
	<-loopDone

	if got := readCommittedCluster(t, c, out); !slices.Equal(got, want) {
		t.Errorf("output: %d records, want %d; first difference: %s", len(got), len(want), firstDiff(got, want))
	}
}

// stableCommitted is the group's committed offset of topic's partition 0,
// once no transaction holds it pending (RequireStable), asked of a new
// client (one made before a kill may keep the dead coordinator).
func stableCommitted(ctx context.Context, c *testCluster, group, topic string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(kadm.RequireStable(ctx), group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return 0, err
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok || o.At < 0 {
		return 0, fmt.Errorf("no committed offset of %s[0]", topic)
	}
	return o.At, nil
}
