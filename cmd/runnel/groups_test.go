package main

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// startGroupBroker runs a broker on dir for group tests: a short initial
// rebalance delay and few __consumer_offsets partitions. It is closed when
// the test ends, if the test has not closed it.
func startGroupBroker(t *testing.T, dir string) *broker.Broker {
	t.Helper()
	return startGroupBrokerWith(t, dir, func(*broker.Config) {})
}

// startGroupBrokerWith is startGroupBroker with the configuration changed
// by set.
func startGroupBrokerWith(t *testing.T, dir string, set func(*broker.Config)) *broker.Broker {
	t.Helper()
	cfg := broker.Config{
		DataDir:                    dir,
		GroupInitialRebalanceDelay: 10 * time.Millisecond,
		OffsetsTopicPartitions:     3,
	}
	set(&cfg)
	return testutil.StartBroker(t, cfg)
}

// waitUntil polls cond until it holds, failing the test after a deadline;
// cond says what it is waiting for.
func waitUntil(t *testing.T, cond func() (bool, string)) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, cond)
}

// member is a franz-go group consumer that has joined its group.
type member struct {
	cl    *kgo.Client
	id    string
	close func() // leaves the group; safe to call again
}

// joinAndConsume joins group as client id "reader", consuming topic with
// the range assignor and no automatic commits, and polls until it has n
// records.
func joinAndConsume(t *testing.T, addr, group, topic string, n int) *member {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ClientID("reader"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	m := &member{cl: cl, close: sync.OnceFunc(cl.Close)}
	t.Cleanup(m.close)
	ctx := testContext(t)
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group %s consumed %d of %d records", group, got, n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		got += fs.NumRecords()
	}
	m.id, _ = cl.GroupMetadata()
	return m
}

// commit commits offsets as the member, in its current generation.
func (m *member) commit(t *testing.T, topic string, offsets map[int32]int64) {
	t.Helper()
	eos := map[int32]kgo.EpochOffset{}
	for p, o := range offsets {
		eos[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var cerr error
	m.cl.CommitOffsetsSync(testContext(t), map[string]map[int32]kgo.EpochOffset{topic: eos},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			cerr = err
			if err != nil {
				return
			}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if err := kerr.ErrorForCode(rp.ErrorCode); err != nil && cerr == nil {
						cerr = fmt.Errorf("%s[%d]: %w", rt.Topic, rp.Partition, err)
					}
				}
			}
		})
	if cerr != nil {
		t.Fatalf("commit: %v", cerr)
	}
}

// waitEmpty waits until group has no members.
func waitEmpty(t *testing.T, adm *kadm.Client, group string) {
	t.Helper()
	waitUntil(t, func() (bool, string) {
		ds, err := adm.DescribeGroups(testContext(t), group)
		if err != nil {
			return false, err.Error()
		}
		d := ds[group]
		return d.State == "Empty", fmt.Sprintf("group %s is %s with %d members", group, d.State, len(d.Members))
	})
}

// committed returns group's committed offsets in topic.
func committed(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	os, err := adm.FetchOffsets(testContext(t), group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	got := map[int32]int64{}
	for p, o := range os[topic] {
		if o.Err != nil {
			t.Fatalf("fetch offsets of %s: %s[%d]: %v", group, topic, p, o.Err)
		}
		got[p] = o.At
	}
	return got
}

// table lays rows out as the commands do: cells separated by tabs,
// aligned by a tabwriter.
func table(rows ...string) string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, r)
	}
	tw.Flush()
	return sb.String()
}

// wantOutput checks a command's exit status and exact output.
func wantOutput(t *testing.T, r result, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || r.stdout != stdout || r.stderr != stderr {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s\nwant:\n%s", r.code, code, r.stdout, stdout, r.stderr, stderr)
	}
}

func TestGroupsLagResetDelete(t *testing.T) {
	b := startGroupBroker(t, t.TempDir())
	addr := b.Addr()
	adm := testAdmin(t, addr)
	mustCLI(t, addr, "", "topics", "create", "orders", "--partitions", "3")
	seed(t, addr, "orders", 0, 0, 5)
	seed(t, addr, "orders", 1, 5, 3)

	// A member reads all 8 records and commits p0 at 3 and p1 at 1; then
	// p1 grows to 5.
	m := joinAndConsume(t, addr, "g", "orders", 8)
	m.commit(t, "orders", map[int32]int64{0: 3, 1: 1})
	seed(t, addr, "orders", 1, 8, 2)
	// A group that only commits offsets: no members, no protocol type.
	if err := adm.CommitAllOffsets(testContext(t), "offsets-only", kadm.OffsetsFromRecords(kgo.Record{Topic: "orders", Partition: 0, Offset: 0})); err != nil {
		t.Fatal(err)
	}

	listHeader := "Group\tState\tProtocolType\tMembers"
	r := mustCLI(t, addr, "", "groups", "list")
	wantOutput(t, r, 0, table(listHeader, "g\tStable\tconsumer\t1", "offsets-only\tEmpty\t-\t0"), "")
	r = mustCLI(t, addr, "", "groups", "list", "--state", "empty")
	wantOutput(t, r, 0, table(listHeader, "offsets-only\tEmpty\t-\t0"), "")
	r = mustCLI(t, addr, "", "groups", "list", "--state", "Stable,Empty")
	wantOutput(t, r, 0, table(listHeader, "g\tStable\tconsumer\t1", "offsets-only\tEmpty\t-\t0"), "")
	r = mustCLI(t, addr, "", "groups", "list", "--state", "Dead")
	wantOutput(t, r, 0, table(listHeader), "")

	partHeader := "Topic\tPartition\tCommitted\tEndOffset\tLag\tMember"
	r = mustCLI(t, addr, "", "groups", "describe", "g")
	wantOutput(t, r, 0, "Group: g\tState: Stable\tProtocolType: consumer\tProtocol: range\tCoordinator: 0 ("+addr+")\n"+
		"Members: 1\n"+
		table("  MemberID\tInstanceID\tClientID\tHost\tAssignment",
			"  "+m.id+"\t-\treader\t/127.0.0.1\torders:0,1,2")+
		table(partHeader,
			"orders\t0\t3\t5\t2\t"+m.id,
			"orders\t1\t1\t5\t4\t"+m.id,
			"orders\t2\t-\t0\t-\t"+m.id), "")

	// While the member is in the group, its offsets stay.
	r = cli(t, addr, "", "groups", "reset-offsets", "--group", "g", "--topic", "orders", "--to-earliest")
	wantOutput(t, r, exitFailure, "", "runnel groups: group g is Stable with 1 member: offsets can only be reset while it has none; stop its consumers first\n")
	r = cli(t, addr, "", "groups", "delete", "g")
	wantOutput(t, r, exitFailure, "", "runnel groups: delete group g: NON_EMPTY_GROUP: The group is not empty. (only a group without members can be deleted; stop its consumers first)\n")
	if got, want := committed(t, adm, "g", "orders"), map[int32]int64{0: 3, 1: 1}; !maps.Equal(got, want) {
		t.Fatalf("after refused commands: committed %v, want %v", got, want)
	}

	m.close()
	waitEmpty(t, adm, "g")
	r = mustCLI(t, addr, "", "groups", "describe", "g")
	wantOutput(t, r, 0, "Group: g\tState: Empty\tProtocolType: consumer\tProtocol: -\tCoordinator: 0 ("+addr+")\n"+
		"Members: 0\n"+
		table(partHeader,
			"orders\t0\t3\t5\t2\t-",
			"orders\t1\t1\t5\t4\t-",
			// An empty group shows every partition of the topics it
			// committed in.
			"orders\t2\t-\t0\t-\t-"), "")

	resetHeader := "Topic\tPartition\tCommitted\tNewOffset"
	for _, tc := range []struct {
		args           []string
		stdout, stderr string
		after          map[int32]int64
	}{
		{
			[]string{"--topic", "orders", "--to-earliest", "--dry-run"},
			table(resetHeader, "orders\t0\t3\t0", "orders\t1\t1\t0", "orders\t2\t-\t0"),
			"dry run: group g not changed; add --execute to commit these offsets\n",
			map[int32]int64{0: 3, 1: 1},
		},
		{
			// Without --execute, as with --dry-run: the plan only.
			[]string{"--topic", "orders", "--to-earliest"},
			table(resetHeader, "orders\t0\t3\t0", "orders\t1\t1\t0", "orders\t2\t-\t0"),
			"dry run: group g not changed; add --execute to commit these offsets\n",
			map[int32]int64{0: 3, 1: 1},
		},
		{
			[]string{"--topic", "orders", "--to-earliest", "--execute"},
			table(resetHeader, "orders\t0\t3\t0", "orders\t1\t1\t0", "orders\t2\t-\t0"),
			"reset 3 offsets of group g\n",
			map[int32]int64{0: 0, 1: 0, 2: 0},
		},
		{
			[]string{"--topic", "orders:1", "--to-latest", "--execute"},
			table(resetHeader, "orders\t1\t0\t5"),
			"reset 1 offset of group g\n",
			map[int32]int64{0: 0, 1: 5, 2: 0},
		},
		{
			[]string{"--topic", "orders:2,0", "--to-offset", "4", "--execute"},
			table(resetHeader, "orders\t0\t0\t4", "orders\t2\t0\t0"),
			"note: topic orders partition 2: offset 4 is past the end offset 0; using 0\nreset 2 offsets of group g\n",
			map[int32]int64{0: 4, 1: 5, 2: 0},
		},
		{
			[]string{"--topic", "orders:0", "--topic", "orders:1", "--to-offset", "2", "--dry-run"},
			table(resetHeader, "orders\t0\t4\t2", "orders\t1\t5\t2"),
			"dry run: group g not changed; add --execute to commit these offsets\n",
			map[int32]int64{0: 4, 1: 5, 2: 0},
		},
		{
			[]string{"--topic", "orders", "--to-offset", "100", "--execute"},
			table(resetHeader, "orders\t0\t4\t5", "orders\t1\t5\t5", "orders\t2\t0\t0"),
			"note: topic orders partition 0: offset 100 is past the end offset 5; using 5\n" +
				"note: topic orders partition 1: offset 100 is past the end offset 5; using 5\n" +
				"note: topic orders partition 2: offset 100 is past the end offset 0; using 0\n" +
				"reset 3 offsets of group g\n",
			map[int32]int64{0: 5, 1: 5, 2: 0},
		},
	} {
		args := append([]string{"groups", "reset-offsets", "--group", "g"}, tc.args...)
		r := mustCLI(t, addr, "", args...)
		if r.stdout != tc.stdout || r.stderr != tc.stderr {
			t.Fatalf("runnel %s\nstdout:\n%s\nwant:\n%s\nstderr:\n%s\nwant:\n%s", strings.Join(args, " "), r.stdout, tc.stdout, r.stderr, tc.stderr)
		}
		if got := committed(t, adm, "g", "orders"); !maps.Equal(got, tc.after) {
			t.Fatalf("after runnel %s: committed %v, want %v", strings.Join(args, " "), got, tc.after)
		}
	}

	// The lag follows the new offsets.
	r = mustCLI(t, addr, "", "groups", "describe", "g")
	wantOutput(t, r, 0, "Group: g\tState: Empty\tProtocolType: consumer\tProtocol: -\tCoordinator: 0 ("+addr+")\n"+
		"Members: 0\n"+
		table(partHeader,
			"orders\t0\t5\t5\t0\t-",
			"orders\t1\t5\t5\t0\t-",
			"orders\t2\t0\t0\t0\t-"), "")

	// Refusals that change nothing.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--topic", "nosuch", "--to-earliest"}, "runnel groups: topic nosuch: UNKNOWN_TOPIC_OR_PARTITION: This server does not host this topic-partition.\n"},
		{[]string{"--topic", "orders:3", "--to-earliest"}, "runnel groups: topic orders has no partition 3 (it has 3)\n"},
	} {
		args := append([]string{"groups", "reset-offsets", "--group", "g"}, tc.args...)
		wantOutput(t, cli(t, addr, "", args...), exitFailure, "", tc.want)
	}

	r = mustCLI(t, addr, "", "groups", "delete", "g")
	wantOutput(t, r, 0, "deleted group g\n", "")
	r = mustCLI(t, addr, "", "groups", "list")
	wantOutput(t, r, 0, table(listHeader, "offsets-only\tEmpty\t-\t0"), "")
	r = cli(t, addr, "", "groups", "describe", "g")
	wantOutput(t, r, exitFailure, "", "runnel groups: describe group g: GROUP_ID_NOT_FOUND: The group id does not exist.\n")
	// Several groups: each is deleted or says why not.
	r = cli(t, addr, "", "groups", "delete", "offsets-only", "g", "nosuch")
	wantOutput(t, r, exitFailure, "deleted group offsets-only\n",
		"runnel groups: delete group g: GROUP_ID_NOT_FOUND: The group id does not exist.\n"+
			"runnel groups: delete group nosuch: GROUP_ID_NOT_FOUND: The group id does not exist.\n")
	r = mustCLI(t, addr, "", "groups", "list")
	wantOutput(t, r, 0, table(listHeader), "")
}

func TestGroupsResetToDatetime(t *testing.T) {
	b := startGroupBroker(t, t.TempDir())
	addr := b.Addr()
	adm := testAdmin(t, addr)
	mustCLI(t, addr, "", "topics", "create", "events", "--partitions", "2")

	// p0 has records at base, base+1s, base+2s; p1 one at base.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	cl := testClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("events"))
	var rs []*kgo.Record
	for i, p := range []int32{0, 0, 0, 1} {
		at := base.Add(time.Duration(i) * time.Second)
		if p == 1 {
			at = base
		}
		rs = append(rs, &kgo.Record{Partition: p, Value: []byte("e"), Timestamp: at})
	}
	if err := cl.ProduceSync(testContext(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// base+1.5s in each form --to-datetime reads: p0 goes to the record
	// at base+2s, p1 has none so far on and goes to its end.
	ts := base.Add(1500 * time.Millisecond)
	header := "Topic\tPartition\tCommitted\tNewOffset"
	note := "note: topic events partition 1: no record at or after " + ts.UTC().Format("2006-01-02T15:04:05.000Z") + "; using the end offset 1\n"
	for _, form := range []string{
		fmt.Sprint(ts.UnixMilli()),
		ts.UTC().Format(time.RFC3339Nano),
		ts.In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339Nano),
		ts.Local().Format("2006-01-02T15:04:05.000"),
	} {
		r := mustCLI(t, addr, "", "groups", "reset-offsets", "--group", "tg", "--topic", "events", "--to-datetime", form, "--dry-run")
		wantOutput(t, r, 0, table(header, "events\t0\t-\t2", "events\t1\t-\t1"), note+"dry run: group tg not changed; add --execute to commit these offsets\n")
	}
	if got := committed(t, adm, "tg", "events"); len(got) != 0 {
		t.Fatalf("after dry runs: committed %v, want nothing", got)
	}

	r := mustCLI(t, addr, "", "groups", "reset-offsets", "--group", "tg", "--topic", "events", "--to-datetime", ts.Format(time.RFC3339Nano), "--execute")
	wantOutput(t, r, 0, table(header, "events\t0\t-\t2", "events\t1\t-\t1"), note+"reset 2 offsets of group tg\n")
	if got, want := committed(t, adm, "tg", "events"), map[int32]int64{0: 2, 1: 1}; !maps.Equal(got, want) {
		t.Fatalf("committed %v, want %v", got, want)
	}

	// A time before every record: the first offsets. Whole seconds,
	// local, without fraction.
	early := base.Add(-time.Minute).Local().Format("2006-01-02T15:04:05")
	r = mustCLI(t, addr, "", "groups", "reset-offsets", "--group", "tg", "--topic", "events", "--to-datetime", early, "--execute")
	wantOutput(t, r, 0, table(header, "events\t0\t2\t0", "events\t1\t1\t0"), "reset 2 offsets of group tg\n")
	if got, want := committed(t, adm, "tg", "events"), map[int32]int64{0: 0, 1: 0}; !maps.Equal(got, want) {
		t.Fatalf("committed %v, want %v", got, want)
	}
}

// The command line's side of lag: committed offsets survive a broker
// restart, and groups describe reports the lag from them.
func TestGroupsLagAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := startGroupBroker(t, dir)
	addr := b.Addr()
	mustCLI(t, addr, "", "topics", "create", "s13", "--partitions", "2")
	seed(t, addr, "s13", 0, 0, 10)
	seed(t, addr, "s13", 1, 10, 10)

	m := joinAndConsume(t, addr, "g13", "s13", 20)
	if err := m.cl.CommitUncommittedOffsets(testContext(t)); err != nil {
		t.Fatal(err)
	}
	m.close()
	waitEmpty(t, testAdmin(t, addr), "g13")
	seed(t, addr, "s13", 0, 20, 3)

	describe := func(addr string, lag1 int) string {
		return "Group: g13\tState: Empty\tProtocolType: consumer\tProtocol: -\tCoordinator: 0 (" + addr + ")\n" +
			"Members: 0\n" +
			table("Topic\tPartition\tCommitted\tEndOffset\tLag\tMember",
				"s13\t0\t10\t13\t3\t-",
				fmt.Sprintf("s13\t1\t10\t%d\t%d\t-", 10+lag1, lag1))
	}
	r := mustCLI(t, addr, "", "groups", "describe", "g13")
	wantOutput(t, r, 0, describe(addr, 0), "")

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startGroupBroker(t, dir)
	addr = b.Addr()
	r = mustCLI(t, addr, "", "groups", "describe", "g13")
	wantOutput(t, r, 0, describe(addr, 0), "")
	r = mustCLI(t, addr, "", "groups", "list")
	wantOutput(t, r, 0, table("Group\tState\tProtocolType\tMembers", "g13\tEmpty\tconsumer\t0"), "")

	// New records after the restart count as lag too.
	seed(t, addr, "s13", 1, 23, 2)
	r = mustCLI(t, addr, "", "groups", "describe", "g13")
	wantOutput(t, r, 0, describe(addr, 2), "")
}

func TestGroupsUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"groups"}, "missing subcommand"},
		{"unknown subcommand", []string{"groups", "rename"}, `unknown subcommand "rename"`},
		{"list bad state", []string{"groups", "list", "--state", "Stable,Sleeping"}, `--state "Sleeping"`},
		{"list argument", []string{"groups", "list", "g"}, `unexpected argument "g"`},
		{"describe without group", []string{"groups", "describe"}, "missing GROUP"},
		{"describe two groups", []string{"groups", "describe", "a", "b"}, `unexpected argument "b"`},
		{"delete without group", []string{"groups", "delete"}, "missing GROUP"},
		{"reset without group", []string{"groups", "reset-offsets", "--topic", "t", "--to-earliest"}, "missing --group"},
		{"reset without topic", []string{"groups", "reset-offsets", "--group", "g", "--to-earliest"}, "missing --topic"},
		{"reset without mode", []string{"groups", "reset-offsets", "--group", "g", "--topic", "t"}, "missing --to-earliest, --to-latest, --to-offset, --to-datetime or --by-duration"},
		{"reset dry run and execute", []string{"groups", "reset-offsets", "--group", "g", "--topic", "t", "--to-earliest", "--dry-run", "--execute"}, "--dry-run and --execute exclude each other"},
		{"reset two modes", []string{"groups", "reset-offsets", "--group", "g", "--topic", "t", "--to-earliest", "--to-offset", "3"}, "--to-earliest and --to-offset exclude each other"},
		{"reset negative offset", []string{"groups", "reset-offsets", "--group", "g", "--topic", "t", "--to-offset", "-1"}, "--to-offset -1 is negative"},
		{"reset bad datetime", []string{"groups", "reset-offsets", "--group", "g", "--topic", "t", "--to-datetime", "yesterday"}, `--to-datetime "yesterday": want RFC 3339`},
		{"reset bad partition", []string{"groups", "reset-offsets", "--group", "g", "--topic", "t:1,x", "--to-latest"}, `--topic "t:1,x": "x" is not a partition number`},
		{"reset empty topic", []string{"groups", "reset-offsets", "--group", "g", "--topic", ":1", "--to-latest"}, `--topic ":1": missing topic name`},
		{"reset argument", []string{"groups", "reset-offsets", "g", "--topic", "t", "--to-latest"}, `unexpected argument "g"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, "127.0.0.1:1", "", tc.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, exitUsage, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("stderr does not mention %q:\n%s", tc.want, r.stderr)
			}
			if !strings.Contains(r.stderr, "usage: runnel groups") {
				t.Fatalf("a usage error prints no usage:\n%s", r.stderr)
			}
		})
	}
	r := cli(t, "127.0.0.1:1", "", "groups", "-h")
	if r.code != exitOK || !strings.Contains(r.stdout, "reset-offsets --group GROUP") {
		t.Fatalf("groups -h: exit %d\nstdout:\n%s", r.code, r.stdout)
	}
}

// An offset before the log start offset is clamped up to it.
func TestGroupsResetClampsToStart(t *testing.T) {
	// Retention runs often, so the test waits for it rather than
	// triggering it.
	b := startGroupBrokerWith(t, t.TempDir(), func(c *broker.Config) { c.RetentionCheckInterval = 10 * time.Millisecond })
	addr := b.Addr()
	adm := testAdmin(t, addr)
	// Tiny segments and retention: after retention runs only the last
	// segment is left.
	mustCLI(t, addr, "", "topics", "create", "trimmed", "--config", "segment.bytes=14", "--config", "retention.bytes=1")
	for i := range 5 {
		seed(t, addr, "trimmed", 0, i, 1) // one batch each, so one segment each
	}
	var start kadm.ListedOffset
	waitUntil(t, func() (bool, string) {
		starts, err := adm.ListStartOffsets(testContext(t), "trimmed")
		if err != nil {
			return false, err.Error()
		}
		start, _ = starts.Lookup("trimmed", 0)
		return start.Err == nil && start.Offset == 4, fmt.Sprintf("log start offset %d (%v), want 4", start.Offset, start.Err)
	})

	header := "Topic\tPartition\tCommitted\tNewOffset"
	r := mustCLI(t, addr, "", "groups", "reset-offsets", "--group", "cg", "--topic", "trimmed:0", "--to-offset", "1", "--execute")
	wantOutput(t, r, 0, table(header, fmt.Sprintf("trimmed\t0\t-\t%d", start.Offset)),
		fmt.Sprintf("note: topic trimmed partition 0: offset 1 is before the start offset %d; using %d\nreset 1 offset of group cg\n", start.Offset, start.Offset))
	if got, want := committed(t, adm, "cg", "trimmed"), map[int32]int64{0: start.Offset}; !maps.Equal(got, want) {
		t.Fatalf("committed %v, want %v", got, want)
	}
	r = mustCLI(t, addr, "", "groups", "reset-offsets", "--group", "cg", "--topic", "trimmed", "--to-latest", "--execute")
	wantOutput(t, r, 0, table(header, fmt.Sprintf("trimmed\t0\t%d\t5", start.Offset)), "reset 1 offset of group cg\n")
	r = mustCLI(t, addr, "", "groups", "reset-offsets", "--group", "cg", "--topic", "trimmed", "--to-earliest", "--execute")
	wantOutput(t, r, 0, table(header, fmt.Sprintf("trimmed\t0\t5\t%d", start.Offset)), "reset 1 offset of group cg\n")
	r = mustCLI(t, addr, "", "groups", "describe", "cg")
	wantOutput(t, r, 0, "Group: cg\tState: Empty\tProtocolType: -\tProtocol: -\tCoordinator: 0 ("+addr+")\n"+
		"Members: 0\n"+
		table("Topic\tPartition\tCommitted\tEndOffset\tLag\tMember", fmt.Sprintf("trimmed\t0\t%d\t5\t%d\t-", start.Offset, 5-start.Offset)), "")
}
