package broker_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// max.broker.partitions under concurrency: CreateTopics racing each
// other, which together ask for more than the broker may hold. Exactly
// as many succeed as fit; the others get POLICY_VIOLATION and leave
// nothing behind.
func TestAbusePartitionLimitConcurrentCreates(t *testing.T) {
	dir := t.TempDir()
	// The two internal topics hold one partition each: 40 are left,
	// room for 4 of the 10 topics of 10 partitions.
	b := testutil.StartBroker(t, broker.Config{DataDir: dir, MaxBrokerPartitions: 42, OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	const topics = 10
	var start sync.WaitGroup
	start.Add(1)
	codes := make([]int16, topics)
	var wg sync.WaitGroup
	for i := range topics {
		cl := newClient(t, b.Addr())
		// Connect first, so the requests leave together.
		if err := cl.Ping(testContext(t)); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 60000
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("race-%d", i), 10, 1
			req.Topics = append(req.Topics, rt)
			start.Wait()
			resp, err := req.RequestWith(testContext(t), cl)
			if err != nil {
				t.Error(err)
				return
			}
			codes[i] = resp.Topics[0].ErrorCode
		}()
	}
	start.Done()
	wg.Wait()
	ok := 0
	for i, code := range codes {
		switch code {
		case 0:
			ok++
		case kerr.PolicyViolation.Code:
		default:
			t.Errorf("race-%d: %v, want success or POLICY_VIOLATION", i, kerr.ErrorForCode(code))
		}
	}
	if ok != 4 {
		t.Fatalf("%d of %d racing topics of 10 partitions were created with room for 4", ok, topics)
	}
	md, err := newAdmin(t, b.Addr()).Metadata(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, td := range md.Topics {
		total += len(td.Partitions)
	}
	if total != 42 {
		t.Fatalf("the broker holds %d partitions, max.broker.partitions is 42", total)
	}
	if n := countPartitionDirs(t, dir); n != 42 {
		t.Fatalf("%d partition dirs for 42 partitions", n)
	}
}
