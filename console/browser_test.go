package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
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
	c := startCluster(t)

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
	}
	for _, p := range pages {
		ctx, cancel := context.WithTimeout(bctx, time.Minute)
		err := chromedp.Do(ctx, chromedp.Navigate(c.web+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait)))
		var got string
		if err == nil {
			got, err = chromedp.Run(ctx, chromedp.Evaluate[string](p.js))
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
	// The group page's chart polls its API at once and its live sections
	// refresh after 5s: wait for both, and check that the refreshed
	// section still shows the lag.
	ctx, cancel := context.WithTimeout(bctx, time.Minute)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`performance.getEntriesByType("resource").filter(e => e.name.endsWith("/api/groups/lagging")).length > 0 && performance.getEntriesByType("resource").filter(e => e.name.endsWith("/groups/lagging") && !e.name.includes("/api/")).length > 0`)); err != nil {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("group page chart and refresh: %v; the browser reported:\n%s", err, strings.Join(problems, "\n"))
	}
	lag, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#group-lag").textContent`))
	if err != nil || lag != "4" {
		t.Errorf("group lag after refresh: %q, %v", lag, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the browser reported:\n%s", strings.Join(problems, "\n"))
	}
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception == nil {
		return ""
	}
	return d.Exception.Description
}
