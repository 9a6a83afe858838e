package runnel_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/stream"
)

// TestAppCleanUpEmbedded: CleanUp refuses while the app runs; after Close
// it deletes the local stores but keeps the embedded broker's data, so the
// next run rebuilds the stores from their changelogs and counts on from
// where the first run stopped. (Reprocessing with runnel reset is
// in cmd/runnel.)
func TestAppCleanUpEmbedded(t *testing.T) {
	stateDir := t.TempDir()
	dir := filepath.Join(stateDir, "wc")
	newApp := func() *runnel.App {
		b := stream.NewBuilder()
		wordCount(b)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		app, err := runnel.NewApp(topo, runnel.ApplicationID("wc"), runnel.StateDir(stateDir), runnel.CreateSourceTopics(2), runnel.CreateSinkTopics(2))
		if err != nil {
			t.Fatal(err)
		}
		return app
	}
	start := func(app *runnel.App) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := app.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { app.Close() })
		return app.Brokers()[0]
	}

	first, second := wordCountLines(231, 100), wordCountLines(232, 100)
	a := newApp()
	if err := a.CleanUp(); err != nil {
		t.Fatalf("CleanUp before the first start: %v", err)
	}
	addr := start(a)
	produceLines(t, newTestClient(t, addr), 0, first)
	waitCounts(t, addr, countWords(first))
	if err := a.CleanUp(); !errors.Is(err, runnel.ErrAppRunning) {
		t.Fatalf("CleanUp of a running app: %v, want ErrAppRunning", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.CleanUp(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"broker"}) {
		t.Fatalf("after CleanUp the state directory holds %v, want the embedded broker's data only", names)
	}

	b := newApp()
	addr = start(b)
	produceLines(t, newTestClient(t, addr), len(first), second)
	waitCounts(t, addr, countWords(append(first, second...)))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Metrics().RecordsRestored == 0 {
		t.Fatal("the stores were not rebuilt from their changelogs")
	}
}

// TestAppCleanUpRemote: with bootstrap servers, CleanUp empties the
// application's state directory, and is a no-op when there is none.
func TestAppCleanUpRemote(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 1, "lines", "word-counts")
	stateDir := t.TempDir()
	app := startWordCount(t, addr, stateDir, runnel.ExactlyOnce)
	lines := wordCountLines(233, 50)
	produceLines(t, newTestClient(t, addr), 0, lines)
	waitCounts(t, addr, countWords(lines))
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := app.CleanUp(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(stateDir, "wc"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("after CleanUp: %v entries, err %v", len(entries), err)
	}
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	if err := app.CleanUp(); err != nil {
		t.Fatalf("CleanUp without a state directory: %v", err)
	}
}
