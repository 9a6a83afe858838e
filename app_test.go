package runnel_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startAppBroker runs a Runnel broker over TCP for runtime tests.
func startAppBroker(t *testing.T) string {
	t.Helper()
	return testutil.StartBroker(t, broker.Config{
		GroupInitialRebalanceDelay: 10 * time.Millisecond,
		OffsetsTopicPartitions:     3, TransactionStateTopicPartitions: 3,
	}).Addr()
}

func newTestClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func wordCountLines(seed uint64, n int) []string {
	rng := rand.New(rand.NewPCG(seed, seed))
	vocab := []string{"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "runnel", "kafka", "stream", "log"}
	var lines []string
	for range n {
		var ws []string
		for range 1 + rng.IntN(6) {
			ws = append(ws, vocab[rng.IntN(len(vocab))])
		}
		lines = append(lines, strings.Join(ws, " "))
	}
	return lines
}

func countWords(lines []string) map[string]int64 {
	want := map[string]int64{}
	for _, l := range lines {
		for _, w := range strings.Fields(strings.ToLower(l)) {
			want[w]++
		}
	}
	return want
}

func produceLines(t *testing.T, cl *kgo.Client, from int, lines []string) {
	t.Helper()
	var recs []*kgo.Record
	for i, l := range lines {
		recs = append(recs, &kgo.Record{Topic: "lines", Key: []byte(strconv.Itoa(from + i)), Value: []byte(l)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readTopic reads topic from the start to its last stable offset
// (read_committed) and returns its records.
func readTopic(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	return testutil.ReadTopic(t, addr, topic, true)
}

// latestCounts is the last count per word in the output topic.
func latestCounts(t *testing.T, addr string) map[string]int64 {
	got := map[string]int64{}
	for _, r := range readTopic(t, addr, "word-counts") {
		v, err := decodeInt64(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[string(r.Key)] = v
	}
	return got
}

func decodeInt64(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("int64 of %d bytes", len(b))
	}
	var v int64
	for _, c := range b {
		v = v<<8 | int64(c)
	}
	return v, nil
}

// waitCounts polls the output until its latest counts equal want.
func waitCounts(t *testing.T, addr string, want map[string]int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var got map[string]int64
	for time.Now().Before(deadline) {
		if got = latestCounts(t, addr); maps.Equal(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling a broker, not waiting for an event we could observe
	}
	t.Fatalf("word counts\n got %v\nwant %v", got, want)
}

func startWordCount(t *testing.T, addr, stateDir string, g runnel.Guarantee) *runnel.App {
	t.Helper()
	return startWordCountWith(t, addr, stateDir, runnel.ProcessingGuarantee(g), runnel.CommitInterval(100*time.Millisecond))
}

// buildTopology builds the topology build describes.
func buildTopology(t *testing.T, build func(*stream.Builder)) *topology.Topology {
	t.Helper()
	b := stream.NewBuilder()
	build(b)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// runApp makes an App of topo with opts, lets prepare set it up (nil:
// nothing to do), starts it, and closes it when the test ends.
func runApp(t *testing.T, topo *topology.Topology, prepare func(*runnel.App), opts ...runnel.AppOption) *runnel.App {
	t.Helper()
	app, err := runnel.NewApp(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(app)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

func createTopics(t *testing.T, addr string, partitions int32, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(newTestClient(t, addr))
	resp, err := adm.CreateTopics(context.Background(), partitions, 1, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestAppWordCountMatchesReference: word count over the broker, under
// exactly-once and at-least-once, gives the reference counts.
func TestAppWordCountMatchesReference(t *testing.T) {
	for _, g := range []runnel.Guarantee{runnel.ExactlyOnce, runnel.AtLeastOnce} {
		t.Run(g.String(), func(t *testing.T) {
			addr := startAppBroker(t)
			createTopics(t, addr, 3, "lines", "word-counts")
			app := startWordCount(t, addr, t.TempDir(), g)
			lines := wordCountLines(18, 400)
			produceLines(t, newTestClient(t, addr), 0, lines)
			waitCounts(t, addr, countWords(lines))
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}
			if m := app.Metrics(); m.RecordsProcessed < int64(len(lines)) || m.Commits == 0 {
				t.Fatalf("metrics %+v", m)
			}
		})
	}
}

// TestAppNewInstanceBootstrapsFromChangelog: a new instance on an empty state
// directory rebuilds the store from the changelog and carries on from the
// same values; an instance restarted on intact Pebble state restores only
// the changelog tail written after it stopped.
func TestAppNewInstanceBootstrapsFromChangelog(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines", "word-counts")
	cl := newTestClient(t, addr)
	first, second, third := wordCountLines(21, 200), wordCountLines(22, 150), wordCountLines(23, 100)

	dirA := t.TempDir()
	a := startWordCount(t, addr, dirA, runnel.ExactlyOnce)
	produceLines(t, cl, 0, first)
	waitCounts(t, addr, countWords(first))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// A fresh instance: the whole changelog is read.
	b := startWordCount(t, addr, t.TempDir(), runnel.ExactlyOnce)
	produceLines(t, cl, len(first), second)
	all := append(append([]string{}, first...), second...)
	waitCounts(t, addr, countWords(all))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	rb := b.Metrics().RecordsRestored
	if rb == 0 {
		t.Fatal("the fresh instance restored nothing")
	}

	// Back on A's intact state: only what B wrote is read.
	total := int64(len(readTopic(t, addr, "wc-counts-changelog")))
	a2 := startWordCount(t, addr, dirA, runnel.ExactlyOnce)
	produceLines(t, cl, len(all), third)
	all = append(all, third...)
	waitCounts(t, addr, countWords(all))
	if err := a2.Close(); err != nil {
		t.Fatal(err)
	}
	ra := a2.Metrics().RecordsRestored
	t.Logf("changelog records %d; restored: fresh instance %d, restarted instance %d", total, rb, ra)
	if ra == 0 || ra >= total {
		t.Fatalf("restarted instance restored %d of %d changelog records; want the tail only", ra, total)
	}
}
