package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// pipelineEnv, set to a broker address, makes TestTxnPipelineChild run
// the consume-transform-produce pipeline of
// TestTxnPipelineExactlyOnceUnderCrashes instead of
// skipping; that test re-executes the test binary with it.
const pipelineEnv = "RUNNEL_TEST_TXN_PIPELINE"

const (
	pipeIn    = "pipeline-in"
	pipeOut   = "pipeline-out"
	pipeGroup = "pipeline"
)

// TestTxnPipelineChild is the pipeline process of
// TestTxnPipelineExactlyOnceUnderCrashes: a franz-go
// GroupTransactSession that reads pipeIn and writes each record, with
// "out-" before its value, to the same partition of pipeOut, committing
// output and input offsets in one transaction per poll. It runs until it
// is killed.
func TestTxnPipelineChild(t *testing.T) {
	addr := os.Getenv(pipelineEnv)
	if addr == "" {
		t.Skip("run as a subprocess by TestTxnPipelineExactlyOnceUnderCrashes")
	}
	// Initialise the transactional id before consuming, as Kafka
	// Streams' initTransactions does: it fences the killed predecessor
	// and aborts its open transaction, whose pending offsets would
	// otherwise hold the RequireStable offset fetch back until the
	// transaction timed out. (franz-go initialises lazily, on the first
	// produce.)
	boot, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID = kmsg.StringPtr("pipeline")
	init.TransactionTimeoutMillis = 10_000
	for {
		resp, err := init.RequestWith(context.Background(), boot)
		if err == nil && resp.ErrorCode == 0 {
			break
		}
		fmt.Fprintf(os.Stderr, "init producer id: %v %v\n", err, resp)
	}
	boot.Close()
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(addr),
		kgo.TransactionalID("pipeline"),
		kgo.TransactionTimeout(10*time.Second),
		kgo.ConsumerGroup(pipeGroup),
		kgo.ConsumeTopics(pipeIn),
		kgo.InstanceID("pipeline-instance"), // a restart takes the place of the killed member at once
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, nil)),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fmt.Println("PIPELINE STARTED")
	for {
		// Few records per transaction, so the pipeline runs through
		// many transactions and the kills land in the middle of work.
		fs := sess.PollRecords(ctx, 5)
		fs.EachError(func(topic string, p int32, err error) { fmt.Fprintf(os.Stderr, "fetch %s[%d]: %v\n", topic, p, err) })
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Topic: pipeOut, Partition: r.Partition, Key: r.Key, Value: append([]byte("out-"), r.Value...)}, nil)
		})
		if _, err := sess.End(ctx, kgo.TryCommit); err != nil {
			fmt.Fprintf(os.Stderr, "end: %v\n", err)
		}
	}
}

// startPipeline runs TestTxnPipelineChild in a subprocess and returns it
// once it has started.
func startPipeline(t *testing.T, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTxnPipelineChild$")
	cmd.Env = append(os.Environ(), pipelineEnv+"="+addr)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && sc.Text() == "PIPELINE STARTED" {
				ok = true
				started <- true
			}
		}
		if !ok {
			started <- false
		}
	}()
	select {
	case ok := <-started:
		if !ok {
			cmd.Wait()
			t.Fatal("pipeline exited before starting")
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("pipeline did not start")
	}
	return cmd
}

func killPipeline(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

// A consume-transform-produce pipeline (franz-go
// GroupTransactSession) in a subprocess is SIGKILLed at random moments,
// more than 20 times, and restarted; its read_committed output equals the
// output of one clean run, record for record: no duplicate, no gap.
func TestTxnPipelineExactlyOnceUnderCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a subprocess many times")
	}
	cfg := txnBrokerConfig()
	b := testutil.StartBroker(t, cfg)
	addr := b.Addr()
	adm := newAdmin(t, addr)
	createTopic(t, adm, pipeIn, 3, nil)
	createTopic(t, adm, pipeOut, 3, nil)
	// The kill loop and the final catch-up take minutes on a busy
	// machine: longer than testContext allows, and a context that ran
	// out would make every offset fetch below read as 0.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	const n = 30000
	prod := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(512))
	want := map[int32][]string{}
	var recs []*kgo.Record
	for i := range n {
		p := int32(i % 3)
		v := fmt.Sprintf("%05d", i)
		recs = append(recs, &kgo.Record{Topic: pipeIn, Partition: p, Value: []byte(v)})
		want[p] = append(want[p], "out-"+v)
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	committedOffsets := func() int64 {
		octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
		defer ocancel()
		os, err := adm.FetchOffsets(octx, pipeGroup)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("fetch offsets: %v", err)
			}
			return 0
		}
		var total int64
		os.Each(func(o kadm.OffsetResponse) { total += o.At })
		return total
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	// Kill at random moments: during the join, mid-transaction, or
	// while a commit's markers are being written. Only kills before the
	// input is all processed count.
	const kills = 22
	midWork := 0
	for i := 0; midWork < kills; i++ {
		cmd := startPipeline(t, addr)
		d := time.Duration(50+rng.IntN(500)) * time.Millisecond
		timer := time.NewTimer(d)
		<-timer.C // the random kill point itself, not a wait for an event
		killPipeline(t, cmd)
		done := committedOffsets()
		t.Logf("kill %d after %v: %d input records committed", i+1, d, done)
		if done == n {
			break
		}
		midWork++
	}
	if midWork < 20 {
		t.Fatalf("only %d kills landed before the pipeline finished; slow it down", midWork)
	}

	cmd := startPipeline(t, addr)
	testutil.Eventually(t, 120*time.Second, func() (bool, string) {
		got := committedOffsets()
		return got == n, fmt.Sprintf("the pipeline to commit all %d input offsets: %d", n, got)
	})
	killPipeline(t, cmd)

	got := readAll(t, addr, pipeOut, true)
	for p := int32(0); p < 3; p++ {
		if !slices.Equal(got[p], want[p]) {
			t.Errorf("partition %d: %d records, want %d; first difference: %s", p, len(got[p]), len(want[p]), firstDiff(got[p], want[p]))
		}
	}
}
