package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestProduceKeysAndPartitioning(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "kv", "--partitions", "3")

	// Keys pick partitions by murmur2, so each key's records stay in
	// order in one partition. Values may hold the separator again.
	var in strings.Builder
	var want []rec
	for i := range 30 {
		k := fmt.Sprintf("user-%d", i%5)
		v := fmt.Sprintf("event %d: a:b", i)
		fmt.Fprintf(&in, "%s:%s\n", k, v)
		want = append(want, rec{Key: k, Value: v})
	}
	r := mustCLI(t, addr, in.String(), "produce", "kv", "--key-separator", ":")
	if want := "produced 30 records to kv\n"; r.stderr != want {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}

	got := readTopic(t, addr, "kv")
	if len(got) != len(want) {
		t.Fatalf("topic holds %d records, want %d", len(got), len(want))
	}
	partOf := map[string]int32{}
	byKey := map[string][]string{}
	for _, g := range got {
		if p, ok := partOf[g.Key]; ok && p != g.Partition {
			t.Fatalf("key %s in partitions %d and %d", g.Key, p, g.Partition)
		}
		partOf[g.Key] = g.Partition
		byKey[g.Key] = append(byKey[g.Key], g.Value)
	}
	wantByKey := map[string][]string{}
	for _, w := range want {
		wantByKey[w.Key] = append(wantByKey[w.Key], w.Value)
	}
	for k, vs := range wantByKey {
		if !slices.Equal(byKey[k], vs) {
			t.Fatalf("key %s: values %q, want %q in order", k, byKey[k], vs)
		}
	}
}

func TestProduceExactValues(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "exact", "--partitions", "2")

	// Empty lines are empty records, bytes are kept as they are (tabs,
	// carriage returns, UTF-8), and a last line without "\n" counts.
	values := []string{"plain", "", "with\ttab", "crlf\r", "ünïcødé ✓", strings.Repeat("x", 100_000), "last without newline"}
	stdin := strings.Join(values, "\n")
	for _, tc := range []struct{ acks, compression string }{
		{"all", "none"}, {"1", "gzip"}, {"all", "lz4"}, {"1", "zstd"},
		// Last: nothing waits for an acks=0 write, so a later run could
		// overtake it.
		{"0", "snappy"},
	} {
		r := mustCLI(t, addr, stdin, "produce", "exact", "--partition", "1", "--acks", tc.acks, "--compression", tc.compression)
		if want := fmt.Sprintf("produced %d records to exact\n", len(values)); r.stderr != want {
			t.Fatalf("acks %s: stderr %q, want %q", tc.acks, r.stderr, want)
		}
	}
	// acks=0 returns before the broker has the records; readTopic reads
	// to the end offsets it sees, so wait for the full count first.
	var got []rec
	for ctx := testContext(t); ; {
		got = readTopic(t, addr, "exact")
		if len(got) >= 5*len(values) || ctx.Err() != nil {
			break
		}
	}
	if len(got) != 5*len(values) {
		t.Fatalf("topic holds %d records, want %d", len(got), 5*len(values))
	}
	for i, g := range got {
		want := rec{Partition: 1, Offset: int64(i), Key: "<nil>", Value: values[i%len(values)]}
		if g != want {
			t.Fatalf("record %d: %+.60v, want %+.60v", i, g, want)
		}
	}
}

func TestProduceErrors(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "t")

	r := cli(t, addr, "k:v\nno separator\nk:w\n", "produce", "t", "--key-separator", ":")
	if r.code != exitFailure || !strings.Contains(r.stderr, `line 2 has no key separator ":"`) {
		t.Fatalf("missing separator: exit %d, stderr %q", r.code, r.stderr)
	}
	// The line before the bad one was written, and the report says so.
	if !strings.Contains(r.stderr, "produced 1 record to t\n") {
		t.Fatalf("missing separator: stderr %q does not report 1 record", r.stderr)
	}
	if got := readTopic(t, addr, "t"); len(got) != 1 || got[0].Key != "k" || got[0].Value != "v" {
		t.Fatalf("topic holds %+v, want one record k:v", got)
	}

	r = cli(t, addr, "x\n", "produce", "nosuch", "--timeout", "10s")
	if r.code != exitFailure || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("unknown topic: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cli(t, addr, "x\n", "produce", "t", "--partition", "7", "--timeout", "10s")
	if r.code != exitFailure || r.stderr == "" {
		t.Fatalf("missing partition: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestProduceMaxMessageBytes sends a 2 MB record: refused by the client's
// default limit with an error naming --max-message-bytes, accepted with
// the limit raised on a topic that allows it, and refused by the broker
// with an error naming the topic's max.message.bytes where the topic does
// not.
func TestProduceMaxMessageBytes(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "big", "--config", "max.message.bytes=3000000")
	mustCLI(t, addr, "", "topics", "create", "small")
	line := strings.Repeat("x", 2_000_000) + "\n"

	r := cli(t, addr, line, "produce", "big")
	if r.code != exitFailure || !strings.Contains(r.stderr, "over the client's limit of 1048576 (--max-message-bytes") {
		t.Fatalf("2 MB at the client's default limit: exit %d, stderr %q", r.code, r.stderr)
	}

	mustCLI(t, addr, line, "produce", "big", "--max-message-bytes", "4000000")
	if got := readTopic(t, addr, "big"); len(got) != 1 || len(got[0].Value) != 2_000_000 {
		t.Fatalf("topic big holds %d records", len(got))
	}

	r = cli(t, addr, line, "produce", "small", "--max-message-bytes", "4000000")
	if r.code != exitFailure || !strings.Contains(r.stderr, "the broker refused 2000000 bytes as too large") ||
		!strings.Contains(r.stderr, "runnel topics alter small --config max.message.bytes=N") {
		t.Fatalf("2 MB over the broker's limit: exit %d, stderr %q", r.code, r.stderr)
	}

	if r := cli(t, addr, "", "produce", "big", "--max-message-bytes", "100"); r.code != exitUsage {
		t.Fatalf("--max-message-bytes 100: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestMissingTopicSaysWhatToDo produces to, consumes from and describes a
// topic that does not exist: each error says how to create it.
func TestMissingTopicSaysWhatToDo(t *testing.T) {
	b := startBroker(t)
	want := "topic nosuch does not exist (UNKNOWN_TOPIC_OR_PARTITION: This server does not host this topic-partition.); create it with `runnel topics create nosuch`\n"
	for _, args := range [][]string{
		{"produce", "nosuch", "--timeout", "10s"},
		{"consume", "nosuch", "--timeout", "1s"},
		{"topics", "describe", "nosuch"},
	} {
		r := cli(t, b.Addr(), "x\n", args...)
		if r.code != exitFailure || !strings.HasSuffix(r.stderr, want) {
			t.Errorf("runnel %s: exit %d stderr %q, want it to end with %q", strings.Join(args, " "), r.code, r.stderr, want)
		}
	}
}
