package runnel_test

import (
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"
)

// TestAppOptionsDefaultsAndString: the defaults of the runtime's options,
// and the Kafka Streams config names String prints them under.
func TestAppOptionsDefaultsAndString(t *testing.T) {
	topo := buildTopology(t, wordCount)
	app, err := runnel.NewApp(topo, runnel.ApplicationID("wc"))
	if err != nil {
		t.Fatal(err)
	}
	o := app.Options()
	if o.SessionTimeout != 45*time.Second || !o.LeaveGroupOnClose || o.StandbyReplicas != 0 || o.NumWorkers != 1 ||
		o.CommitInterval != 100*time.Millisecond {
		t.Fatalf("defaults: %s", o.String())
	}
	app, err = runnel.NewApp(topo, runnel.ApplicationID("wc"), runnel.StandbyReplicas(2), runnel.SessionTimeout(10*time.Second),
		runnel.LeaveGroupOnClose(false), runnel.ApplicationServer("h:1"), runnel.NumWorkers(3),
		runnel.UncaughtError(runnel.ReplaceWorker))
	if err != nil {
		t.Fatal(err)
	}
	got := app.Options()
	s := got.String()
	for _, want := range []string{"num.standby.replicas=2", "session.timeout.ms=10000", "leave.group.on.close=false",
		"application.server=h:1", "num.stream.threads=3", "uncaught.error.policy=replace_thread"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %s", s, want)
		}
	}
	if _, err := runnel.NewApp(topo, runnel.ApplicationID("wc"), runnel.StandbyReplicas(-1)); err == nil ||
		!strings.Contains(err.Error(), "standby replicas is negative") {
		t.Fatalf("NewApp with -1 standbys: %v", err)
	}
}
