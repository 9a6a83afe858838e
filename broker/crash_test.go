package broker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// The test binary doubles as a broker process, so crash tests can SIGKILL
// a real broker without building the command first.
const childEnv = "RUNNEL_TEST_BROKER_CHILD"

func TestMain(m *testing.M) {
	code := testutil.RunChildOrTests(m, childEnv, runChildBroker)
	if code == 0 && os.Getenv(childEnv) == "" {
		// Every goroutine a broker started must be gone once the tests
		// closed their brokers and clients.
		// kafka-go's default transport and sarama's metrics registry
		// keep package-level goroutines by design.
		if err := goleak.Find(
			goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
			goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*conn).run"),
			goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// runChildBroker runs a broker on dir until SIGTERM, printing its address
// as "ADDR host:port" once it listens.
func runChildBroker(dir string) int {
	listen := os.Getenv(childEnv + "_LISTEN")
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	cfg := broker.Config{DataDir: dir, Listen: listen}
	if os.Getenv(childEnv+"_TXN") != "" {
		// Transaction tests: their small internal topics and frequent
		// timeout checks.
		cfg = txnBrokerConfig()
		cfg.DataDir, cfg.Listen = dir, listen
	}
	if v, err := strconv.ParseFloat(os.Getenv(childEnv+"_CLEANER_IO"), 64); err == nil {
		cfg.LogCleanerIOBytesPerSecond, cfg.LogCleanerBackoff = v, 10*time.Millisecond // compaction_test.go
	}
	return testutil.ServeBroker(cfg)
}

// child is a broker running in a subprocess.
type child struct {
	*testutil.Child
	addr string
}

func startChild(t *testing.T, dir, listen string, env ...string) *child {
	t.Helper()
	addrCh := make(chan string, 1)
	c := &child{Child: testutil.StartChild(t, append([]string{childEnv + "=" + dir, childEnv + "_LISTEN=" + listen}, env...), func(line string) {
		if a, ok := strings.CutPrefix(line, "ADDR "); ok {
			addrCh <- a
		}
	})}
	select {
	case c.addr = <-addrCh:
	case <-c.Done():
		t.Fatalf("child broker exited before listening: %v", c.Err())
	case <-time.After(30 * time.Second):
		t.Fatal("child broker did not start")
	}
	return c
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	c.Signal(t, syscall.SIGKILL)
}

// A broker is SIGKILLed during heavy acks=all produce; after a
// restart every acknowledged record is readable, and what is readable is
// only whole records that were sent.
func TestCrashKeepsAcknowledgedRecords(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir, "127.0.0.1:0")
	adm := newAdmin(t, c.addr)
	createTopic(t, adm, "crash", 3, map[string]*string{"segment.bytes": ptr("262144")})

	var mu sync.Mutex
	acked := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	const producers = 4
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.DefaultProduceTopic("crash"),
				kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(0), kgo.RequestRetries(0),
				kgo.RecordDeliveryTimeout(20*time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for i := 0; ctx.Err() == nil; i++ {
				v := fmt.Sprintf("p%d-%07d-%s", p, i, strings.Repeat("x", 100))
				cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 97)), Value: []byte(v)}, func(r *kgo.Record, err error) {
					if err == nil {
						mu.Lock()
						acked[string(r.Value)] = true
						mu.Unlock()
					}
				})
			}
		}()
	}
	// Kill once a good number of records are acknowledged.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d records acknowledged before the deadline", n)
		}
		time.Sleep(5 * time.Millisecond) // polling the producers' progress
	}
	c.kill(t)
	cancel()
	wg.Wait()
	mu.Lock()
	ackedCopy := make(map[string]bool, len(acked))
	for k := range acked {
		ackedCopy[k] = true
	}
	mu.Unlock()

	c2 := startChild(t, dir, "127.0.0.1:0")
	adm2 := newAdmin(t, c2.addr)
	ends, err := adm2.ListEndOffsets(testContext(t), "crash")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
	if total < len(ackedCopy) {
		t.Fatalf("log holds %d records after restart, %d were acknowledged", total, len(ackedCopy))
	}
	got := consumeAll(t, c2.addr, "crash", total)
	seen := map[string]bool{}
	for _, r := range got {
		v := string(r.Value)
		if !strings.HasPrefix(v, "p") || !strings.HasSuffix(v, strings.Repeat("x", 100)) {
			t.Fatalf("garbled record at %s[%d]@%d: %q", r.Topic, r.Partition, r.Offset, v)
		}
		if seen[v] {
			t.Fatalf("record %q read twice", v[:12])
		}
		seen[v] = true
	}
	var missing []string
	for v := range ackedCopy {
		if !seen[v] {
			missing = append(missing, v[:12])
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged records lost after SIGKILL, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	t.Logf("acknowledged %d, recovered %d records", len(ackedCopy), total)

	// The restarted broker takes writes.
	prod := newClient(t, c2.addr, kgo.DefaultProduceTopic("crash"))
	if err := prod.ProduceSync(testContext(t), &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// A torn tail — bytes of a batch that never finished — in the newest
// segment is cut off at the last good batch on restart.
func TestTornTailTruncated(t *testing.T) {
	dir := t.TempDir()
	b, err := broker.Start(context.Background(), broker.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "torn", 1, nil)
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("torn"))
	for i := 0; i < 10; i++ {
		if err := prod.ProduceSync(testContext(t), &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	prod.Close()
	addr := b.Addr()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "logs", "torn-0", "*.log"))
	if len(segs) == 0 {
		t.Fatal("no segment files found")
	}
	sort.Strings(segs)
	last := segs[len(segs)-1]
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Half a batch header: a plausible length and garbage.
	f.Write([]byte{0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 200, 1, 2, 3, 4, 2, 9, 9})
	f.Close()
	// Recovery runs when the log was not closed cleanly; remove any clean
	// marker by simulating a crash: start in-process on the same dir.
	for _, m := range []string{".clean", "clean-shutdown", ".clean_shutdown"} {
		os.Remove(filepath.Join(dir, "logs", "torn-0", m))
	}
	b2 := testutil.StartBroker(t, broker.Config{DataDir: dir, Listen: addr})
	got := consumeAll(t, b2.Addr(), "torn", 10)
	for i, r := range got {
		if string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("record %d = %q", i, r.Value)
		}
	}
	prod2 := newClient(t, b2.Addr(), kgo.DefaultProduceTopic("torn"))
	r := &kgo.Record{Value: []byte("10")}
	if err := prod2.ProduceSync(testContext(t), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if r.Offset != 10 {
		t.Fatalf("first record after recovery at offset %d, want 10", r.Offset)
	}
}
