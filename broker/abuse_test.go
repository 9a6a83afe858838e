package broker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
)

// The abuse suite: what the broker's worst client could send, each case
// named after the limit (and the Kafka property it mirrors) that stops it.
// The short form runs in `go test`; RUNNEL_ABUSE_LONG=1 runs every case at
// the size the attack was first seen at.

func abuseLong() bool { return os.Getenv("RUNNEL_ABUSE_LONG") == "1" }

// abuseSize picks the short or the long form of a case's size.
func abuseSize(short, long int) int {
	if abuseLong() {
		return long
	}
	return short
}

// createTopicsRaw sends one CreateTopics request for name with count
// partitions and returns the topic's error code.
func createTopicsRaw(t *testing.T, addr, name string, count int32) int16 {
	t.Helper()
	cl := newClient(t, addr)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 60000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, count, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].ErrorCode
}

func countPartitionDirs(t *testing.T, dataDir string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "logs"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(entries)
}

// max.broker.partitions: a 51-byte CreateTopics asking for 100,000
// partitions, and a CreatePartitions to 1,048,576, are refused at once
// with INVALID_PARTITIONS and create nothing.
func TestAbuseHugePartitionCounts(t *testing.T) {
	dir := t.TempDir()
	b := testutil.StartBroker(t, broker.Config{DataDir: dir})
	dirs := countPartitionDirs(t, dir)

	if code := createTopicsRaw(t, b.Addr(), "huge", 100_000); code != kerr.InvalidPartitions.Code {
		t.Fatalf("CreateTopics 100000 partitions: %v, want INVALID_PARTITIONS", kerr.ErrorForCode(code))
	}
	if n := countPartitionDirs(t, dir); n != dirs {
		t.Fatalf("partition dirs: %d, had %d before", n, dirs)
	}

	createTopic(t, newAdmin(t, b.Addr()), "small", 1, nil)
	cl := newClient(t, b.Addr())
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 60000
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "small", 1<<20
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != kerr.InvalidPartitions.Code {
		t.Fatalf("CreatePartitions to 1048576: %v, want INVALID_PARTITIONS", kerr.ErrorForCode(code))
	}
	if n := countPartitionDirs(t, dir); n != dirs+1 {
		t.Fatalf("partition dirs: %d, want %d", n, dirs+1)
	}
}

// max.broker.partitions across topics: once the broker is full, more
// partitions get POLICY_VIOLATION, in CreateTopics and CreatePartitions,
// and nothing is half made. The two internal topics hold one partition
// each here, so 40 are left.
func TestAbuseBrokerPartitionCapacity(t *testing.T) {
	dir := t.TempDir()
	b := testutil.StartBroker(t, broker.Config{DataDir: dir, MaxBrokerPartitions: 42, OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	if code := createTopicsRaw(t, b.Addr(), "a", 30); code != 0 {
		t.Fatalf("create a: %v", kerr.ErrorForCode(code))
	}
	dirs := countPartitionDirs(t, dir)
	if code := createTopicsRaw(t, b.Addr(), "b", 11); code != kerr.PolicyViolation.Code {
		t.Fatalf("create b past the limit: %v, want POLICY_VIOLATION", kerr.ErrorForCode(code))
	}
	cl := newClient(t, b.Addr())
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "a", 43
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != kerr.InvalidPartitions.Code {
		t.Fatalf("grow a to 43: %v, want INVALID_PARTITIONS", kerr.ErrorForCode(code))
	}
	req.Topics[0].Count = 35
	req.Topics = append(req.Topics, req.Topics[0])
	req.Topics[1].Topic = "a2"
	if code := createTopicsRaw(t, b.Addr(), "a2", 5); code != 0 {
		t.Fatalf("create a2: %v", kerr.ErrorForCode(code))
	}
	req.Topics[1].Count = 6
	resp, err = req.RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	// a takes the last 5; a2 finds the broker full.
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("grow a to 35: %v", kerr.ErrorForCode(code))
	}
	if code := resp.Topics[1].ErrorCode; code != kerr.PolicyViolation.Code {
		t.Fatalf("grow a2 on a full broker: %v, want POLICY_VIOLATION", kerr.ErrorForCode(code))
	}
	if n := countPartitionDirs(t, dir); n != dirs+10 {
		t.Fatalf("partition dirs: %d, want %d", n, dirs+10)
	}
}

// A restart after a crash in the middle of creating a big topic: every
// partition in metadata opens (its directory made again where a crash left
// it empty or missing), directories no topic owns are removed, and the
// broker listens again promptly. The long form holds 15,000 partitions
// (each keeps a segment open: more would pass the 20,000 descriptors test
// machines allow) and 15,000 stray directories, and must be back within a
// minute.
func TestAbuseRestartWithManyPartitionDirs(t *testing.T) {
	n := abuseSize(1000, 15_000)
	dir := t.TempDir()
	cfg := broker.Config{DataDir: dir, MaxBrokerPartitions: int32(n + 200)}
	b := testutil.StartBroker(t, cfg)
	if code := createTopicsRaw(t, b.Addr(), "wide", int32(n)); code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(dir, "logs")
	for i := 0; i < n; i++ {
		p := filepath.Join(logs, fmt.Sprintf("wide-%d", i))
		switch i % 3 {
		case 0: // the crash came before the directory was made
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
		case 1: // ... or right after
			entries, _ := os.ReadDir(p)
			for _, e := range entries {
				os.Remove(filepath.Join(p, e.Name()))
			}
		}
		// A partition of an earlier, bigger attempt that metadata never
		// recorded.
		if err := os.MkdirAll(filepath.Join(logs, fmt.Sprintf("wide-%d", n+i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	b = testutil.StartBroker(t, cfg)
	took := time.Since(start)
	t.Logf("restart with %d partitions and %d stray dirs: %v", n, n, took)
	if abuseLong() && took > time.Minute {
		t.Errorf("restart took %v", took)
	}
	entries, err := os.ReadDir(logs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var i int
		if _, err := fmt.Sscanf(e.Name(), "wide-%d", &i); err == nil && i >= n {
			t.Fatalf("stray directory %s survived the restart", e.Name())
		}
	}
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("wide"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, i := range []int32{0, 1, 2, int32(n - 1)} {
		if err := cl.ProduceSync(testContext(t), &kgo.Record{Partition: i, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d after restart: %v", i, err)
		}
	}
}
