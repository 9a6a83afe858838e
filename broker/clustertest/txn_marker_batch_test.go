package clustertest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
)

// Transaction markers for another broker go in batches: four transactions
// committed at once, each on the same eight partitions led by a broker
// other than their coordinator's, need 32 markers there, which arrive in
// far fewer WriteTxnMarkers requests (one per partition per transaction
// before batching), and every transaction is complete on every partition.
func TestTxnMarkersBatchedPerBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	ports := reservePorts(t, 6)
	var q []string
	for i := range 3 {
		q = append(q, fmt.Sprintf("%d@%s", i+1, ports[2*i+1]))
	}
	brokers := make([]*broker.Broker, 3)
	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			var err error
			brokers[i], err = broker.Start(context.Background(), broker.Config{
				NodeID: int32(i + 1), DataDir: t.TempDir(), Listen: ports[2*i], MetricsListen: "127.0.0.1:0",
				ControllerQuorum: strings.Join(q, ","), BrokerSessionTimeout: testSessionTimeout,
				BrokerHeartbeatInterval: testHeartbeat, ReplicaLagTimeMax: testReplicaLag,
				OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1,
			})
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, b := range brokers {
			if b != nil {
				b.Close()
			}
		}
	}()
	seeds := []string{ports[0], ports[2], ports[4]}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// One __transaction_state partition: every transactional id has the
	// same coordinator.
	const txns, parts = 4, 8
	var ids []string
	for i := range txns {
		ids = append(ids, fmt.Sprintf("batched-%d", i))
	}
	var coord int32 = -1
	for deadline := time.Now().Add(60 * time.Second); coord < 0; {
		tcs := adm.FindTxnCoordinators(ctx, ids[0])
		if c, ok := tcs[ids[0]]; ok && c.Err == nil {
			coord = c.NodeID
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no transaction coordinator: %+v", tcs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	target := coord%3 + 1 // another broker leads every partition
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "batched", -1, -1
	for p := range int32(parts) {
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = p, []int32{target}
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	}
	req.Topics = append(req.Topics, rt)
	if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v %v", resp, err)
	}
	waitTopicState(t, adm, "batched", "leaders", func(p kadm.PartitionDetail) bool { return p.Leader == target })

	producers := make([]*kgo.Client, txns)
	for i, id := range ids {
		producers[i], err = kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.TransactionalID(id),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("batched"))
		if err != nil {
			t.Fatal(err)
		}
		defer producers[i].Close()
		// Initialize the producer id before counting.
		if err := producers[i].BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := range int32(parts) {
			if err := producers[i].ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(id)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	metrics := brokers[target-1].MetricsAddr()
	before := requestCounts(t, metrics)["WriteTxnMarkers"]
	var wg sync.WaitGroup
	endErrs := make([]error, txns)
	for i, pr := range producers {
		wg.Add(1)
		go func() { defer wg.Done(); endErrs[i] = pr.EndTransaction(ctx, kgo.TryCommit) }()
	}
	wg.Wait()
	for i, err := range endErrs {
		if err != nil {
			t.Fatalf("commit %s: %v", ids[i], err)
		}
	}
	// Every partition holds four records and four markers once the
	// markers are in: the last stable offset is the end.
	for deadline := time.Now().Add(60 * time.Second); ; {
		lso, err := adm.ListCommittedOffsets(ctx, "batched")
		done := err == nil
		lso.Each(func(o kadm.ListedOffset) { done = done && o.Err == nil && o.Offset == 2*txns })
		if done && len(lso["batched"]) == parts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transactions not complete: %+v %v", lso, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sent := requestCounts(t, metrics)["WriteTxnMarkers"] - before
	t.Logf("%d markers for broker %d (coordinator %d) in %v WriteTxnMarkers requests", txns*parts, target, coord, sent)
	if sent < 1 || sent > txns*parts/4 {
		t.Fatalf("%v WriteTxnMarkers requests for %d markers", sent, txns*parts)
	}
}
