package console_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/console"
	"github.com/runnel-dev/runnel/internal/appstatus"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// statusTopology is the description the instances below publish: one
// sub-topology counting into a logged store.
const statusTopology = `Topologies:
   Sub-topology: 0
    Source: src (topics: [in])
      --> agg
    Processor: agg (stores: [totals])
      --> none
      <-- src
`

// TestAppStatusFigures writes status records as two instances of an
// application would (one fresh, one whose last record is old: it
// crashed) and reads them through the console: per task its kind, worker,
// records per second, lag, end-to-end latency and restore progress; per
// instance its state, workers and staleness; and a tombstone removes an
// instance.
func TestAppStatusFigures(t *testing.T) {
	c := startCluster(t)
	ctx := testContext(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.DefaultProduceTopic(appstatus.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, appstatus.Topic); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	fresh := appstatus.Status{App: "figures", Process: "p-fresh", Endpoint: "host-a:8080", State: "RUNNING", TimeMs: now.UnixMilli(),
		IntervalMs: 1000, Workers: 3, Topology: statusTopology, Changelogs: map[string]string{"totals": "figures-totals-changelog"},
		Tasks: []appstatus.Task{
			{ID: "0_0", Worker: 2, Processed: 1234, RecordsPerSec: 56.5, Lag: 78, LatencyMs: 9.25},
			{ID: "0_1", Standby: true, Worker: -1, Restored: 300, RestoreRemaining: 100, RestoreRate: 42, Restoring: true},
		}}
	crashed := appstatus.Status{App: "figures", Process: "p-crashed", State: "RUNNING", TimeMs: now.Add(-time.Hour).UnixMilli(),
		IntervalMs: 1000, Workers: 1, Topology: statusTopology,
		Tasks: []appstatus.Task{{ID: "0_1", Worker: 0, Processed: 5}}}
	for _, st := range []appstatus.Status{fresh, crashed} {
		rec := &kgo.Record{Key: appstatus.Key(st.App, st.Process), Value: appstatus.Encode(st)}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	con, err := console.New(console.Config{Brokers: []string{c.addr}, SampleInterval: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	t.Cleanup(func() { srv.Close(); con.Close() })

	var a console.App
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		a = console.App{}
		status, body, _ := get(t, srv.URL+"/api/apps/figures")
		return status == http.StatusOK && decode(body, &a) && len(a.InstanceList) == 2, fmt.Sprintf("%d %s", status, body)
	})
	// No group: the figures come from the status records alone.
	if a.GroupState != "" || a.Instances != 2 || a.Tasks != 2 || a.RecordsPerSec != 56.5 || a.Graph == nil {
		t.Errorf("summary %+v", a.AppSummary)
	}
	in := a.InstanceList[1] // sorted by process: p-crashed, p-fresh
	if in.Process != "p-fresh" || in.Endpoint != "host-a:8080" || in.State != "RUNNING" || in.Workers != 3 || in.Stale || len(in.Tasks) != 2 {
		t.Fatalf("fresh instance %+v", in)
	}
	if tk := in.Tasks[0]; tk.Standby || tk.Worker != 2 || tk.RecordsPerSec != 56.5 || tk.Lag != 78 || tk.LatencyMs != 9.25 || tk.Processed != 1234 || tk.RestorePercent != 100 {
		t.Errorf("active task %+v", tk)
	}
	if tk := in.Tasks[1]; !tk.Standby || !tk.Restoring || tk.RestorePercent != 75 || tk.RestoreRate != 42 {
		t.Errorf("restoring standby %+v", tk)
	}
	if old := a.InstanceList[0]; old.Process != "p-crashed" || !old.Stale || old.AgeSeconds < 3000 {
		t.Errorf("crashed instance %+v, want stale", old)
	}

	// The page shows the same.
	status, page, _ := get(t, srv.URL+"/apps/figures")
	for _, want := range []string{
		`<h3>p-fresh · host-a:8080 <span class="">RUNNING</span></h3>`,
		`· 3 workers`,
		`<tr class="task" data-task="0_0"><td>0_0</td><td>active</td><td>2</td><td class="rate">56.5</td><td>1234</td><td class="lag warn">78</td><td>9.2</td><td>–</td></tr>`,
		`<progress max="100" value="75"></progress> 75.0% (100 left, 42.0/s)`,
		`stale: last status`,
		`data-name="figures-totals-changelog"`,
	} {
		if status != http.StatusOK || !strings.Contains(page, want) {
			t.Errorf("app page (%d) lacks %s", status, want)
		}
	}

	// A clean stop's tombstone removes the instance.
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: appstatus.Key("figures", "p-crashed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		a = console.App{}
		getJSON(t, srv.URL+"/api/apps/figures", &a)
		return len(a.InstanceList) == 1 && a.InstanceList[0].Process == "p-fresh", fmt.Sprintf("instances %+v", a.InstanceList)
	})
}

// decode unmarshals a JSON body into v, reporting whether it could.
func decode(body string, v any) bool {
	return json.Unmarshal([]byte(body), v) == nil
}
