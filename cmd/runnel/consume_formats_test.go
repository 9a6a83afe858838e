package main

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceRecords writes records with franz-go and fails on an error.
func produceRecords(t *testing.T, addr string, recs ...*kgo.Record) {
	t.Helper()
	cl := testClient(t, addr)
	if err := cl.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// windowedKey is a key as stream's windowed serde writes it.
func windowedKey(k string, start, end int64) []byte {
	return append(append([]byte(k), be64(uint64(start))...), be64(uint64(end))...)
}

// TestConsumeDecodes prints what a pipeline writes: numbers, windowed keys,
// timestamps, partitions and headers, and a --format template; a record
// that does not decode stops with an error saying which flag to change.
func TestConsumeDecodes(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "counts")
	ts := time.UnixMilli(1_700_000_000_123)
	produceRecords(t, addr,
		&kgo.Record{Topic: "counts", Key: windowedKey("alice", 60_000, 120_000), Value: be64(3), Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}},
		&kgo.Record{Topic: "counts", Key: windowedKey("bob", 0, 60_000), Value: be64(math.Float64bits(1.5)), Timestamp: ts},
		&kgo.Record{Topic: "counts", Value: []byte(`{"n":1}`), Timestamp: ts},
	)
	read := func(args ...string) result {
		t.Helper()
		return mustCLI(t, addr, "", append([]string{"consume", "counts", "--timeout", "30s"}, args...)...)
	}

	r := read("--from-beginning", "--max-messages", "1", "--key-format", "windowed(string)", "--value-format", "int64",
		"--print-key", "--print-timestamp", "--print-partition", "--print-headers")
	if want := "CreateTime:1700000000123\t0\torigin:test\t[alice@60000/120000]\t3\n"; r.stdout != want {
		t.Fatalf("printed %q, want %q", r.stdout, want)
	}
	if r.stderr != "consumed 1 record from counts\n" {
		t.Fatalf("stderr %q", r.stderr)
	}
	r = read("--offset", "1", "--max-messages", "1", "--key-format", "windowed(bytes)", "--value-format", "double", "--print-key", "--print-offset")
	if want := "0:1\t[626f62@0/60000]\t1.5\n"; r.stdout != want {
		t.Fatalf("printed %q, want %q", r.stdout, want)
	}
	r = read("--offset", "2", "--max-messages", "1", "--value-format", "json", "--format", `%t/%p/%o %k %v %h %K %S`)
	if want := "counts/0/2 null {\"n\":1} NO_HEADERS 0 7\n"; r.stdout != want {
		t.Fatalf("printed %q, want %q", r.stdout, want)
	}

	r = cli(t, addr, "", "consume", "counts", "--from-beginning", "--value-format", "int32", "--max-messages", "1", "--timeout", "30s")
	if want := "runnel consume: partition 0 offset 0: value not an int32 (8 bytes); choose another --value-format\n"; r.code != exitFailure || !strings.HasSuffix(r.stderr, want) {
		t.Fatalf("a value that does not decode: exit %d stderr %q, want %q", r.code, r.stderr, want)
	}
	for _, args := range [][]string{
		{"--key-format", "avro"},
		{"--value-format", "windowed(nope)"},
		{"--format", "%x"},
		{"--isolation-level", "snapshot"},
		{"--group", "g", "--partition", "0"},
	} {
		if r := cli(t, addr, "", append([]string{"consume", "counts"}, args...)...); r.code != exitUsage {
			t.Errorf("consume %s: exit %d stderr %q, want a usage error", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

// TestConsumeIsolationLevel reads a topic holding an aborted transaction:
// read_committed, the default, skips it; read_uncommitted prints it.
func TestConsumeIsolationLevel(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "tx")
	ctx := testContext(t)
	p := testClient(t, addr, kgo.TransactionalID("cli-test"), kgo.DefaultProduceTopic("tx"))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("aborted")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	produceRecords(t, addr, &kgo.Record{Topic: "tx", Value: []byte("committed")})

	r := mustCLI(t, addr, "", "consume", "tx", "--from-beginning", "--max-messages", "1", "--timeout", "30s")
	if r.stdout != "committed\n" {
		t.Fatalf("read_committed printed %q", r.stdout)
	}
	r = mustCLI(t, addr, "", "consume", "tx", "--from-beginning", "--max-messages", "2", "--timeout", "30s", "--isolation-level", "read_uncommitted")
	if r.stdout != "aborted\ncommitted\n" {
		t.Fatalf("read_uncommitted printed %q", r.stdout)
	}
}

// TestConsumeGroup consumes as a group member: a second run goes on where
// the first stopped, and the group's offsets show in groups describe.
func TestConsumeGroup(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "jobs")
	mustCLI(t, addr, "a\nb\nc\n", "produce", "jobs")
	r := mustCLI(t, addr, "", "consume", "jobs", "--group", "workers", "--from-beginning", "--max-messages", "2", "--timeout", "30s")
	if r.stdout != "a\nb\n" {
		t.Fatalf("first run printed %q", r.stdout)
	}
	r = mustCLI(t, addr, "", "consume", "jobs", "--group", "workers", "--from-beginning", "--max-messages", "1", "--timeout", "30s")
	if r.stdout != "c\n" {
		t.Fatalf("second run printed %q, want where the first stopped", r.stdout)
	}
	r = mustCLI(t, addr, "", "groups", "describe", "workers")
	if !strings.Contains(r.stdout, "jobs\t0\t3\t3\t0") && !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "jobs 0 3 3 0") {
		t.Fatalf("groups describe:\n%s", r.stdout)
	}
}
