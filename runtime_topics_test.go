package runnel_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/stream"
)

// startApp builds a topology with build and starts it against addr as
// application id, with its own state directory; it is closed at cleanup.
func startApp(t *testing.T, build func(*stream.Builder), opts ...runnel.AppOption) *runnel.App {
	t.Helper()
	return runApp(t, buildTopology(t, build), nil, append([]runnel.AppOption{runnel.StateDir(t.TempDir())}, opts...)...)
}

// TestAppReplicationFactor: the internal topics are created with the
// replication factor asked for, so a factor above the broker count makes
// Start fail with the broker's reason; a factor the cluster can hold
// works; a nonsensical one is refused by NewApp.
func TestAppReplicationFactor(t *testing.T) {
	b := stream.NewBuilder()
	wordCount(b)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runnel.NewApp(topo, runnel.ApplicationID("wc"), runnel.ReplicationFactor(-2)); err == nil ||
		!strings.Contains(err.Error(), "replication factor -2") {
		t.Fatalf("NewApp with replication factor -2: %v", err)
	}

	// The broker is one node: a factor of 3 cannot be met.
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines", "word-counts")
	app, err := runnel.NewApp(topo, runnel.ApplicationID("wc"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()),
		runnel.ReplicationFactor(3))
	if err != nil {
		t.Fatal(err)
	}
	o := app.Options()
	if got := o.String(); !strings.Contains(got, "replication.factor=3") {
		t.Errorf("options string %q lacks replication.factor=3", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = app.Start(ctx)
	if err == nil {
		app.Close()
		t.Fatal("Start with replication factor 3 on one broker succeeded")
	}
	if !errors.Is(err, kerr.InvalidReplicationFactor) || !strings.Contains(err.Error(), "replication factor 3") ||
		!strings.Contains(err.Error(), "create topic wc-") {
		t.Fatalf("Start: %v; want INVALID_REPLICATION_FACTOR naming the internal topic and the factor", err)
	}
	t.Logf("refused as expected: %v", err)

	// A factor of 1, and the default, are met; the topics have one replica.
	startApp(t, wordCount, runnel.ApplicationID("wc"), runnel.Brokers(addr), runnel.ReplicationFactor(1))
	startApp(t, wordCount, runnel.ApplicationID("wc-default"), runnel.Brokers(addr))
	adm := kadm.NewClient(newTestClient(t, addr))
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	internal := 0
	for _, d := range details.Sorted() {
		if !strings.HasSuffix(d.Topic, "-changelog") && !strings.HasSuffix(d.Topic, "-repartition") {
			continue
		}
		internal++
		for _, p := range d.Partitions {
			if len(p.Replicas) != 1 {
				t.Errorf("%s[%d] has replicas %v", d.Topic, p.Partition, p.Replicas)
			}
		}
	}
	if internal != 4 {
		t.Errorf("found %d internal topics, want a changelog and a repartition topic for each app", internal)
	}
}

// TestAppPurgeRepartition: once the records of a repartition topic are
// consumed and committed, the application deletes them (DeleteRecords), at
// most every RepartitionPurgeInterval: not before the interval (30 s by
// default) has passed, and up to the committed offsets with a short one.
func TestAppPurgeRepartition(t *testing.T) {
	for _, g := range []runnel.Guarantee{runnel.ExactlyOnce, runnel.AtLeastOnce} {
		t.Run(g.String(), func(t *testing.T) {
			addr := startAppBroker(t)
			createTopics(t, addr, 3, "lines", "word-counts")
			cl := newTestClient(t, addr)
			adm := kadm.NewClient(cl)
			const repartition = "wc-words-repartition"
			opts := []runnel.AppOption{runnel.ApplicationID("wc"), runnel.Brokers(addr),
				runnel.ProcessingGuarantee(g), runnel.CommitInterval(50 * time.Millisecond)}

			// Default interval: everything is processed well within 30 s,
			// and nothing is purged.
			first, second := wordCountLines(31, 300), wordCountLines(32, 300)
			app := startApp(t, wordCount, opts...)
			produceLines(t, cl, 0, first)
			waitCounts(t, addr, countWords(first))
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}
			starts := listStarts(t, adm, repartition)
			for p, o := range starts {
				if o != 0 {
					t.Fatalf("%s[%d] starts at %d before the purge interval passed", repartition, p, o)
				}
			}

			// A short interval: the log start offsets reach the committed
			// offsets of the group.
			startApp(t, wordCount, append(opts, runnel.RepartitionPurgeInterval(time.Millisecond))...)
			produceLines(t, cl, len(first), second)
			waitCounts(t, addr, countWords(append(append([]string{}, first...), second...)))
			deadline := time.Now().Add(30 * time.Second)
			for {
				committed, err := adm.FetchOffsets(context.Background(), "wc")
				if err != nil {
					t.Fatal(err)
				}
				starts, done := listStarts(t, adm, repartition), true
				for p, o := range starts {
					c, _ := committed.Lookup(repartition, p)
					if c.At <= 0 || o < c.At {
						done = false
					}
				}
				if done {
					t.Logf("log start offsets %v", starts)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("log start offsets %v never reached the committed offsets %v", starts, committed)
				}
				time.Sleep(50 * time.Millisecond) // polling the broker
			}
		})
	}
}

// listStarts returns the log start offset of each partition of topic.
func listStarts(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	los, err := adm.ListStartOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	los.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("start offset of %s[%d]: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	if len(out) == 0 {
		t.Fatalf("no partitions listed for %s", topic)
	}
	return out
}

// TestAppMissingSinkTopic: an application whose output topic does not
// exist fails at start, in state ERROR, with an error that names the topic
// and says how to create it (it used to retry its transaction forever,
// silently); with CreateSinkTopics it creates the topic and runs.
func TestAppMissingSinkTopic(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines")
	topo := buildTopology(t, wordCount)
	app, err := runnel.NewApp(topo, runnel.ApplicationID("no-sink"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()), runnel.Logger(nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = app.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "sink topic word-counts does not exist") ||
		!strings.Contains(err.Error(), "runnel topics create word-counts") {
		t.Fatalf("Run: %v", err)
	}
	if app.State() != runnel.Error {
		t.Fatalf("state %v, want ERROR", app.State())
	}

	startApp(t, wordCount, runnel.ApplicationID("sink-created"), runnel.Brokers(addr), runnel.CreateSinkTopics(3))
	adm := kadm.NewClient(newTestClient(t, addr))
	details, err := adm.ListTopics(ctx, "word-counts")
	if err != nil {
		t.Fatal(err)
	}
	if d := details["word-counts"]; d.Err != nil || len(d.Partitions) != 3 {
		t.Fatalf("word-counts: %v, %d partitions", d.Err, len(d.Partitions))
	}
}
