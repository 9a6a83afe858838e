package runnel_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"
)

// TestAppLogsWhatItDoes: an application on the embedded broker logs the
// broker's address (so input can be produced to it from elsewhere), each
// state change, and each rebalance; the default logger prints INFO to
// standard error and Logger(nil) silences it.
func TestAppLogsWhatItDoes(t *testing.T) {
	var buf lockedBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	app := runApp(t, buildTopology(t, wordCount), nil, runnel.ApplicationID("logs"), runnel.StateDir(t.TempDir()),
		runnel.CreateSourceTopics(1), runnel.CreateSinkTopics(1), runnel.Logger(logger))
	waitFor(t, "RUNNING", func() bool { return app.State() == runnel.Running })
	addr := app.Brokers()[0]
	for _, want := range []string{
		`msg="runnel: embedded broker started" bootstrap_server=` + addr,
		`msg="runnel: state REBALANCING" from=CREATED`,
		`msg="runnel: state RUNNING" from=REBALANCING`,
		`msg="stream: assigned"`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, buf.String())
		}
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `msg="runnel: state NOT_RUNNING" from=PENDING_SHUTDOWN`) {
		t.Errorf("the log lacks the shutdown:\n%s", buf.String())
	}

	def, err := runnel.NewApp(buildTopology(t, wordCount), runnel.ApplicationID("logs"))
	if err != nil {
		t.Fatal(err)
	}
	if l := def.Options().Logger; !l.Enabled(context.Background(), slog.LevelInfo) || l.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("the default logger does not log at INFO")
	}
	silent, err := runnel.NewApp(buildTopology(t, wordCount), runnel.ApplicationID("logs"), runnel.Logger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if silent.Options().Logger.Enabled(context.Background(), slog.LevelError) {
		t.Error("Logger(nil) does not silence the application")
	}
}

// TestAppMetricsAddr: MetricsAddr serves the application's metrics with the
// Go and process collectors from Start, with no registry of the caller's,
// and stops serving at Close.
func TestAppMetricsAddr(t *testing.T) {
	app := runApp(t, buildTopology(t, wordCount), nil, runnel.ApplicationID("metrics-addr"), runnel.StateDir(t.TempDir()),
		runnel.CreateSourceTopics(1), runnel.CreateSinkTopics(1), runnel.MetricsAddr("127.0.0.1:0"), runnel.Logger(nil))
	url := "http://" + app.MetricsAddr() + "/metrics"
	get := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	body, err := get()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", `runnel_stream_state{application_id="metrics-addr"`, "runnel_stream_commits_total"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := get(); err == nil {
		t.Error("metrics still served after Close")
	}
	if app.MetricsAddr() != "" {
		t.Error("MetricsAddr still set after Close")
	}
}
