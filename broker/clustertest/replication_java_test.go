package clustertest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// verifiableEvent is one line of Kafka's VerifiableProducer: a JSON
// object per send outcome.
type verifiableEvent struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Exception string `json:"exception"`
	Message   string `json:"message"`
	Acked     int64  `json:"acked"`
	Sent      int64  `json:"sent"`
}

// SCENARIOS.md 8 with Apache Kafka's own tools: the Java producer
// (VerifiableProducer, the console producer that prints every
// acknowledgement: idempotent, acks=all) writes to a topic of
// replication factor 3 and min.insync.replicas 2; its partition's leader
// is SIGKILLed mid-stream, another replica takes over, and the killed
// broker comes back. The Java ConsoleConsumer then reads the partition:
// every acknowledged value is there once, at the offset its
// acknowledgement named.
func TestReplicationLeaderKillJavaTools(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	_, tool := kafkaHome(t)
	c := startCluster(t, 3, 3)
	cl := c.client()
	adm := kadm.NewClient(cl)
	const topic, total = "s8java", 3000
	createReplicated(t, cl, topic, "2")
	leader, _, _ := waitPartitionState(t, adm, topic, "a leader", func(l int32, isr []int32) bool { return l > 0 && len(isr) == 3 })

	props := filepath.Join(t.TempDir(), "producer.properties")
	// VerifiableProducer sets retries=0 unless told otherwise.
	// Idempotent with retries for as long as the failover takes, and
	// metadata refreshed soon after the leader is lost.
	if err := os.WriteFile(props, []byte("enable.idempotence=true\nretries=2147483647\ndelivery.timeout.ms=120000\nrequest.timeout.ms=5000\nretry.backoff.ms=100\nmetadata.max.age.ms=1000\nlinger.ms=5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// JVM starts, the failover and 10 s of sends: more than testContext.
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, "org.apache.kafka.tools.VerifiableProducer",
		"--bootstrap-server", strings.Join(c.seeds(), ","), "--topic", topic,
		"--max-messages", strconv.Itoa(total), "--throughput", "300", "--acks", "-1",
		"--command-config", props)
	cmd.Env = append(cmd.Environ(), "KAFKA_OPTS=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := map[string]int64{} // value -> offset
	var sendErrs []string
	var toolData verifiableEvent
	var other []string // lines that are not send outcomes, for failures
	read := make(chan error, 1)
	exited := make(chan struct{}) // closed once stdout is done
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev verifiableEvent
			err := json.Unmarshal(sc.Bytes(), &ev)
			mu.Lock()
			if len(other) < 50 && (err != nil || ev.Name != "producer_send_success") {
				other = append(other, sc.Text())
			}
			switch ev.Name {
			case "producer_send_success":
				if prev, dup := acked[ev.Value]; dup {
					sendErrs = append(sendErrs, fmt.Sprintf("value %s acknowledged twice, at %d and %d", ev.Value, prev, ev.Offset))
				}
				acked[ev.Value] = ev.Offset
			case "producer_send_error":
				sendErrs = append(sendErrs, ev.Exception+": "+ev.Message)
			case "tool_data":
				toolData = ev
			}
			mu.Unlock()
		}
		read <- sc.Err()
	}()
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}

	// A third of the way in, the leader dies.
	deadline := time.Now().Add(120 * time.Second)
	for ackedCount() < total/3 {
		select {
		case <-exited:
			deadline = time.Time{} // the producer is gone: fail now
		default:
		}
		if time.Now().After(deadline) {
			mu.Lock()
			lines := strings.Join(other, "\n")
			mu.Unlock()
			t.Fatalf("the Java producer has %d acknowledged, want %d\nstdout:\n%s\nstderr:\n%s", ackedCount(), total/3, lines, stderr.String())
		}
		time.Sleep(10 * time.Millisecond) // polling the producer's output
	}
	c.kill(leader)
	atKill := ackedCount()
	waitPartitionState(t, adm, topic, "a new leader", func(l int32, _ []int32) bool { return l > 0 && l != leader })
	c.restart(leader)

	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("VerifiableProducer: %v\n%s", err, stderr.String())
	}
	t.Logf("VerifiableProducer: %d acknowledged (%d at the kill of broker %d), tool data %+v", len(acked), atKill, leader, toolData)
	if len(sendErrs) > 0 {
		t.Fatalf("the Java producer failed sends an acks=all, idempotent producer must not fail across one broker's loss: %v", sendErrs[:min(5, len(sendErrs))])
	}
	if len(acked) != total {
		t.Fatalf("%d of %d sends acknowledged", len(acked), total)
	}

	// Apache Kafka's ConsoleConsumer reads the whole partition back.
	printed := javaTool(t, ctx, tool, "", "org.apache.kafka.tools.consumer.ConsoleConsumer",
		"--bootstrap-server", strings.Join(c.seeds(), ","), "--topic", topic, "--from-beginning",
		"--formatter-property", "print.offset=true", "--max-messages", strconv.Itoa(total), "--timeout-ms", "60000")
	got := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSuffix(printed, "\n"), "\n") {
		// "Offset:O<TAB>value"
		off, value, ok := strings.Cut(strings.TrimPrefix(line, "Offset:"), "\t")
		o, err := strconv.ParseInt(off, 10, 64)
		if !ok || err != nil {
			t.Fatalf("ConsoleConsumer printed %q", line)
		}
		if prev, dup := got[value]; dup {
			t.Fatalf("value %s read twice, at %d and %d", value, prev, o)
		}
		got[value] = o
	}
	for value, o := range acked {
		r, ok := got[value]
		if !ok {
			t.Fatalf("acknowledged value %s (offset %d) lost", value, o)
		}
		if r != o {
			t.Fatalf("acknowledged value %s at offset %d, read at %d", value, o, r)
		}
	}
	if len(got) != total {
		t.Fatalf("read %d values, want %d", len(got), total)
	}
}
