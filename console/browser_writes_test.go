package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/runnel-dev/runnel/console"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestBrowserWrites drives the write forms of a console with writes
// allowed, in headless Chromium, as a user would: produce a test record
// and set a config on a topic's page, create a topic and delete it,
// and reset an empty group's offsets, where the browser's confirmation
// dialog, dismissed, leaves the offsets alone and, accepted, resets them.
func TestBrowserWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	exe := findChromium()
	if exe == "" {
		const why = "Chromium is not installed (Debian: apt-get install chromium); the browser test needs it"
		if os.Getenv("RUNNEL_REQUIRE_PEERS") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	c := startCluster(t)
	con, err := console.New(console.Config{Brokers: []string{c.addr}, AllowWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	defer func() { srv.Close(); con.Close() }()
	web := srv.URL

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(testContext(t), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if _, err := chromedp.Run(bctx, chromedp.Location()); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}

	// The confirmation dialogs: answered with accept, and counted; any
	// other dialog (an injected alert) is a failure.
	var mu sync.Mutex
	accept, confirms := true, 0
	var problems []string
	dialogs := chromedp.Events(bctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			mu.Lock()
			ok := accept
			if ev.Type == page.DialogTypeConfirm {
				confirms++
			} else {
				problems = append(problems, fmt.Sprintf("dialog %s: %s", ev.Type, ev.Message))
			}
			mu.Unlock()
			chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: ok})
		}
	}()

	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	// submit fills a form's fields on the page at path, submits it, and
	// returns what its output says.
	submit := func(path, form string, fields map[string]string) string {
		t.Helper()
		steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(web + path), chromedp.WaitVisible(chromedp.CSS(form))}
		for name, v := range fields {
			sel := chromedp.CSS(form + ` [name="` + name + `"]`)
			steps = append(steps, chromedp.SetValue(sel, v))
		}
		steps = append(steps, chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)))
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s %s: %v", path, form, err)
		}
		out, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector('`+form+` output').textContent || false`, chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			t.Fatalf("%s %s: no answer: %v", path, form, err)
		}
		return out
	}
	wantDone := func(what, out string) {
		t.Helper()
		if !strings.HasPrefix(out, "done: ") {
			t.Fatalf("%s: %s", what, out)
		}
	}

	wantDone("produce", submit("/topics/orders", `form[data-kind="produce"]`, map[string]string{"key": "ui-key", "value": "from the browser", "partition": "2"}))
	m := browse(t, c, "from=earliest&partition=2")
	if len(m.Records) != 1 || m.Records[0].Key.Text != "ui-key" || m.Records[0].Value.Text != "from the browser" {
		t.Fatalf("the produced record: %+v", m.Records)
	}

	wantDone("set a config", submit("/topics/orders", `form[data-kind="config"]`, map[string]string{"name": "retention.ms", "value": "7200000"}))
	var tp console.Topic
	getJSON(t, web+"/api/topics/orders", &tp)
	set := false
	for _, cfg := range tp.Configs {
		set = set || cfg.Name == "retention.ms" && cfg.Value == "7200000" && cfg.Source == "topic"
	}
	if !set {
		t.Fatalf("retention.ms not set: %+v", tp.Configs)
	}

	wantDone("create a topic", submit("/topics", `form[data-kind="create-topic"]`, map[string]string{"name": "made-in-ui", "partitions": "2", "cleanup": "compact"}))
	getJSON(t, web+"/api/topics/made-in-ui", &tp)
	if len(tp.Partitions) != 2 {
		t.Fatalf("created topic: %+v", tp)
	}
	wantDone("delete a topic", submit("/topics/made-in-ui", `form[data-kind="delete-topic"]`, map[string]string{"confirm": "made-in-ui"}))
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		status, _, _ := get(t, web+"/api/topics/made-in-ui")
		return status == http.StatusNotFound, fmt.Sprintf("topic made-in-ui still there (%d)", status)
	})

	// Reset "lagging" (committed 1 in orders/0) to the earliest: first
	// dismissed in the dialog, then accepted.
	committed := func() int64 {
		var g console.Group
		getJSON(t, web+"/api/groups/lagging", &g)
		return g.Offsets[0].Committed
	}
	mu.Lock()
	accept = false
	mu.Unlock()
	reset := map[string]string{"to": "earliest", "confirm": "lagging"}
	if err := chromedp.Do(ctx, chromedp.Navigate(web+"/groups/lagging"), chromedp.WaitVisible(chromedp.CSS(`form[data-kind="reset"]`)),
		chromedp.SetValue(chromedp.CSS(`form[data-kind="reset"] [name="confirm"]`), "lagging"),
		chromedp.Click(chromedp.CSS(`form[data-kind="reset"] button[type="submit"]`))); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return confirms == 2, fmt.Sprintf("%d confirmations asked, want 2 (the delete, the dismissed reset)", confirms)
	})
	if got := committed(); got != 1 {
		t.Fatalf("a dismissed reset moved the offset to %d", got)
	}
	mu.Lock()
	accept = true
	mu.Unlock()
	wantDone("reset", submit("/groups/lagging", `form[data-kind="reset"]`, reset))
	if got := committed(); got != 0 {
		t.Fatalf("after the reset to the earliest: committed %d, want 0", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if confirms != 3 || len(problems) > 0 {
		t.Fatalf("%d confirmations (want 3); the browser reported:\n%s", confirms, strings.Join(problems, "\n"))
	}
}
