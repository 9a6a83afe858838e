package runnel_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/console"
	"github.com/runnel-dev/runnel/internal/appstatus"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestConsoleStreamApp runs word count as two instances (a standby of each
// stateful task on the other) and reads them through the web console over
// TCP: the application is found from its group and its status records,
// its topology is drawn with its topics and stores linking to their pages,
// each instance lists its workers and its active and standby tasks with
// what they processed, their rate and end-to-end latency, an instance that
// stops cleanly disappears, and a new one shows what it restored.
func TestConsoleStreamApp(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 2, "lines", "word-counts")
	cl := newTestClient(t, addr, kgo.DefaultProduceTopic("lines"))
	var recs []*kgo.Record
	for _, l := range wordCountLines(7, 200) {
		recs = append(recs, &kgo.Record{Key: []byte(l), Value: []byte(l)})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	const app = "console-wc"
	topo := buildTopology(t, wordCount)
	opts := func() []runnel.AppOption {
		return []runnel.AppOption{runnel.ApplicationID(app), runnel.Brokers(addr), runnel.StateDir(t.TempDir()),
			runnel.StatusInterval(100 * time.Millisecond), runnel.StandbyReplicas(1), runnel.CommitInterval(50 * time.Millisecond)}
	}
	runApp(t, topo, nil, opts()...)
	second := runApp(t, topo, nil, opts()...)

	c, err := console.New(console.Config{Brokers: []string{addr}, SampleInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() { srv.Close(); c.Close() })
	read := func(path string, v any) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if v != nil && resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return resp.StatusCode, string(body)
	}

	// Two sub-topologies of 2 partitions: 4 active tasks; the counting
	// one is stateful, so 2 standbys.
	var got console.App
	// lines sums what the tasks reading the input report processed.
	lines := func() int64 {
		var n int64
		for _, in := range got.InstanceList {
			for _, tk := range in.Tasks {
				if !tk.Standby && strings.HasPrefix(tk.ID, "0_") {
					n += tk.Processed
				}
			}
		}
		return n
	}
	testutil.Eventually(t, 60*time.Second, func() (bool, string) {
		got = console.App{}
		if code, body := read("/api/apps/"+app, &got); code != http.StatusOK {
			return false, fmt.Sprintf("status %d: %s", code, body)
		}
		active, standby, running, lag := 0, 0, 0, int64(0)
		for _, in := range got.InstanceList {
			if in.State == "RUNNING" && len(in.Members) == 1 {
				running++
			}
			for _, tk := range in.Tasks {
				if tk.Standby {
					standby++
				} else {
					active++
					lag += tk.Lag
				}
			}
		}
		if running != 2 || active != 4 || standby != 2 || got.Lag != 0 {
			return false, fmt.Sprintf("%d running instances (want 2), %d active tasks (4), %d standby (2), group lag %d (0): %+v",
				running, active, standby, got.Lag, got.InstanceList)
		}
		return true, ""
	})
	// More input: the tasks' counts of processed records grow by it.
	before := lines()
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// While they flow, the tasks report a rate and an end-to-end
	// latency; keep input coming until a status record caught both.
	var rate, latency float64
	testutil.Eventually(t, 60*time.Second, func() (bool, string) {
		got = console.App{}
		read("/api/apps/"+app, &got)
		for _, in := range got.InstanceList {
			for _, tk := range in.Tasks {
				rate, latency = max(rate, tk.RecordsPerSec), max(latency, tk.LatencyMs)
			}
			if in.Workers != 1 || len(in.Members) != in.Workers {
				return false, fmt.Sprintf("instance %s: %d workers, members %v; want 1 each", in.Process, in.Workers, in.Members)
			}
		}
		done := lines() >= before+int64(len(recs)) && rate > 0 && latency > 0
		if !done {
			if err := cl.ProduceSync(t.Context(), recs[:10]...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		return done, fmt.Sprintf("%d lines processed (want %d), top task rate %v/s and latency %v ms (want both > 0)",
			lines(), before+int64(len(recs)), rate, latency)
	})
	if got.Graph == nil || len(got.Graph.Subs) != 2 {
		t.Fatalf("graph: %+v (error %q), want 2 sub-topologies", got.Graph, got.TopologyError)
	}
	nodes := map[string]console.TopoNode{}
	for _, s := range got.Graph.Subs {
		for _, n := range s.Nodes {
			nodes[n.Kind+" "+n.Name] = n
		}
		if len(s.Edges) == 0 {
			t.Errorf("sub-topology %d has no edges", s.ID)
		}
	}
	for key, link := range map[string]string{
		"topic lines":                         "/topics/lines",
		"topic word-counts":                   "/topics/word-counts",
		"topic " + app + "-words-repartition": "/topics/" + app + "-words-repartition",
		"store counts":                        "/topics/" + app + "-counts-changelog",
		"topic " + app + "-counts-changelog":  "/topics/" + app + "-counts-changelog",
	} {
		if n, ok := nodes[key]; !ok || n.Link != link {
			t.Errorf("node %s: %+v, want a link to %s; nodes: %v", key, n, link, nodes)
		}
	}

	var list []console.AppSummary
	read("/api/apps", &list)
	if len(list) != 1 || list[0].App != app || list[0].GroupState != "Stable" || list[0].Tasks != 4 {
		t.Errorf("apps: %+v, want %s Stable with 4 active tasks", list, app)
	}
	code, page := read("/apps/"+app, nil)
	for _, want := range []string{`<svg class="topology"`, `data-name="counts"`, `href="/topics/` + app + `-counts-changelog"`, `class="task" data-task="1_0"`, "standby"} {
		if code != http.StatusOK || !strings.Contains(page, want) {
			t.Errorf("app page (%d) lacks %s", code, want)
		}
	}
	if code, _ := read("/api/apps/no-such-app", nil); code != http.StatusNotFound {
		t.Errorf("unknown app: status %d, want 404", code)
	}

	// A clean stop writes a tombstone: the instance leaves the page.
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 60*time.Second, func() (bool, string) {
		got = console.App{}
		read("/api/apps/"+app, &got)
		if got.Instances != 1 || len(got.InstanceList) != 1 || got.Tasks != 4 {
			return false, fmt.Sprintf("%d instances with status, %d listed, %d active tasks; want 1, 1, 4", got.Instances, len(got.InstanceList), got.Tasks)
		}
		return true, ""
	})

	// An instance with an empty state directory restores the counting
	// tasks it is given from their changelog, and says how much it
	// restored.
	remaining := got.InstanceList[0].Process
	runApp(t, topo, nil, opts()...)
	testutil.Eventually(t, 60*time.Second, func() (bool, string) {
		got = console.App{}
		read("/api/apps/"+app, &got)
		for _, in := range got.InstanceList {
			if in.Process == remaining {
				continue
			}
			for _, tk := range in.Tasks {
				if strings.HasPrefix(tk.ID, "1_") && tk.Restored > 0 && !tk.Restoring && tk.RestorePercent == 100 {
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("no counting task of the new instance restored: %+v", got.InstanceList)
	})
}

// TestStatusIntervalOff: StatusInterval(0) writes no status: the status
// topic is never created, and the console finds the application from its
// group alone. An App with the default interval creates it.
func TestStatusIntervalOff(t *testing.T) {
	addr := startAppBroker(t)
	createTopics(t, addr, 1, "lines", "word-counts")
	adm := kadm.NewClient(newTestClient(t, addr))
	topo := buildTopology(t, wordCount)
	exists := func() bool {
		td, err := adm.ListTopics(t.Context(), appstatus.Topic)
		return err == nil && td[appstatus.Topic].Err == nil && len(td[appstatus.Topic].Partitions) > 0
	}
	off := runApp(t, topo, nil, runnel.ApplicationID("status-off"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()), runnel.StatusInterval(0))
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		return off.State() == runnel.Running, "app running, " + off.State().String()
	})
	// The console still finds the application, from its group: the
	// members' protocol, and the process each names in its metadata.
	c, err := console.New(console.Config{Brokers: []string{addr}, SampleInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer func() { srv.Close(); c.Close() }()
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		var list []console.AppSummary
		var a console.App
		for path, v := range map[string]any{"/api/apps": &list, "/api/apps/status-off": &a} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(v)
			resp.Body.Close()
		}
		ok := len(list) == 1 && list[0].App == "status-off" && list[0].GroupState == "Stable" && list[0].Members == 1 && list[0].Instances == 0 &&
			len(a.InstanceList) == 1 && a.InstanceList[0].Process != "?" && a.InstanceList[0].Process != "" && len(a.InstanceList[0].Members) == 1 && a.InstanceList[0].State == ""
		return ok, fmt.Sprintf("apps %+v, status-off %+v", list, a)
	})
	if err := off.Close(); err != nil {
		t.Fatal(err)
	}
	if exists() {
		t.Fatalf("%s exists though no App writes status", appstatus.Topic)
	}
	runApp(t, topo, nil, runnel.ApplicationID("status-on"), runnel.Brokers(addr), runnel.StateDir(t.TempDir()))
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		return exists(), appstatus.Topic + " created by an App with the default interval"
	})
}
