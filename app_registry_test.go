package runnel_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel"
)

// TestAppRegistryURL checks that an App on its embedded broker serves a
// schema registry and tells its address, and one given brokers does not.
func TestAppRegistryURL(t *testing.T) {
	ctx := context.Background()
	app, err := runnel.NewApp(buildTopology(t, wordCount), runnel.ApplicationID("registry-url"), runnel.StateDir(t.TempDir()),
		runnel.CreateSourceTopics(1), runnel.CreateSinkTopics(1))
	if err != nil {
		t.Fatal(err)
	}
	if u := app.RegistryURL(); u != "" {
		t.Fatalf("RegistryURL before Start = %q", u)
	}
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	cl, err := sr.NewClient(sr.URLs(app.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := cl.CreateSchema(ctx, "lines-value", sr.Schema{Schema: `"string"`})
	if err != nil {
		t.Fatalf("register with the app's registry at %q: %v", app.RegistryURL(), err)
	}
	if got, err := cl.SchemaByID(ctx, s.ID); err != nil || got.Schema != `"string"` {
		t.Fatalf("schema %d: %+v, %v", s.ID, got, err)
	}

	other, err := runnel.NewApp(buildTopology(t, wordCount), runnel.ApplicationID("registry-url-2"),
		runnel.Brokers(startAppBroker(t)), runnel.StateDir(t.TempDir()), runnel.CreateSourceTopics(1), runnel.CreateSinkTopics(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if u := other.RegistryURL(); u != "" {
		t.Fatalf("RegistryURL of an app on given brokers = %q", u)
	}
}

// TestAppRegistryOptions: EmbeddedRegistry(false) starts the embedded
// broker without a registry; SchemaRegistryURL points the app at another
// registry, which RegistryURL then returns (and the embedded broker
// serves none); a URL that is not http(s) is refused.
func TestAppRegistryOptions(t *testing.T) {
	ctx := context.Background()
	start := func(id string, opts ...runnel.AppOption) *runnel.App {
		t.Helper()
		app, err := runnel.NewApp(buildTopology(t, wordCount), append([]runnel.AppOption{runnel.ApplicationID(id),
			runnel.StateDir(t.TempDir()), runnel.CreateSourceTopics(1), runnel.CreateSinkTopics(1)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := app.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { app.Close() })
		return app
	}
	off := start("registry-off", runnel.EmbeddedRegistry(false))
	if u := off.RegistryURL(); u != "" {
		t.Fatalf("RegistryURL with the embedded registry off = %q", u)
	}

	external := start("registry-external-owner")
	app := start("registry-external", runnel.SchemaRegistryURL(external.RegistryURL()))
	if u := app.RegistryURL(); u != external.RegistryURL() {
		t.Fatalf("RegistryURL = %q, want the external %q", u, external.RegistryURL())
	}
	cl, err := sr.NewClient(sr.URLs(app.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateSchema(ctx, "x-value", sr.Schema{Schema: `"long"`}); err != nil {
		t.Fatal(err)
	}
	ext, _ := sr.NewClient(sr.URLs(external.RegistryURL()))
	if subjects, err := ext.Subjects(ctx); err != nil || len(subjects) != 1 || subjects[0] != "x-value" {
		t.Fatalf("the external registry has %v, %v", subjects, err)
	}

	for _, bad := range []string{"localhost:8081", "ftp://h/", "http://"} {
		if _, err := runnel.NewApp(buildTopology(t, wordCount), runnel.ApplicationID("bad"), runnel.SchemaRegistryURL(bad)); err == nil {
			t.Errorf("SchemaRegistryURL(%q) accepted", bad)
		}
	}
}
