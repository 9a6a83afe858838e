package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/console"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

// findChromium returns the path of a Chromium or Chrome binary, or "".
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotPages are the pages TestBrowser loads, each saved as
// docs/console-NAME.png and shown in the README.
var screenshotPages = []string{"overview", "topics", "topic", "groups", "group", "apps", "schemas", "subject", "app"}

// TestScreenshotsInReadme: every page the browser test loads has its
// screenshot under docs/, and the README shows it.
func TestScreenshotsInReadme(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range screenshotPages {
		file := "docs/console-" + name + ".png"
		if fi, err := os.Stat(filepath.Join("..", file)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v (RUNNEL_CONSOLE_SCREENSHOTS=$PWD/docs go test ./console -run TestBrowser writes it)", file, err)
		}
		if !strings.Contains(string(readme), "]("+file+")") {
			t.Errorf("README.md does not show %s", file)
		}
	}
}

// TestBrowser loads the console's pages in headless Chromium against a
// broker holding records with HTML and script in them: each page renders
// its data, throws no JavaScript error, logs no console error (a Content
// Security Policy violation is one), and opens no dialog (an injected
// alert would). With RUNNEL_CONSOLE_SCREENSHOTS=DIR it saves a screenshot
// of each page there.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	exe := findChromium()
	if exe == "" {
		const why = "Chromium is not installed (Debian: apt-get install chromium); the browser test needs it"
		if os.Getenv("RUNNEL_REQUIRE_PEERS") == "1" {
			t.Fatal(why) // .ci/run installs it: a skip there would hide the test
		}
		t.Skip(why)
	}
	c := startClusterWith(t, func(cfg *broker.Config) { cfg.RegistryListen = "127.0.0.1:0" })
	registry := "http://" + c.b.RegistryAddr()
	registerOrderSchemas(t, registry)
	app := startWordCount(t, c.addr)
	// A console of its own that samples often, so that the charts have
	// points and the application's status shows within the test.
	con, err := console.New(console.Config{Brokers: []string{c.addr}, SampleInterval: 300 * time.Millisecond, AllowWrites: true,
		RegistryURL: registry})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	defer func() { srv.Close(); con.Close() }()
	web := srv.URL
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		var a console.App
		status, body, _ := get(t, web+"/api/apps/"+app)
		if status == http.StatusOK {
			json.Unmarshal([]byte(body), &a)
		}
		return status == http.StatusOK && a.Tasks == 4 && a.Graph != nil, fmt.Sprintf("app %s: %d %s", app, status, body)
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(testContext(t), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	var mu sync.Mutex
	var problems []string
	report := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	// The first call starts the browser, under the test's deadline.
	if err := chromedp.Listen(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			report("exception at %s:%d: %s %s", d.URL, d.LineNumber, d.Text, exceptionText(d))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				report("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *cdplog.EventEntryAdded:
			// Content Security Policy violations, failed loads.
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				report("log %s: %s (%s)", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
			}
		case *page.EventJavascriptDialogOpening:
			// An injected alert(); the page then blocks, and the
			// next step fails at its deadline.
			report("dialog %s: %s", ev.Type, ev.Message)
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	shots := os.Getenv("RUNNEL_CONSOLE_SCREENSHOTS")
	pages := []struct {
		name, path string
		// wait is a selector that appears once the page shows its data.
		wait string
		// js evaluates to a string the page must show.
		js, want string
	}{
		{"overview", "/", "#cluster-id", `document.querySelector("#partitions-online").textContent`, "/"},
		{"topics", "/topics", `a[href="/topics/orders"]`, `document.querySelector("#topics tbody").textContent`, "orders"},
		{"topic", "/topics/orders?from=earliest", "tr.record", `[...document.querySelectorAll("tr.record td:nth-child(4)")].map(e => e.textContent).join("|")`,
			evilKey + "|bin|json|k3|k4|k5"},
		{"groups", "/groups", `a[href="/groups/lagging"]`, `document.querySelector("#groups tbody").textContent`, evilGroup},
		{"group", "/groups/lagging", "tr.offset", `document.querySelector("#group-lag").textContent`, "4"},
		{"apps", "/apps", `a[href="/apps/` + app + `"]`, `document.querySelector("#apps tbody").textContent`, app},
		{"schemas", "/schemas", `a[href="/schemas/orders-value"]`, `document.querySelector("#subjects tbody").textContent`, "orders-value"},
		{"subject", "/schemas/orders-value", ".diff-add", `[...document.querySelectorAll(".diff-add")].map(e => e.textContent).join("")`, `"name": "note"`},
		{"app", "/apps/" + app, "svg.topology g.store", `[...document.querySelectorAll("svg.topology g.node")].map(e => e.dataset.name).join("|") + " tasks:" + document.querySelectorAll("tr.task").length`,
			"|counts|"},
	}
	var names []string
	for _, p := range pages {
		names = append(names, p.name)
	}
	if !slices.Equal(names, screenshotPages) {
		t.Fatalf("the test loads %v, screenshotPages lists %v: keep them one list", names, screenshotPages)
	}
	for _, p := range pages {
		ctx, cancel := context.WithTimeout(bctx, time.Minute)
		err := chromedp.Do(ctx, chromedp.Navigate(web+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait)))
		var got string
		if err == nil {
			got, err = chromedp.Run(ctx, chromedp.Evaluate[string](p.js))
		}
		if err == nil {
			// Every chart draws, and one has a few points (for the
			// screenshot).
			_, err = chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const cs = [...document.querySelectorAll("canvas[data-series]")];
				return cs.every(c => c.dataset.points !== undefined) && (cs.length === 0 || cs.some(c => Number(c.dataset.points) >= 5)); })()`))
			if err != nil {
				err = fmt.Errorf("charts: %w", err)
			}
		}
		if err == nil && shots != "" {
			var shot []byte
			if shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
				err = os.WriteFile(filepath.Join(shots, "console-"+p.name+".png"), shot, 0o644)
			}
		}
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		if !strings.Contains(got, p.want) {
			t.Errorf("%s: page shows %q, want %q", p.name, got, p.want)
		}
	}
	// The app page's graph links its store to its changelog topic, and
	// its task table lists the active and standby tasks.
	ctx, cancel := context.WithTimeout(bctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(web+"/apps/"+app), chromedp.WaitVisible(chromedp.CSS("tr.task"))); err != nil {
		t.Fatalf("app page: %v", err)
	}
	link, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("svg.topology g.store").parentElement.getAttribute("href")`))
	if err != nil || link != "/topics/"+app+"-counts-changelog" {
		t.Errorf("store node links to %q (%v), want its changelog topic", link, err)
	}
	tasks, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("tr.task")].map(e => e.dataset.task + " " + e.children[1].textContent).sort().join(",")`))
	if err != nil || tasks != "0_0 active,0_1 active,1_0 active,1_0 standby,1_1 active,1_1 standby" {
		t.Errorf("app tasks: %q (%v)", tasks, err)
	}

	// The group page's chart polls its series at once and its live
	// sections refresh after 5s: wait for both, and check that the
	// refreshed section still shows the lag.
	if err := chromedp.Do(ctx, chromedp.Navigate(web+"/groups/lagging")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`performance.getEntriesByType("resource").filter(e => e.name.endsWith("/api/series/groups/lagging")).length > 0 && performance.getEntriesByType("resource").filter(e => e.name.endsWith("/groups/lagging") && !e.name.includes("/api/")).length > 0`)); err != nil {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("group page chart and refresh: %v; the browser reported:\n%s", err, strings.Join(problems, "\n"))
	}
	lag, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#group-lag").textContent`))
	if err != nil || lag != "4" {
		t.Errorf("group lag after refresh: %q, %v", lag, err)
	}
	// New data shows without a reload: the group commits further, and
	// the open page (its marker still set: not reloaded) shows the new
	// lag and committed offset.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 3, LeaderEpoch: -1})
	if err := kadm.NewClient(cl).CommitAllOffsets(ctx, "lagging", os); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#group-lag").textContent === "2" &&
		document.querySelector("tr.offset td:nth-child(3)").textContent === "3" && window.notReloaded === true`)); err != nil {
		t.Errorf("the group page did not show the new commit without a reload: %v", err)
	}

	// The message browser's filters are in the page's URL: a filtered
	// view is a link to share, and opening it shows the same records.
	if err := chromedp.Do(ctx, chromedp.Navigate(web+"/topics/orders?from=earliest"), chromedp.WaitVisible(chromedp.CSS("tr.record")),
		chromedp.SetValue(chromedp.CSS(`form.browse input[name="key"]`), "json"),
		chromedp.Click(chromedp.CSS(`form.browse button[type="submit"]`))); err != nil {
		t.Fatalf("filter by key: %v", err)
	}
	// The form's GET navigates: evaluate until the new page answers.
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`location.search.includes("key=json") && document.querySelectorAll("tr.record").length === 1`))
		return err == nil && ok, fmt.Sprintf("the filtered page: %v", err)
	})
	shared, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(shared), chromedp.WaitVisible(chromedp.CSS("tr.record"))); err != nil {
		t.Fatal(err)
	}
	keys, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("tr.record td:nth-child(4)")].map(e => e.textContent).join("|")`))
	if err != nil || keys != "json" {
		t.Errorf("the shared link %s shows keys %q (%v), want json", shared, keys, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the browser reported:\n%s", strings.Join(problems, "\n"))
	}
}

// registerOrderSchemas registers two versions of the subject orders-value
// (the second adds a field) and sets its compatibility to FULL.
func registerOrderSchemas(t *testing.T, registry string) {
	t.Helper()
	reg, err := sr.NewClient(sr.URLs(registry))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	for _, s := range []string{
		`{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}`,
		`{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"note","type":"string","default":""}]}`,
	} {
		if _, err := reg.CreateSchema(ctx, "orders-value", sr.Schema{Schema: s}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range reg.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "orders-value") {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception == nil {
		return ""
	}
	return d.Exception.Description
}

// startWordCount runs a word-count application (two instances, a standby
// of its stateful tasks on the other) over 200 lines, and returns its
// application id.
func startWordCount(t *testing.T, addr string) string {
	t.Helper()
	const app = "wordcount"
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("lines"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testContext(t)
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 2, 1, nil, "lines", "word-counts"); err != nil {
		t.Fatal(err)
	}
	words := []string{"river", "stream", "brook", "creek", "runnel", "delta"}
	for i := range 200 {
		line := words[i%len(words)] + " " + words[(i*7)%len(words)]
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(line), Value: []byte(line)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	b := stream.NewBuilder()
	lines := stream.From(b, "lines", serde.String, serde.String)
	split := stream.FlatMapValues(lines, func(line string) []string { return strings.Fields(line) })
	counts := stream.GroupBy(split, func(_, w string) string { return w }, stream.Named("words")).Count(stream.Materialized("counts"))
	counts.ToStream().To("word-counts")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		a, err := runnel.NewApp(topo, runnel.ApplicationID(app), runnel.Brokers(addr), runnel.StateDir(t.TempDir()),
			runnel.StatusInterval(200*time.Millisecond), runnel.StandbyReplicas(1), runnel.Logger(nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
	}
	return app
}
