package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startQueryApp starts a word count instance of application "iq" that
// serves interactive queries at endpoint.
func startQueryApp(t *testing.T, addr, stateDir, endpoint string, hook func(task string), opts ...runnel.AppOption) *runnel.App {
	t.Helper()
	prepare := func(app *runnel.App) {
		if hook != nil {
			runnel.SetRestoreHook(app, hook)
		}
	}
	return runApp(t, buildTopology(t, wordCount), prepare, append([]runnel.AppOption{runnel.ApplicationID("iq"), runnel.Brokers(addr),
		runnel.StateDir(stateDir), runnel.CommitInterval(100 * time.Millisecond), runnel.ApplicationServer(endpoint)}, opts...)...)
}

// eventually polls check until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	testutil.EventuallyNil(t, 60*time.Second, what, check)
}

// localCounts reads every count app holds locally.
func localCounts(app *runnel.App) (map[string]int64, error) {
	view, err := runnel.QueryKeyValueStore(app, "counts", serde.String, serde.Int64)
	if err != nil {
		return nil, err
	}
	got := map[string]int64{}
	for kv, err := range view.All() {
		if err != nil {
			return nil, err
		}
		got[kv.Key] = kv.Value
	}
	return got, nil
}

// TestInteractiveQueriesTwoInstances: two instances of one application on
// one broker split the partitions; for every word, KeyInstance (asked of
// either instance) names the instance holding it, whose store returns its
// count, and the other instance's store does not have it. With two workers
// an instance is two group members, which Instances and KeyInstance see as
// one.
func TestInteractiveQueriesTwoInstances(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { testInteractiveQueriesTwoInstances(t, workers) })
	}
}

func testInteractiveQueriesTwoInstances(t *testing.T, workers int) {
	addr := startAppBroker(t)
	createTopics(t, addr, 4, "lines", "word-counts")
	apps := map[string]*runnel.App{
		"host-a:8080": startQueryApp(t, addr, t.TempDir(), "host-a:8080", nil, runnel.NumWorkers(workers)),
		"host-b:8080": startQueryApp(t, addr, t.TempDir(), "host-b:8080", nil, runnel.NumWorkers(workers)),
	}
	ctx := context.Background()
	eventually(t, "both instances run tasks", func() error {
		ins, err := apps["host-a:8080"].Instances(ctx)
		if err != nil {
			return err
		}
		if len(ins) != 2 {
			return errors.New("want 2 instances")
		}
		for _, in := range ins {
			if len(in.Partitions["iq-words-repartition"]) == 0 || !slices.Contains(in.Stores, "counts") {
				return errors.New("an instance runs no counting task yet")
			}
			if in.Local != (in.Endpoint == "host-a:8080") {
				t.Fatalf("instance %+v: Local is wrong", in)
			}
		}
		return nil
	})

	lines := wordCountLines(7, 300)
	want := countWords(lines)
	produceLines(t, newTestClient(t, addr), 0, lines)
	waitCounts(t, addr, want)

	eventually(t, "every word found where KeyInstance says", func() error {
		held := map[string]int{}
		for word, n := range want {
			var loc runnel.KeyLocation
			for endpoint, app := range apps {
				l, err := app.KeyInstance(ctx, "counts", []byte(word))
				if err != nil {
					return err
				}
				if l.Local != (l.Endpoint == endpoint) {
					t.Fatalf("KeyInstance(%q) asked of %s: %+v", word, endpoint, l)
				}
				if loc.Endpoint != "" && (l.Endpoint != loc.Endpoint || l.Partition != loc.Partition) {
					t.Fatalf("KeyInstance(%q): %+v from one instance, %+v from the other", word, loc, l)
				}
				loc = l
			}
			held[loc.Endpoint]++
			for endpoint, app := range apps {
				view, err := runnel.QueryKeyValueStore(app, "counts", serde.String, serde.Int64)
				if err != nil {
					t.Fatal(err)
				}
				got, ok, err := view.Get(word)
				if err != nil {
					return err
				}
				if endpoint != loc.Endpoint {
					if ok {
						t.Fatalf("%q is on %s, but %s has it too", word, loc.Endpoint, endpoint)
					}
					continue
				}
				if !ok || got != n {
					return errors.New("count of " + word + " not there yet")
				}
			}
		}
		if len(held) != 2 {
			t.Fatalf("words held by %v; want both instances to hold some", held)
		}
		return nil
	})

	union := map[string]int64{}
	var entries int64
	for _, app := range apps {
		got, err := localCounts(app)
		if err != nil {
			t.Fatal(err)
		}
		for w, n := range got {
			if _, dup := union[w]; dup {
				t.Fatalf("%q held by both instances", w)
			}
			union[w] = n
		}
		view, _ := runnel.QueryKeyValueStore(app, "counts", serde.String, serde.Int64)
		n, err := view.ApproximateNumEntries()
		if err != nil {
			t.Fatal(err)
		}
		entries += n
	}
	if !maps.Equal(union, want) || entries != int64(len(want)) {
		t.Fatalf("stores hold %v (%d entries); want %v", union, entries, want)
	}

	// Range reads the local part of a key range.
	for endpoint, app := range apps {
		view, _ := runnel.QueryKeyValueStore(app, "counts", serde.String, serde.Int64)
		for kv, err := range view.Range("a", "l") {
			if err != nil {
				t.Fatal(err)
			}
			if kv.Key < "a" || kv.Key > "l" || want[kv.Key] != kv.Value {
				t.Fatalf("%s: Range(a, l) gave %v", endpoint, kv)
			}
		}
	}

	if _, err := runnel.QueryKeyValueStore(apps["host-a:8080"], "nope", serde.String, serde.Int64); !errors.Is(err, runnel.ErrUnknownStore) {
		t.Fatalf("unknown store: %v", err)
	}
	if _, err := runnel.QueryWindowStore(apps["host-a:8080"], "counts", serde.String, serde.Int64); !errors.Is(err, runnel.ErrUnknownStore) {
		t.Fatalf("key-value store as a window store: %v", err)
	}
	a := apps["host-a:8080"]
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	view, _ := runnel.QueryKeyValueStore(a, "counts", serde.String, serde.Int64)
	if _, _, err := view.Get("the"); !errors.Is(err, runnel.ErrStoreUnavailable) {
		t.Fatalf("query after Close: %v", err)
	}
	if _, err := a.KeyInstance(ctx, "counts", []byte("the")); !errors.Is(err, runnel.ErrStoreUnavailable) {
		t.Fatalf("KeyInstance after Close: %v", err)
	}
}

// startRestoringQueryApp counts words from lines of seed with one
// instance, closes it, and starts a fresh one ("host-b:8080") whose
// counting tasks are held in restoration until release is called (or the
// test ends). It returns once a task is held, with that task and the
// counts.
func startRestoringQueryApp(t *testing.T, seed uint64) (app *runnel.App, task string, want map[string]int64, release func()) {
	t.Helper()
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines", "word-counts")
	lines := wordCountLines(seed, 200)
	want = countWords(lines)
	first := startQueryApp(t, addr, t.TempDir(), "host-a:8080", nil)
	produceLines(t, newTestClient(t, addr), 0, lines)
	waitCounts(t, addr, want)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	restoring := make(chan string)
	released := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(release)
	hook := func(task string) {
		if !strings.HasPrefix(task, "1_") { // sub-topology 1 counts; 0 only splits lines
			return
		}
		select {
		case restoring <- task:
		case <-released:
			return
		}
		<-released
	}
	app = startQueryApp(t, addr, t.TempDir(), "host-b:8080", hook)
	select {
	case task = <-restoring:
	case <-time.After(60 * time.Second):
		t.Fatal("no task restored")
	}
	return app, task, want, release
}

// TestInteractiveQueryDuringRestore: a fresh instance restoring the store
// from its changelog answers queries with ErrStoreUnavailable naming the
// restoring task, and with the restored counts once restoration is done.
func TestInteractiveQueryDuringRestore(t *testing.T) {
	second, task, want, release := startRestoringQueryApp(t, 8)
	view, err := runnel.QueryKeyValueStore(second, "counts", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = view.Get("the")
	if !errors.Is(err, runnel.ErrStoreUnavailable) || !strings.Contains(err.Error(), "task "+task+" is restoring") {
		t.Fatalf("query during restore: %v", err)
	}
	for _, err := range view.All() {
		if !errors.Is(err, runnel.ErrStoreUnavailable) {
			t.Fatalf("All during restore: %v", err)
		}
	}
	release()

	eventually(t, "restored counts", func() error {
		got, err := localCounts(second)
		if err != nil {
			return err
		}
		if !maps.Equal(got, want) {
			return errors.New("counts differ")
		}
		return nil
	})
	if second.Metrics().RecordsRestored == 0 {
		t.Fatal("the fresh instance restored nothing")
	}
}

// TestInteractiveQueryWindowAndSessionStores: windowed and session counts
// are read back per key through their views.
func TestInteractiveQueryWindowAndSessionStores(t *testing.T) {
	b := stream.NewBuilder()
	clicks := stream.From(b, "clicks", serde.String, serde.String).GroupByKey()
	stream.WindowedBy(clicks, stream.Tumbling(10*time.Second, time.Hour)).Count(stream.Materialized("per-10s"))
	stream.SessionWindowedBy(clicks, stream.Sessions(30*time.Second, time.Hour)).Count(stream.Materialized("sessions"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := runnel.NewApp(topo, runnel.ApplicationID("iq-windows"), runnel.StateDir(t.TempDir()),
		runnel.CreateSourceTopics(2), runnel.CommitInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	base := time.UnixMilli(1_700_000_000_000)
	var recs []*kgo.Record
	for _, c := range []struct {
		user string
		at   time.Duration
	}{{"ann", 0}, {"ann", 5 * time.Second}, {"ann", 12 * time.Second}, {"ann", 2 * time.Minute}, {"bob", time.Second}} {
		recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte(c.user), Value: []byte("/"), Timestamp: base.Add(c.at)})
	}
	if err := newTestClient(t, app.Brokers()[0]).ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	windows, err := runnel.QueryWindowStore(app, "per-10s", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := runnel.QuerySessionStore(app, "sessions", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	b0 := base.UnixMilli() / 10_000 * 10_000
	eventually(t, "windows and sessions of ann", func() error {
		var got []runnel.WindowValue[int64]
		for w, err := range windows.Fetch("ann", b0, b0+20_000) { // not the window at 2 min
			if err != nil {
				return err
			}
			got = append(got, w)
		}
		wantW := []runnel.WindowValue[int64]{{Start: b0, Value: 2}, {Start: b0 + 10_000, Value: 1}}
		if base.UnixMilli()%10_000 > 3_000 {
			t.Fatalf("base %d moves the windows", base.UnixMilli())
		}
		if !slices.Equal(got, wantW) {
			return fmt.Errorf("windows %v, want %v", got, wantW)
		}
		var gotS []stream.KeyValue[stream.Windowed[string], int64]
		for s, err := range sessions.Fetch("ann") {
			if err != nil {
				return err
			}
			gotS = append(gotS, s)
		}
		ms := base.UnixMilli()
		wantS := []stream.KeyValue[stream.Windowed[string], int64]{
			stream.KV(stream.Windowed[string]{Key: "ann", Start: ms, End: ms + 12_000}, int64(3)),
			stream.KV(stream.Windowed[string]{Key: "ann", Start: ms + 120_000, End: ms + 120_000}, int64(1)),
		}
		if !slices.Equal(gotS, wantS) {
			return fmt.Errorf("sessions %v, want %v", gotS, wantS)
		}
		return nil
	})
}
