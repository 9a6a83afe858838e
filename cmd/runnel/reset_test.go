package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

// TestResetApplication: reset commits the input offsets asked for, deletes
// exactly the application's internal topics (and the group's offsets on
// them), changes nothing on a dry run, and refuses a group with members.
func TestResetApplication(t *testing.T) {
	b := startGroupBroker(t, t.TempDir())
	addr := b.Addr()
	ctx := testContext(t)
	adm := kadm.NewClient(testClient(t, addr))
	topics := []string{"in", "app-counts-changelog", "app-words-repartition",
		"app-fk-subscription-registration-topic", "app-notes", "other-counts-changelog"}
	resp, err := adm.CreateTopics(ctx, 2, 1, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	cl := testClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: "in", Partition: int32(i % 2), Value: []byte("x")})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// The application read everything and committed, then stopped.
	m := joinAndConsume(t, addr, "app", "in", 10)
	m.commit(t, "in", map[int32]int64{0: 5, 1: 5})
	m.commit(t, "app-words-repartition", map[int32]int64{0: 0})

	r := cli(t, addr, "", "reset", "--application-id", "app", "--input-topics", "in", "--to-earliest")
	// One prefix, the command's, and the count in the singular.
	if want := "runnel reset: the application's group has members: group app is Stable with 1 member; stop its instances first\n"; r.code != exitFailure || r.stderr != want {
		t.Fatalf("reset of a group with members: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	m.close()
	waitEmpty(t, adm, "app")

	wantStdout := table("Topic\tPartition\tCommitted\tNewOffset", "in\t0\t5\t0", "in\t1\t5\t0") +
		"internal topic app-counts-changelog: delete\n" +
		"internal topic app-fk-subscription-registration-topic: delete\n" +
		"internal topic app-words-repartition: delete\n"
	r = mustCLI(t, addr, "", "reset", "--application-id", "app", "--input-topics", "in", "--to-earliest", "--dry-run")
	wantOutput(t, r, exitOK, wantStdout, "dry run: application app not changed\n")
	if got := committed(t, adm, "app", "in"); !maps.Equal(got, map[int32]int64{0: 5, 1: 5}) {
		t.Fatalf("after a dry run, committed %v", got)
	}

	r = mustCLI(t, addr, "", "reset", "--application-id", "app", "--input-topics", "in", "--to-earliest")
	if r.stdout != wantStdout {
		t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, wantStdout)
	}
	if got := committed(t, adm, "app", "in"); !maps.Equal(got, map[int32]int64{0: 0, 1: 0}) {
		t.Fatalf("after the reset, committed %v", got)
	}
	if got := committed(t, adm, "app", "app-words-repartition"); len(got) != 0 {
		t.Fatalf("offsets on a deleted internal topic remain: %v", got)
	}
	waitUntil(t, func() (bool, string) {
		listed, err := adm.ListTopics(ctx)
		if err != nil {
			return false, err.Error()
		}
		names := listed.Names()
		slices.Sort(names)
		want := []string{"app-notes", "in", "other-counts-changelog"}
		return slices.Equal(names, want), "topics " + strings.Join(names, ",") + ", want " + strings.Join(want, ",")
	})

	// The other modes, with the internal topics already gone.
	mustCLI(t, addr, "", "reset", "--application-id", "app", "--input-topics", "in", "--to-offset", "3")
	if got := committed(t, adm, "app", "in"); !maps.Equal(got, map[int32]int64{0: 3, 1: 3}) {
		t.Fatalf("--to-offset 3: committed %v", got)
	}
	// Every record was written within the last hour.
	mustCLI(t, addr, "", "reset", "--application-id", "app", "--input-topics", "in", "--by-duration", "1h")
	if got := committed(t, adm, "app", "in"); !maps.Equal(got, map[int32]int64{0: 0, 1: 0}) {
		t.Fatalf("--by-duration 1h: committed %v", got)
	}
	mustCLI(t, addr, "", "reset", "--application-id", "app", "--input-topics", "in", "--to-latest")
	if got := committed(t, adm, "app", "in"); !maps.Equal(got, map[int32]int64{0: 5, 1: 5}) {
		t.Fatalf("--to-latest: committed %v", got)
	}
}

func TestResetUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"reset", "--input-topics", "in", "--to-earliest"}, "missing --application-id"},
		{[]string{"reset", "--application-id", "a", "--input-topics", "in"}, "missing --to-earliest"},
		{[]string{"reset", "--application-id", "a", "--input-topics", "in", "--to-earliest", "--to-latest"}, "exclude each other"},
		{[]string{"reset", "--application-id", "a", "--to-earliest"}, "needs --input-topics"},
		{[]string{"reset", "--application-id", "a", "--input-topics", "in", "--to-offset", "-1"}, "negative"},
		{[]string{"reset", "--application-id", "a", "--input-topics", "in", "--to-datetime", "yesterday"}, "--to-datetime"},
	} {
		r := cliContext(context.Background(), "127.0.0.1:1", "", tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

func TestIsInternalTopic(t *testing.T) {
	for topic, want := range map[string]bool{
		"app-counts-changelog":                   true,
		"app-words-repartition":                  true,
		"app-fk-subscription-response-topic":     true,
		"app-notes":                              false,
		"appx-counts-changelog":                  false,
		"other-app-counts-changelog":             false,
		"app-KSTREAM-AGGREGATE-0000000003-topic": true,
	} {
		if got := isInternalTopic("app", topic); got != want {
			t.Errorf("isInternalTopic(app, %s) = %t, want %t", topic, got, want)
		}
	}
}

// TestResetToEarliestRecomputesIdenticalResults: a word count runs over
// its input; after runnel reset --to-earliest and App.CleanUp the same
// topology reprocesses the input and produces the first run's output again.
func TestResetToEarliestRecomputesIdenticalResults(t *testing.T) {
	ctx := testContext(t)
	addr := testutil.StartBroker(t, broker.Config{
		GroupInitialRebalanceDelay: 10 * time.Millisecond,
		OffsetsTopicPartitions:     3, TransactionStateTopicPartitions: 3,
	}).Addr()
	adm := kadm.NewClient(testClient(t, addr))
	resp, err := adm.CreateTopics(ctx, 2, 1, nil, "lines", "word-counts")
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	words := []string{"alpha", "beta", "gamma", "delta", "epsilon"}
	var recs []*kgo.Record
	for i := range 200 {
		line := words[i%5] + " " + words[(i*i)%5] + " " + words[(i/3)%5]
		recs = append(recs, &kgo.Record{Topic: "lines", Key: []byte(strconv.Itoa(i)), Value: []byte(line)})
	}
	if err := testClient(t, addr).ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	stateDir := t.TempDir()
	runApp := func(cleanUp bool, until func() (bool, string)) {
		t.Helper()
		sb := stream.NewBuilder()
		lines := stream.From(sb, "lines", serde.String, serde.String)
		ws := stream.FlatMapValues(lines, strings.Fields)
		stream.GroupBy(ws, func(_, w string) string { return w }, stream.Named("words")).
			Count(stream.Materialized("counts")).ToStream().To("word-counts")
		topo, err := sb.Build()
		if err != nil {
			t.Fatal(err)
		}
		app, err := runnel.NewApp(topo, runnel.ApplicationID("wc"), runnel.Brokers(addr),
			runnel.StateDir(stateDir), runnel.CacheBytes(0))
		if err != nil {
			t.Fatal(err)
		}
		if cleanUp {
			if err := app.CleanUp(); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		if err := app.CleanUp(); !errors.Is(err, runnel.ErrAppRunning) {
			t.Fatalf("CleanUp of a running app: %v", err)
		}
		waitUntil(t, until)
		if err := app.Close(); err != nil {
			t.Fatal(err)
		}
	}

	want := map[string]int64{}
	for _, r := range recs {
		for _, w := range strings.Fields(string(r.Value)) {
			want[w]++
		}
	}
	var first map[string][]int64
	runApp(false, func() (bool, string) {
		first = countSequences(t, adm, addr, nil)
		return latest(first, want), fmt.Sprintf("first run's output %v, want final counts %v", first, want)
	})
	ends, err := adm.ListEndOffsets(ctx, "word-counts")
	if err != nil {
		t.Fatal(err)
	}
	from := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { from[o.Partition] = o.Offset })

	mustCLI(t, addr, "", "reset", "--application-id", "wc", "--input-topics", "lines", "--to-earliest")
	waitUntil(t, func() (bool, string) {
		listed, err := adm.ListTopics(ctx)
		if err != nil {
			return false, err.Error()
		}
		return !listed.Has("wc-counts-changelog") && !listed.Has("wc-words-repartition"), "the internal topics to go"
	})

	var second map[string][]int64
	runApp(true, func() (bool, string) {
		second = countSequences(t, adm, addr, from)
		return latest(second, want), fmt.Sprintf("output after the reset %v, want final counts %v", second, want)
	})
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("after the reset\n got %v\nwant %v", second, first)
	}
}

// countSequences reads word-counts from offset from[p] of each partition p to
// its last stable offset (read_committed) and returns every word's counts
// in order.
func countSequences(t *testing.T, adm *kadm.Client, addr string, from map[int32]int64) map[string][]int64 {
	t.Helper()
	ctx := testContext(t)
	lso, err := adm.ListCommittedOffsets(ctx, "word-counts")
	if err != nil {
		t.Fatal(err)
	}
	read := map[int32]kgo.Offset{}
	next := map[int32]int64{}
	lso.Each(func(o kadm.ListedOffset) {
		if o.Offset > from[o.Partition] {
			read[o.Partition] = kgo.NewOffset().At(from[o.Partition])
			next[o.Partition] = from[o.Partition]
		}
	})
	got := map[string][]int64{}
	if len(read) == 0 {
		return got
	}
	cl := testClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"word-counts": read}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	for p := range read {
		for e, _ := lso.Lookup("word-counts", p); next[p] < e.Offset; {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				next[r.Partition] = r.Offset + 1
				if e, _ := lso.Lookup(r.Topic, r.Partition); r.Attrs.IsControl() || r.Offset >= e.Offset {
					return
				}
				v, err := serde.Int64.Deserialize(r.Value)
				if err != nil {
					t.Fatal(err)
				}
				got[string(r.Key)] = append(got[string(r.Key)], v)
			})
		}
	}
	return got
}

// latest reports whether the last count of every word in seqs is want's.
func latest(seqs map[string][]int64, want map[string]int64) bool {
	if len(seqs) != len(want) {
		return false
	}
	for w, s := range seqs {
		if s[len(s)-1] != want[w] {
			return false
		}
	}
	return true
}
