package runnel_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/internal/faultinject"
	"github.com/runnel-dev/runnel/internal/freeport"
)

// runnelBinary builds cmd/runnel once per test binary, for the tests
// that run brokers as processes they can SIGKILL, into runnelBinaryDir,
// which TestMain removes.
var runnelBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "runnel-app-cluster-")
	if err != nil {
		return "", err
	}
	runnelBinaryDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return faultinject.BuildRunnel(ctx, "", dir)
})

// runnelBinaryDir holds the binary runnelBinary built, if it ran.
var runnelBinaryDir string

// appClusterKills is the number of broker kills of the cluster word
// count: one per broker by default, RUNNEL_FAULT_RUNS for a long run.
func appClusterKills(t *testing.T) int {
	t.Helper()
	v := os.Getenv("RUNNEL_FAULT_RUNS")
	if v == "" {
		return 3
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("RUNNEL_FAULT_RUNS=%q: want a positive count", v)
	}
	return n
}

// startProcCluster starts three `runnel broker` processes forming one
// cluster (all three controller voters) with test timings: a silent
// broker is fenced after 3 s. flags are added to every broker's (a flag
// given twice takes its last value).
func startProcCluster(t *testing.T, flags ...string) []*faultinject.Process {
	t.Helper()
	bin, err := runnelBinary()
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	addrs, err := freeport.Addrs(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	kafka, ctrl := addrs[:n], addrs[n:]
	var quorum []string
	for i, addr := range ctrl {
		quorum = append(quorum, fmt.Sprintf("%d@%s", i+1, addr))
	}
	procs := make([]*faultinject.Process, n)
	errs := make(chan error, n)
	// Each node waits at start for a quorum and for the others to
	// register, so they start together.
	for i := range n {
		args := []string{
			"--node-id", strconv.Itoa(i + 1), "--data-dir", t.TempDir(),
			"--listen", kafka[i], "--controller-listen", ctrl[i],
			"--controller-quorum", strings.Join(quorum, ","),
			"--broker-session-timeout", "3s", "--broker-heartbeat-interval", "300ms",
			"--replica-lag-time-max", "4s", "--log-level", "warn",
		}
		args = append(args, flags...)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			p, err := faultinject.StartBroker(ctx, bin, args...)
			procs[i] = p
			errs <- err
		}()
	}
	var firstErr error
	for range n {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	t.Cleanup(func() {
		for i, p := range procs {
			if p == nil {
				continue
			}
			p.Close()
			if t.Failed() {
				t.Logf("broker %d output:\n%s", i+1, p.Output())
			}
		}
	})
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return procs
}

// waitLeaders polls until every partition of topics has a leader and a
// full ISR of three.
func waitLeaders(t *testing.T, adm *kadm.Client, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for {
		md, err := adm.Metadata(ctx, topics...)
		ok := err == nil
		for _, topic := range topics {
			if !ok {
				break
			}
			parts := md.Topics[topic].Partitions
			ok = len(parts) > 0
			for _, p := range parts {
				if p.Err != nil || p.Leader < 0 || len(p.ISR) < 3 {
					ok = false
				}
			}
		}
		if ok {
			// Every broker must know the topics too: an App asks
			// whichever it reaches first for its source topics.
			ok, err = everyBrokerKnows(ctx, md, topics)
		}
		if ok {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%v: no leader and full ISR everywhere, or a broker that does not know them: %v", topics, err)
		}
		time.Sleep(50 * time.Millisecond) // polling the cluster's metadata
	}
}

// everyBrokerKnows reports whether each broker of md answers a metadata
// request for topics with their partitions: topics created through one
// broker reach the others a moment later.
func everyBrokerKnows(ctx context.Context, md kadm.Metadata, topics []string) (bool, error) {
	var seeds []string
	for _, b := range md.Brokers {
		seeds = append(seeds, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return false, err
	}
	defer cl.Close()
	for _, b := range md.Brokers {
		req := kmsg.NewPtrMetadataRequest()
		for _, topic := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
		if err != nil {
			return false, err
		}
		for _, rt := range resp.Topics {
			if rt.ErrorCode != 0 || len(rt.Partitions) == 0 {
				return false, fmt.Errorf("broker %d: topic %v: error %d, %d partitions", b.NodeID, rt.Topic, rt.ErrorCode, len(rt.Partitions))
			}
		}
	}
	return true, nil
}

// An exactly-once word count on a three-broker cluster (topics of
// replication factor 3, min.insync.replicas 2) while brokers are
// SIGKILLed and restarted, one after another, each while the App is
// processing: with the kills cycling through all three brokers, the
// brokers of the group coordinator, of the transaction coordinators and
// of every partition leader are among them. With no cache every count
// goes out, so the committed output per word must be 1, 2, 3 … up to a
// plain Go count of the input: a record processed twice shows as a
// repeated count, a lost one as a gap. RUNNEL_FAULT_RUNS sets the number
// of kills (default 3).
func TestAppExactlyOnceClusterBrokerKills(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker process test")
	}
	kills := appClusterKills(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("RUNNEL_FAULT_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("RUNNEL_FAULT_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	procs := startProcCluster(t)
	seeds, cl, adm := wordCountCluster(t, procs)

	app := runApp(t, buildTopology(t, slowWordCount), nil,
		runnel.ApplicationID("wc"), runnel.Brokers(seeds...), runnel.StateDir(t.TempDir()),
		runnel.ProcessingGuarantee(runnel.ExactlyOnce), runnel.CacheBytes(0),
		runnel.CommitInterval(100*time.Millisecond), runnel.ReplicationFactor(3))

	lines := wordCountLines(seed, 1500*(kills+1))
	want := countWords(lines)
	chunk := len(lines) / (kills + 1)
	start := time.Now()
	for i := range kills {
		produceLines(t, cl, i*chunk, lines[i*chunk:(i+1)*chunk])
		// Into the chunk's processing, then a kill.
		waitProcessed(t, app, int64(i*chunk+rng.IntN(chunk/2)))
		node := i%3 + 1
		coord := groupCoordinator(adm)
		if err := procs[node-1].Kill(); err != nil {
			t.Fatal(err)
		}
		// Down for up to 4 s: sometimes back before it is fenced (3 s),
		// sometimes after its leaderships and coordinators moved.
		time.Sleep(time.Duration(rng.IntN(4000)) * time.Millisecond) // the fault's length
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		err := procs[node-1].Restart(ctx)
		cancel()
		if err != nil {
			t.Fatalf("restart broker %d: %v", node, err)
		}
		t.Logf("kill %d: broker %d (group coordinator %d); %d of %d lines processed", i+1, node, coord, app.Metrics().RecordsProcessed, len(lines))
		select {
		case <-app.Done():
			t.Fatalf("the app stopped after kill %d: %v", i+1, app.Close())
		default:
		}
	}
	produceLines(t, cl, kills*chunk, lines[kills*chunk:])
	waitLeaders(t, adm, "lines", "word-counts")

	// The committed output, polled until it holds the reference counts.
	deadline := time.Now().Add(180 * time.Second)
	var last map[string]int64
	for {
		last = map[string]int64{}
		for _, r := range readTopic(t, seeds[0], "word-counts") {
			v, err := decodeInt64(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			w := string(r.Key)
			if v != last[w]+1 {
				t.Fatalf("word %q: count %d at %s[%d]@%d after %d (final %d)", w, v, r.Topic, r.Partition, r.Offset, last[w], want[w])
			}
			last[w] = v
		}
		if maps.Equal(last, want) {
			break
		}
		select {
		case <-app.Done():
			t.Fatalf("the app stopped: %v", app.Close())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("final counts after %d kills\n got %v\nwant %v\nmetrics %+v", kills, last, want, app.Metrics())
		}
		time.Sleep(100 * time.Millisecond) // polling the output topic
	}
	t.Logf("%d broker kills, %d lines: output equals the reference in %v; %+v", kills, len(lines), time.Since(start).Round(time.Second), app.Metrics())
}

// waitProcessed waits until the app has processed n records.
func waitProcessed(t *testing.T, app *runnel.App, n int64) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for app.Metrics().RecordsProcessed < n {
		select {
		case <-app.Done():
			t.Fatalf("the app stopped: %v", app.Close())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app processed %d records, want %d", app.Metrics().RecordsProcessed, n)
		}
		time.Sleep(5 * time.Millisecond) // polling a counter
	}
}

// groupCoordinator is the broker coordinating group "wc", or -1.
func groupCoordinator(adm *kadm.Client) int32 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range adm.FindGroupCoordinators(ctx, "wc") {
		if c.Err == nil {
			return c.NodeID
		}
	}
	return -1
}

// wordCountCluster returns the seeds of the broker processes procs, a
// client of them that retries through leader changes, and its admin, with
// the word count's topics created: 3 partitions, RF 3,
// min.insync.replicas=2.
func wordCountCluster(t *testing.T, procs []*faultinject.Process) ([]string, *kgo.Client, *kadm.Client) {
	t.Helper()
	var seeds []string
	for _, p := range procs {
		seeds = append(seeds, p.Addr())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }), kgo.RecordRetries(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	two := "2"
	resp, err := adm.CreateTopics(ctx, 3, 3, map[string]*string{"min.insync.replicas": &two}, "lines", "word-counts")
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	waitLeaders(t, adm, "lines", "word-counts")
	return seeds, cl, adm
}
