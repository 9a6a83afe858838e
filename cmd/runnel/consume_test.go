package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// seed produces records with keys k0..k(n-1) and values v0..v(n-1) to one
// partition and returns nothing but failures.
func seed(t *testing.T, addr, topic string, partition int32, from, n int) {
	t.Helper()
	cl := testClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	var rs []*kgo.Record
	for i := from; i < from+n; i++ {
		rs = append(rs, &kgo.Record{Partition: partition, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := cl.ProduceSync(testContext(t), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func TestConsumeFormats(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "c", "--partitions", "2")
	seed(t, addr, "c", 0, 0, 3)
	seed(t, addr, "c", 1, 3, 2)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--partition", "0", "--from-beginning", "--max-messages", "3"}, "v0\nv1\nv2\n"},
		{[]string{"--partition", "0", "--from-beginning", "--max-messages", "2"}, "v0\nv1\n"},
		{[]string{"--partition", "0", "--from-beginning", "--max-messages", "3", "--print-key"}, "k0\tv0\nk1\tv1\nk2\tv2\n"},
		{[]string{"--partition", "1", "--from-beginning", "--max-messages", "2", "--print-key", "--print-offset"}, "1:0\tk3\tv3\n1:1\tk4\tv4\n"},
		{[]string{"--partition", "0", "--offset", "1", "--max-messages", "2", "--print-offset"}, "0:1\tv1\n0:2\tv2\n"},
	} {
		args := append([]string{"consume", "c", "--timeout", "30s"}, tc.args...)
		r := mustCLI(t, addr, "", args...)
		if r.stdout != tc.want {
			t.Errorf("runnel %s:\n got %q\nwant %q", strings.Join(args, " "), r.stdout, tc.want)
		}
		if want := fmt.Sprintf("consumed %d records from c\n", strings.Count(tc.want, "\n")); r.stderr != want {
			t.Errorf("runnel %s: stderr %q, want %q", strings.Join(args, " "), r.stderr, want)
		}
	}

	// Every partition: each partition's records in order, interleaved
	// in any way.
	r := mustCLI(t, addr, "", "consume", "c", "--from-beginning", "--max-messages", "5", "--print-offset", "--print-key", "--timeout", "30s")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	var p0, p1 []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "0:"):
			p0 = append(p0, l)
		case strings.HasPrefix(l, "1:"):
			p1 = append(p1, l)
		default:
			t.Fatalf("line %q is from no partition", l)
		}
	}
	if want := []string{"0:0\tk0\tv0", "0:1\tk1\tv1", "0:2\tk2\tv2"}; !slices.Equal(p0, want) {
		t.Fatalf("partition 0 lines %q, want %q", p0, want)
	}
	if want := []string{"1:0\tk3\tv3", "1:1\tk4\tv4"}; !slices.Equal(p1, want) {
		t.Fatalf("partition 1 lines %q, want %q", p1, want)
	}

	// --offset without --partition applies to every partition.
	r = mustCLI(t, addr, "", "consume", "c", "--offset", "1", "--max-messages", "3", "--timeout", "30s")
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	slices.Sort(got)
	if want := []string{"v1", "v2", "v4"}; !slices.Equal(got, want) {
		t.Fatalf("--offset 1 on every partition printed %q, want %q", got, want)
	}
}

func TestConsumeTimeouts(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "c")
	seed(t, addr, "c", 0, 0, 2)

	// Without --max-messages, an idle --timeout is the normal end.
	r := mustCLI(t, addr, "", "consume", "c", "--from-beginning", "--timeout", "500ms")
	if r.stdout != "v0\nv1\n" {
		t.Fatalf("printed %q, want %q", r.stdout, "v0\nv1\n")
	}
	// Starting at the end, the old records are not printed.
	r = mustCLI(t, addr, "", "consume", "c", "--timeout", "500ms")
	if r.stdout != "" || r.stderr != "consumed 0 records from c\n" {
		t.Fatalf("from the end: stdout %q stderr %q, want nothing and 0 records", r.stdout, r.stderr)
	}
	// An --offset past the end waits there, with or without --partition.
	for _, args := range [][]string{
		{"consume", "c", "--offset", "100", "--timeout", "500ms"},
		{"consume", "c", "--offset", "100", "--partition", "0", "--timeout", "500ms"},
	} {
		r = mustCLI(t, addr, "", args...)
		if r.stdout != "" {
			t.Fatalf("runnel %s printed %q, want nothing", strings.Join(args, " "), r.stdout)
		}
	}
	// Fewer records than --max-messages before --timeout fails.
	r = cli(t, addr, "", "consume", "c", "--from-beginning", "--max-messages", "5", "--timeout", "500ms")
	if r.code != exitFailure || r.stdout != "v0\nv1\n" || !strings.Contains(r.stderr, "got 2 of 5") {
		t.Fatalf("short read: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestConsumeFromEndSeesNewRecords(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "c")
	seed(t, addr, "c", 0, 0, 3) // old: v0..v2

	ctx := testContext(t)
	done := make(chan result, 1)
	go func() {
		done <- cliContext(ctx, addr, "", "consume", "c", "--max-messages", "2", "--print-offset")
	}()
	// The consumer's end offset is resolved at some moment after it
	// starts; keep appending until it has printed two records, which must
	// then be two consecutive new ones.
	var r result
	for i := 3; ; i++ {
		seed(t, addr, "c", 0, i, 1)
		select {
		case r = <-done:
		default:
			if ctx.Err() != nil {
				t.Fatal("consumer printed nothing before the deadline")
			}
			continue
		}
		break
	}
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var o1, o2 int
	var v1, v2 string
	if _, err := fmt.Sscanf(r.stdout, "0:%d\t%s\n0:%d\t%s\n", &o1, &v1, &o2, &v2); err != nil {
		t.Fatalf("output %q: %v", r.stdout, err)
	}
	if o1 < 3 || o2 != o1+1 || v1 != fmt.Sprintf("v%d", o1) || v2 != fmt.Sprintf("v%d", o2) {
		t.Fatalf("from the end printed %q, want two consecutive records from offset 3 on", r.stdout)
	}
}

func TestConsumeErrors(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "c", "--partitions", "2")

	r := cli(t, addr, "", "consume", "nosuch", "--timeout", "1s")
	if r.code != exitFailure || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("unknown topic: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cli(t, addr, "", "consume", "c", "--partition", "2", "--timeout", "1s")
	if r.code != exitFailure || !strings.Contains(r.stderr, "topic c has 2 partitions, no partition 2") {
		t.Fatalf("missing partition: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestConsumeInterrupted(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "c")
	seed(t, addr, "c", 0, 0, 1)

	// Cancelling the context is what SIGINT does: the consumer stops,
	// prints what it had and exits 0.
	ctx, cancel := context.WithCancel(testContext(t))
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--brokers", addr, "consume", "c", "--from-beginning"}, env{
			stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
		})
	}()
	deadline := testContext(t)
	if !out.waitFor(deadline, func(s string) bool { return s == "v0\n" }) {
		t.Fatalf("consumer printed %q before the deadline; stderr %q", out.String(), errOut.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 || errOut.String() != "consumed 1 record from c\n" {
			t.Fatalf("interrupted consumer: exit %d, stderr %q", code, errOut.String())
		}
	case <-deadline.Done():
		t.Fatal("consumer did not stop after the interrupt")
	}
}
