package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// hookProcessor calls hook on each record and forwards it if hook returns
// nil.
type hookProcessor struct {
	ctx  topology.Context[string, int64]
	hook func(k string, v int64) error
}

func (p *hookProcessor) Init(ctx topology.Context[string, int64]) error { p.ctx = ctx; return nil }
func (p *hookProcessor) Close() error                                   { return nil }
func (p *hookProcessor) Process(r topology.Record[string, int64]) error {
	if err := p.hook(r.Key, r.Value); err != nil {
		return err
	}
	p.ctx.Forward(r)
	return nil
}

// numsTopology reads "nums" (string keys, int64 values), passes each record
// through hook, writes a copy of each to "copy" (the value as text, or a
// 5,000-byte string for the value 99) and the sum per key to "sums".
func numsTopology(t *testing.T, hook func(k string, v int64) error) *topology.Topology {
	t.Helper()
	b := stream.NewBuilder()
	nums := stream.From(b, "nums", serde.String, serde.Int64)
	checked := stream.Process(nums, func() topology.Processor[string, int64, string, int64] { return &hookProcessor{hook: hook} }, nil)
	stream.MapValues(checked, copyValue).To("copy", stream.WithSerdes(serde.String, serde.String))
	checked.GroupByKey(stream.WithSerdes(serde.String, serde.Int64)).
		Reduce(func(a, v int64) int64 { return a + v }, stream.Materialized("sums-store")).
		ToStream().To("sums", stream.WithSerdes(serde.String, serde.Int64))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func noHook(string, int64) error { return nil }

// bigValue is 5,000 bytes no compression codec shrinks much.
var bigValue = func() string {
	rng := rand.New(rand.NewPCG(99, 99))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, 5000)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}()

func copyValue(v int64) string {
	if v == 99 {
		return bigValue
	}
	return strconv.FormatInt(v, 10)
}

// numRecord is a record of "nums": value is the int64 v, or raw when set.
type numRecord struct {
	key string
	v   int64
	raw []byte
}

// numsInput is n records over 5 keys with values 1..n, and poison (bytes
// no Int64 serde reads) at index poisonAt when it is not negative.
func numsInput(n, poisonAt int) []numRecord {
	var recs []numRecord
	for i := range n {
		r := numRecord{key: fmt.Sprintf("k%d", i%5), v: int64(i + 1)}
		if i == poisonAt {
			r.raw = []byte("bad")
		}
		recs = append(recs, r)
	}
	return recs
}

func produceNums(t *testing.T, cl *kgo.Client, recs []numRecord) {
	t.Helper()
	var out []*kgo.Record
	for _, r := range recs {
		v := r.raw
		if v == nil {
			v, _ = serde.Int64.Serialize(r.v)
		}
		out = append(out, &kgo.Record{Topic: "nums", Key: []byte(r.key), Value: v,
			Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}})
	}
	if err := cl.ProduceSync(context.Background(), out...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// wantSums is the sum per key of the records that are neither poison nor
// skipped.
func wantSums(recs []numRecord, skip func(numRecord) bool) map[string]int64 {
	want := map[string]int64{}
	for _, r := range recs {
		if r.raw == nil && (skip == nil || !skip(r)) {
			want[r.key] += r.v
		}
	}
	return want
}

func latestSums(t *testing.T, addr string) map[string]int64 {
	got := map[string]int64{}
	for _, r := range readTopic(t, addr, "sums") {
		v, err := decodeInt64(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[string(r.Key)] = v
	}
	return got
}

// waitSums polls "sums" until its latest values equal want.
func waitSums(t *testing.T, addr string, want map[string]int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var got map[string]int64
	for time.Now().Before(deadline) {
		if got = latestSums(t, addr); maps.Equal(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling a broker, not waiting for an event we could observe
	}
	t.Fatalf("sums\n got %v\nwant %v", got, want)
}

// checkCopy checks that "copy" holds each wanted value exactly once.
func checkCopy(t *testing.T, addr string, recs []numRecord, skip func(numRecord) bool) {
	t.Helper()
	short := func(k, v string) string {
		if len(v) > 20 {
			v = fmt.Sprintf("%s…(%d bytes)", v[:10], len(v))
		}
		return k + "=" + v
	}
	seen := map[string]int{}
	for _, r := range readTopic(t, addr, "copy") {
		seen[short(string(r.Key), string(r.Value))]++
	}
	want := map[string]int{}
	for _, r := range recs {
		if r.raw == nil && (skip == nil || !skip(r)) {
			want[short(r.key, copyValue(r.v))]++
		}
	}
	if !maps.Equal(seen, want) {
		for k, n := range seen {
			if want[k] != n {
				t.Errorf("copy %s: %d times, want %d", k, n, want[k])
			}
		}
		for k := range want {
			if seen[k] == 0 {
				t.Errorf("copy %s missing", k)
			}
		}
		t.FailNow()
	}
}

func startNumsApp(t *testing.T, addr string, topo *topology.Topology, opts ...runnel.AppOption) *runnel.App {
	t.Helper()
	return runApp(t, topo, nil, append([]runnel.AppOption{runnel.ApplicationID("nums"), runnel.Brokers(addr),
		runnel.StateDir(t.TempDir()), runnel.CommitInterval(50 * time.Millisecond)}, opts...)...)
}

// waitStopped waits for app to stop by itself and returns its error.
func waitStopped(t *testing.T, app *runnel.App) error {
	t.Helper()
	select {
	case <-app.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the app did not stop")
	}
	return app.Err()
}

// TestAppDeserializationFail: by default a record that cannot be
// deserialized stops the application with an error naming the record.
func TestAppDeserializationFail(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 1, "nums", "copy", "sums")
	app := startNumsApp(t, addr, numsTopology(t, noHook))
	produceNums(t, newTestClient(t, addr), numsInput(20, 7))
	err := waitStopped(t, app)
	if !errors.Is(err, topology.ErrDeserialization) || !strings.Contains(err.Error(), "nums[0] at offset 7") {
		t.Fatalf("error %v; want a deserialization error naming nums[0] at offset 7", err)
	}
	if s := app.State(); s != runnel.Error {
		t.Fatalf("state %v, want ERROR", s)
	}
	if err := app.Close(); err == nil {
		t.Fatal("Close returned no error")
	}
}

// TestAppDeserializationContinue: LogAndContinue, DeadLetterQueue and a
// handler of the user's own skip the poison record and process the others
// exactly once (exactly-once); the dead letter holds the raw record, its
// headers and where it came from.
func TestAppDeserializationContinue(t *testing.T) {
	var customCalls atomic.Int64
	custom := runnel.DeserializationHandlerFunc(func(ctx runnel.ErrorContext, rec *kgo.Record, err error) runnel.HandlerResponse {
		if string(rec.Value) == "bad" && errors.Is(err, topology.ErrDeserialization) {
			customCalls.Add(1)
		}
		return runnel.Continue
	})
	for _, tc := range []struct {
		name    string
		handler runnel.DeserializationHandler
		dlq     bool
	}{{"log-and-continue", runnel.LogAndContinue, false}, {"dead-letter", runnel.DeadLetterQueue("nums-dlq"), true}, {"custom", custom, false}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startAppBroker(t)
			createTopics(t, addr, 2, "nums", "copy", "sums")
			app := startNumsApp(t, addr, numsTopology(t, noHook), runnel.DeserializationErrorHandler(tc.handler))
			recs := numsInput(300, 123)
			produceNums(t, newTestClient(t, addr), recs)
			waitSums(t, addr, wantSums(recs, nil))
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}
			checkCopy(t, addr, recs, nil)
			if m := app.Metrics(); m.DeserializationErrors != 1 {
				t.Fatalf("deserialization errors %d, want 1", m.DeserializationErrors)
			}
			if tc.name == "custom" && customCalls.Load() != 1 {
				t.Fatalf("custom handler called %d times for the poison record, want 1", customCalls.Load())
			}
			if !tc.dlq {
				return
			}
			dl := readTopic(t, addr, "nums-dlq")
			if len(dl) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dl))
			}
			// Find where the poison record went: the record keyed k3 (123%5)
			// with the bad value.
			src := readTopic(t, addr, "nums")
			var poison *kgo.Record
			for _, r := range src {
				if string(r.Value) == "bad" {
					poison = r
				}
			}
			d := dl[0]
			h := map[string]string{}
			for _, x := range d.Headers {
				h[x.Key] = string(x.Value)
			}
			if string(d.Key) != "k3" || string(d.Value) != "bad" || h["origin"] != "test" ||
				h[runnel.HeaderErrorTopic] != "nums" || h[runnel.HeaderErrorPartition] != strconv.Itoa(int(poison.Partition)) ||
				h[runnel.HeaderErrorOffset] != strconv.FormatInt(poison.Offset, 10) ||
				!strings.Contains(h[runnel.HeaderErrorMessage], "deserialization failed") {
				t.Fatalf("dead letter %s=%s headers %v; poison at %s[%d]@%d", d.Key, d.Value, h, poison.Topic, poison.Partition, poison.Offset)
			}
		})
	}
}

// createTopicWithConfig creates topic with one partition and configs.
func createTopicWithConfig(t *testing.T, addr, topic string, configs map[string]*string) {
	t.Helper()
	adm := kadm.NewClient(newTestClient(t, addr))
	resp, err := adm.CreateTopic(context.Background(), 1, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestAppProductionError: an output record larger than its topic's
// max.message.bytes stops the application by default; with
// ProductionLogAndContinue it alone is skipped, and every other record,
// including those that shared its batch, is written exactly once.
func TestAppProductionError(t *testing.T) {
	for _, cont := range []bool{false, true} {
		t.Run(fmt.Sprintf("continue=%t", cont), func(t *testing.T) {
			addr := startAppBroker(t)
			createTopics(t, addr, 1, "nums", "sums")
			limit := "2000"
			createTopicWithConfig(t, addr, "copy", map[string]*string{"max.message.bytes": &limit})
			var opts []runnel.AppOption
			if cont {
				opts = append(opts, runnel.ProductionErrorHandler(runnel.ProductionLogAndContinue))
			}
			app := startNumsApp(t, addr, numsTopology(t, noHook), opts...)
			recs := numsInput(300, -1)
			produceNums(t, newTestClient(t, addr), recs)
			if !cont {
				err := waitStopped(t, app)
				if !errors.Is(err, kerr.MessageTooLarge) || !strings.Contains(err.Error(), "copy") {
					t.Fatalf("error %v; want MESSAGE_TOO_LARGE for copy", err)
				}
				return
			}
			is99 := func(r numRecord) bool { return r.v == 99 }
			waitSums(t, addr, wantSums(recs, nil)) // the sums do not pass through "copy"
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}
			checkCopy(t, addr, recs, is99)
			if m := app.Metrics(); m.ProductionErrors != 1 {
				t.Fatalf("production errors %d, want 1", m.ProductionErrors)
			}
		})
	}
}

// TestAppReplaceWorker: under ReplaceWorker a processor that fails once
// (an error, or a panic) costs a worker, whose replacement reprocesses
// from the committed offsets: the output is exact. Under the default
// policy a panic stops the application with ErrPanic, and the process
// lives on.
func TestAppReplaceWorker(t *testing.T) {
	for _, tc := range []struct {
		name    string
		panics  bool
		replace bool
	}{{"error", false, true}, {"panic", true, true}, {"panic-shutdown", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startAppBroker(t)
			createTopics(t, addr, 2, "nums", "copy", "sums")
			var failed atomic.Bool
			hook := func(_ string, v int64) error {
				if v == 150 && failed.CompareAndSwap(false, true) {
					if tc.panics {
						panic("processor bug")
					}
					return errors.New("transient failure")
				}
				return nil
			}
			var opts []runnel.AppOption
			if tc.replace {
				opts = append(opts, runnel.UncaughtError(runnel.ReplaceWorker))
			}
			app := startNumsApp(t, addr, numsTopology(t, hook), opts...)
			recs := numsInput(400, -1)
			produceNums(t, newTestClient(t, addr), recs)
			if !tc.replace {
				if err := waitStopped(t, app); !errors.Is(err, topology.ErrPanic) || !strings.Contains(err.Error(), "processor bug") {
					t.Fatalf("error %v; want ErrPanic", err)
				}
				return
			}
			waitSums(t, addr, wantSums(recs, nil))
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}
			checkCopy(t, addr, recs, nil)
			if m := app.Metrics(); m.WorkerReplacements != 1 || !failed.Load() {
				t.Fatalf("replacements %d (failed %t), want 1", m.WorkerReplacements, failed.Load())
			}
		})
	}
}

// TestAppReplaceWorkerGivesUp: a processor that fails every time costs
// MaxWorkerReplacements replacements, backing off, and then the
// application stops with the error.
func TestAppReplaceWorkerGivesUp(t *testing.T) {
	defer runnel.SetReplaceBackoff(20*time.Millisecond, 80*time.Millisecond)()
	addr := startAppBroker(t)
	createTopics(t, addr, 1, "nums", "copy", "sums")
	var calls atomic.Int64
	hook := func(_ string, v int64) error {
		if v == 3 {
			calls.Add(1)
			return errors.New("persistent failure")
		}
		return nil
	}
	start := time.Now()
	app := startNumsApp(t, addr, numsTopology(t, hook), runnel.UncaughtError(runnel.ReplaceWorker))
	produceNums(t, newTestClient(t, addr), numsInput(10, -1))
	err := waitStopped(t, app)
	if err == nil || !strings.Contains(err.Error(), "persistent failure") || !strings.Contains(err.Error(), "replacements in a row") {
		t.Fatalf("error %v; want the persistent failure after the replacements", err)
	}
	m := app.Metrics()
	// Backoffs 20, 40, then 80 ms: at least 20+40+80*8 ms in all.
	if m.WorkerReplacements != runnel.MaxWorkerReplacements || calls.Load() != runnel.MaxWorkerReplacements+1 || time.Since(start) < 700*time.Millisecond {
		t.Fatalf("%d replacements, %d failing calls in %v; want %d, %d", m.WorkerReplacements, calls.Load(), time.Since(start),
			runnel.MaxWorkerReplacements, runnel.MaxWorkerReplacements+1)
	}
	if app.State() != runnel.Error {
		t.Fatalf("state %v, want ERROR", app.State())
	}
}

// TestAppStateListener: the listener sees the application's lifecycle.
func TestAppStateListener(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "nums", "copy", "sums")
	var mu sync.Mutex
	var seen []string
	app := startNumsApp(t, addr, numsTopology(t, noHook), runnel.StateListener(func(old, new runnel.State) {
		mu.Lock()
		seen = append(seen, old.String()+">"+new.String())
		mu.Unlock()
	}))
	deadline := time.Now().Add(30 * time.Second)
	for app.State() != runnel.Running {
		if time.Now().After(deadline) {
			t.Fatalf("state %v, want RUNNING", app.State())
		}
		time.Sleep(10 * time.Millisecond) // the state has no change channel; the listener is under test
	}
	recs := numsInput(50, -1)
	produceNums(t, newTestClient(t, addr), recs)
	waitSums(t, addr, wantSums(recs, nil))
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := strings.Join(seen, " ")
	mu.Unlock()
	want := "CREATED>REBALANCING REBALANCING>RUNNING RUNNING>PENDING_SHUTDOWN PENDING_SHUTDOWN>NOT_RUNNING"
	if got != want {
		t.Fatalf("transitions\n got %s\nwant %s", got, want)
	}
	if app.State() != runnel.NotRunning {
		t.Fatalf("state %v after Close", app.State())
	}
}
