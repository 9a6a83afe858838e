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
