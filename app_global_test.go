package runnel_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startCreditApp runs orders (order id -> customer id) left-joined with the
// global table of customers (customer id -> credit, an int64) into
// "enriched" as "customer:credit" ("customer:none" without a match). Start's
// error is returned, not fatal.
func startCreditApp(t *testing.T, addr, dir string, opts ...runnel.AppOption) (*runnel.App, error) {
	t.Helper()
	b := stream.NewBuilder()
	customers := stream.GlobalTableOf(b, "customers", serde.String, serde.Int64, stream.Materialized("credit"))
	orders := stream.From(b, "orders", serde.String, serde.String)
	stream.LeftJoinGlobal(orders, customers, func(_, c string) string { return c }, func(c string, credit *int64) string {
		if credit == nil {
			return c + ":none"
		}
		return c + ":" + strconv.FormatInt(*credit, 10)
	}).To("enriched")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := runnel.NewApp(topo, append([]runnel.AppOption{runnel.ApplicationID("credit"), runnel.Brokers(addr), runnel.StateDir(dir),
		runnel.CommitInterval(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	t.Cleanup(func() { app.Close() })
	return app, nil
}

func int64Bytes(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// produceCredits writes customer credits (records of i's: "c<i>" -> v).
func produceCredits(t *testing.T, cl *kgo.Client, credits ...int64) {
	t.Helper()
	var recs []*kgo.Record
	for i := 0; i < len(credits); i += 2 {
		recs = append(recs, &kgo.Record{Topic: "customers", Key: []byte(fmt.Sprintf("c%d", credits[i])), Value: int64Bytes(credits[i+1])})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func produceOrders(t *testing.T, cl *kgo.Client, orders ...string) {
	t.Helper()
	var recs []*kgo.Record
	for i := 0; i < len(orders); i += 2 {
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(orders[i]), Value: []byte(orders[i+1])})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// enriched is the latest output per order id.
func enriched(t *testing.T, addr string) map[string]string {
	out := map[string]string{}
	for _, r := range readTopic(t, addr, "enriched") {
		out[string(r.Key)] = string(r.Value)
	}
	return out
}

// waitEnriched polls the output until ok accepts it.
func waitEnriched(t *testing.T, addr string, what string, ok func(map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := enriched(t, addr)
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: output %v", what, got)
		}
		time.Sleep(20 * time.Millisecond) // polling a broker, not waiting for an event we could observe
	}
}

func hasAll(want map[string]string) func(map[string]string) bool {
	return func(got map[string]string) bool {
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
}

// TestAppGlobalTableJoin: a stream joined with a GlobalKTable whose topic
// (3 partitions, read whole by every instance) is written before the app
// starts, during processing, and while it is stopped. The bootstrap makes
// what was written before Start visible to the first record; updates made
// during processing show up without a restart; a restart reads only the
// global topic's tail, a fresh instance all of it.
func TestAppGlobalTableJoin(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 3, "customers")
	createTopics(t, addr, 2, "orders", "enriched")
	cl := newTestClient(t, addr)

	var credits []int64
	for i := range int64(20) {
		credits = append(credits, i, 10*i)
	}
	produceCredits(t, cl, credits...)
	dir := t.TempDir()
	app, err := startCreditApp(t, addr, dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := app.Metrics(); m.RecordsRestored != 20 {
		t.Fatalf("bootstrap read %d records, want 20", m.RecordsRestored)
	}
	// Bootstrapped before any task ran: the first orders see every customer.
	want := map[string]string{}
	var orders []string
	for i := range 20 {
		o, c := fmt.Sprintf("o%d", i), fmt.Sprintf("c%d", i)
		orders = append(orders, o, c)
		want[o] = fmt.Sprintf("%s:%d", c, 10*i)
	}
	orders = append(orders, "o-unknown", "c20")
	want["o-unknown"] = "c20:none"
	produceOrders(t, cl, orders...)
	waitEnriched(t, addr, "orders after bootstrap", hasAll(want))

	// Written during processing: c20 appears, c0 changes. Probe orders until
	// the join sees both; once it has seen a new value it never sees the old
	// one again.
	produceCredits(t, cl, 20, 2000, 0, 999)
	deadline := time.Now().Add(60 * time.Second)
	for probe := 0; ; probe++ {
		a, b := fmt.Sprintf("p%d-a", probe), fmt.Sprintf("p%d-b", probe)
		produceOrders(t, cl, a, "c20", b, "c0")
		got := waitEnriched(t, addr, "probe", func(got map[string]string) bool { return got[a] != "" && got[b] != "" })
		if got[a] == "c20:2000" && got[b] == "c0:999" {
			for p := range probe {
				pa, pb := got[fmt.Sprintf("p%d-a", p)], got[fmt.Sprintf("p%d-b", p)]
				if (pa != "c20:none" && pa != "c20:2000") || (pb != "c0:0" && pb != "c0:999") {
					t.Fatalf("probe %d joined %q and %q", p, pa, pb)
				}
			}
			t.Logf("updates seen by probe %d", probe)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("updates of the global topic never reached the join: %q %q", got[a], got[b])
		}
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}

	// Written while stopped: a restart on the same state reads those 5 only.
	produceCredits(t, cl, 21, 2100, 22, 2200, 23, 2300, 1, 111, 2, 222)
	app, err = startCreditApp(t, addr, dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := app.Metrics(); m.RecordsRestored != 5 {
		t.Fatalf("restarted instance read %d global records, want the 5 of the tail", m.RecordsRestored)
	}
	produceOrders(t, cl, "r1", "c21", "r2", "c1", "r3", "c20", "r4", "c0")
	waitEnriched(t, addr, "orders after restart", hasAll(map[string]string{
		"r1": "c21:2100", "r2": "c1:111", "r3": "c20:2000", "r4": "c0:999"}))
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}

	// A fresh instance reads the whole topic.
	app, err = startCreditApp(t, addr, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if m := app.Metrics(); m.RecordsRestored != 27 {
		t.Fatalf("fresh instance read %d global records, want 27", m.RecordsRestored)
	}
	produceOrders(t, cl, "f1", "c23", "f2", "c2")
	waitEnriched(t, addr, "orders on a fresh instance", hasAll(map[string]string{"f1": "c23:2300", "f2": "c2:222"}))
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoGlobalUpdater(t)
}

// checkNoGlobalUpdater fails if a global updater goroutine outlived its App.
func checkNoGlobalUpdater(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "(*globalUpdater).run") {
		t.Fatalf("a global updater goroutine is still running:\n%s", stacks)
	}
}

// TestAppGlobalTableBadRecord: a global record whose value does not
// deserialize stops the application with an error naming it; its position
// is not committed, so a restart meets it again, in the bootstrap, and Start
// fails with the same error.
func TestAppGlobalTableBadRecord(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 3, "customers")
	createTopics(t, addr, 2, "orders", "enriched")
	cl := newTestClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceCredits(t, cl, 1, 10, 2, 20) // partition 0
	dir := t.TempDir()
	app, err := startCreditApp(t, addr, dir)
	if err != nil {
		t.Fatal(err)
	}
	produceOrders(t, cl, "o1", "c1")
	waitEnriched(t, addr, "before the bad record", hasAll(map[string]string{"o1": "c1:10"}))

	bad := &kgo.Record{Topic: "customers", Partition: 1, Key: []byte("c3"), Value: []byte("abc")}
	if err := cl.ProduceSync(context.Background(),
		&kgo.Record{Topic: "customers", Partition: 1, Key: []byte("c4"), Value: int64Bytes(40)}, bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-app.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the app kept running past a global record it cannot deserialize")
	}
	where := fmt.Sprintf("customers[1] at offset %d", bad.Offset)
	err = app.Close()
	if !errors.Is(err, topology.ErrDeserialization) || !strings.Contains(err.Error(), where) {
		t.Fatalf("Close = %v; want a deserialization error naming %s", err, where)
	}
	if !errors.Is(app.Err(), topology.ErrDeserialization) {
		t.Fatalf("Err = %v", app.Err())
	}

	_, err = startCreditApp(t, addr, dir)
	if !errors.Is(err, topology.ErrDeserialization) || !strings.Contains(err.Error(), where) {
		t.Fatalf("restart: Start = %v; want a deserialization error naming %s", err, where)
	}
	checkNoGlobalUpdater(t)
}

// TestAppGlobalTableBadRecordHandled: the deserialization handler decides
// for global records too: log-and-continue skips the record and the global
// table goes on; a dead-letter queue also gets the record, with the error
// in its headers.
func TestAppGlobalTableBadRecordHandled(t *testing.T) {
	for _, dlq := range []bool{false, true} {
		t.Run(fmt.Sprintf("dlq=%t", dlq), func(t *testing.T) {
			addr := startAppBroker(t)
			createTopics(t, addr, 3, "customers")
			createTopics(t, addr, 2, "orders", "enriched")
			cl := newTestClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			produceCredits(t, cl, 1, 10)
			handler := runnel.LogAndContinue
			if dlq {
				handler = runnel.DeadLetterQueue("credit-dlq")
			}
			app, err := startCreditApp(t, addr, t.TempDir(), runnel.DeserializationErrorHandler(handler))
			if err != nil {
				t.Fatal(err)
			}
			bad := &kgo.Record{Topic: "customers", Partition: 1, Key: []byte("c3"), Value: []byte("abc")}
			if err := cl.ProduceSync(context.Background(), bad,
				&kgo.Record{Topic: "customers", Partition: 1, Key: []byte("c4"), Value: int64Bytes(40)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			// The record after the bad one reaches the global table.
			for i := 0; ; i++ {
				id := fmt.Sprintf("o%d", i)
				produceOrders(t, cl, id, "c4")
				got := waitEnriched(t, addr, "a probe order joined", func(m map[string]string) bool { return m[id] != "" })
				if got[id] == "c4:40" {
					break
				}
			}
			if m := app.Metrics(); m.DeserializationErrors != 1 {
				t.Fatalf("DeserializationErrors = %d, want 1", m.DeserializationErrors)
			}
			if !dlq {
				return
			}
			dead := readTopic(t, addr, "credit-dlq")
			if len(dead) != 1 || string(dead[0].Key) != "c3" || string(dead[0].Value) != "abc" {
				t.Fatalf("dead letters %v", dead)
			}
			headers := map[string]string{}
			for _, h := range dead[0].Headers {
				headers[h.Key] = string(h.Value)
			}
			if headers[runnel.HeaderErrorTopic] != "customers" || headers[runnel.HeaderErrorOffset] != strconv.FormatInt(bad.Offset, 10) {
				t.Fatalf("dead letter headers %v", headers)
			}
		})
	}
}
