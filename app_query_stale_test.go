package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/stream/serde"
)

// staleCounts reads every count app holds locally, standbys included.
func staleCounts(app *runnel.App) (map[string]int64, error) {
	view, err := runnel.QueryKeyValueStore(app, "counts", serde.String, serde.Int64, runnel.StaleStores())
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

// TestInteractiveQueryStaleStores: two instances with one standby replica
// each. For every word KeyInstance names the active instance and the other
// as the standby; the standby's plain view does not have the word, its
// StaleStores view returns the active's count once the standby caught up,
// and so each instance's StaleStores view holds every count.
func TestInteractiveQueryStaleStores(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines", "word-counts")
	apps := map[string]*runnel.App{
		"host-a:8080": startQueryApp(t, addr, t.TempDir(), "host-a:8080", nil, runnel.StandbyReplicas(1)),
		"host-b:8080": startQueryApp(t, addr, t.TempDir(), "host-b:8080", nil, runnel.StandbyReplicas(1)),
	}
	ctx := context.Background()
	eventually(t, "each instance runs one counting task and keeps the other's standby", func() error {
		for endpoint, app := range apps {
			if m := app.Metrics(); m.StandbyTasks != 1 {
				return fmt.Errorf("%s: %d standby tasks", endpoint, m.StandbyTasks)
			}
		}
		return nil
	})

	lines := wordCountLines(17, 300)
	want := countWords(lines)
	produceLines(t, newTestClient(t, addr), 0, lines)
	waitCounts(t, addr, want)

	eventually(t, "every word's standby named and caught up", func() error {
		held := map[string]int{}
		for word, n := range want {
			loc, err := apps["host-a:8080"].KeyInstance(ctx, "counts", []byte(word))
			if err != nil {
				return err
			}
			if len(loc.Standbys) != 1 {
				return fmt.Errorf("KeyInstance(%q): standbys %+v, want one", word, loc.Standbys)
			}
			sb := loc.Standbys[0]
			if sb.Endpoint == loc.Endpoint || sb.Process == loc.Process || apps[sb.Endpoint] == nil {
				t.Fatalf("KeyInstance(%q): active %s/%s, standby %+v", word, loc.Endpoint, loc.Process, sb)
			}
			if sb.Local != (sb.Endpoint == "host-a:8080") {
				t.Fatalf("KeyInstance(%q) asked of host-a: standby %+v: Local is wrong", word, sb)
			}
			held[loc.Endpoint]++

			standby := apps[sb.Endpoint]
			plain, err := runnel.QueryKeyValueStore(standby, "counts", serde.String, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok, err := plain.Get(word); err != nil {
				return err
			} else if ok {
				t.Fatalf("%q is active on %s, but the plain view of its standby %s has it", word, loc.Endpoint, sb.Endpoint)
			}
			stale, err := runnel.QueryKeyValueStore(standby, "counts", serde.String, serde.Int64, runnel.StaleStores())
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := stale.Get(word)
			if err != nil {
				return err
			}
			if !ok || got != n {
				return fmt.Errorf("standby %s: count of %q is %d (found %v), want %d", sb.Endpoint, word, got, ok, n)
			}
		}
		if len(held) != 2 {
			t.Fatalf("words active on %v; want both instances to hold some", held)
		}
		return nil
	})

	// Each instance's stale view holds every count: its active task's and
	// its standby's.
	for endpoint, app := range apps {
		got, err := staleCounts(app)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%s: stale view holds %d counts, want all %d", endpoint, len(got), len(want))
		}
		view, _ := runnel.QueryKeyValueStore(app, "counts", serde.String, serde.Int64, runnel.StaleStores())
		if n, err := view.ApproximateNumEntries(); err != nil || n != int64(len(want)) {
			t.Fatalf("%s: stale view counts %d entries (%v), want %d", endpoint, n, err, len(want))
		}
		local, err := localCounts(app)
		if err != nil {
			t.Fatal(err)
		}
		if len(local) == 0 || len(local) == len(want) {
			t.Fatalf("%s: plain view holds %d of %d counts; want only its active task's", endpoint, len(local), len(want))
		}
	}

	a := apps["host-a:8080"]
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := staleCounts(a); !errors.Is(err, runnel.ErrStoreUnavailable) {
		t.Fatalf("stale query after Close: %v", err)
	}
}

// TestInteractiveQueryStaleStoresDuringRestore: while a fresh instance
// restores the store, the plain view fails with ErrStoreUnavailable but a
// StaleStores view answers with what was restored so far (never more than
// the counts), and with every count once restoration is done.
func TestInteractiveQueryStaleStoresDuringRestore(t *testing.T) {
	second, _, want, release := startRestoringQueryApp(t, 18)
	plain, err := runnel.QueryKeyValueStore(second, "counts", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := plain.Get("the"); !errors.Is(err, runnel.ErrStoreUnavailable) {
		t.Fatalf("plain query during restore: %v", err)
	}
	got, err := staleCounts(second)
	if err != nil {
		t.Fatalf("stale query during restore: %v", err)
	}
	for w, n := range got {
		if n > want[w] {
			t.Fatalf("stale view during restore: %q counted %d, more than %d", w, n, want[w])
		}
	}
	release()

	eventually(t, "restored counts in the stale view", func() error {
		got, err := staleCounts(second)
		if err != nil {
			return err
		}
		if !maps.Equal(got, want) {
			return errors.New("counts differ")
		}
		return nil
	})
}
