package runnel_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
		o.CommitInterval != 100*time.Millisecond || o.CacheBytes != 10<<20 || o.StateDir == "" || o.Logger == nil ||
		o.StatusInterval != 5*time.Second || !strings.Contains(o.String(), "status.interval.ms=5000") ||
		o.MaxTaskIdle != 0 || !strings.Contains(o.String(), "max.task.idle.ms=0") ||
		o.MaxSourceDrift != time.Second || !strings.Contains(o.String(), "max.source.drift.ms=1000") {
		t.Fatalf("defaults: %s", o.String())
	}
	app, err = runnel.NewApp(topo, runnel.ApplicationID("wc"), runnel.StandbyReplicas(2), runnel.SessionTimeout(10*time.Second),
		runnel.LeaveGroupOnClose(false), runnel.ApplicationServer("h:1"), runnel.NumWorkers(3),
		runnel.UncaughtError(runnel.ReplaceWorker), runnel.MaxTaskIdle(250*time.Millisecond), runnel.MaxSourceDrift(-1))
	if err != nil {
		t.Fatal(err)
	}
	got := app.Options()
	s := got.String()
	for _, want := range []string{"num.standby.replicas=2", "session.timeout.ms=10000", "leave.group.on.close=false",
		"application.server=h:1", "num.stream.threads=3", "uncaught.error.policy=replace_thread", "max.task.idle.ms=250", "max.source.drift.ms=-1"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %s", s, want)
		}
	}
}

// TestAppOptionsExplicitValuesKept: every option's value reaches the
// options in force, an explicit zero or false included (EnsureDefaults
// used to replace CommitInterval(0) and CacheBytes(0) with defaults), and
// whatever order the options come in.
func TestAppOptionsExplicitValuesKept(t *testing.T) {
	topo := buildTopology(t, wordCount)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	listener := func(old, new runnel.State) {}
	dlq := runnel.DeadLetterQueue("dead")
	for _, tc := range []struct {
		name  string
		opt   func() runnel.AppOption
		check func(o runnel.AppOptions) bool
	}{
		{"Brokers", func() runnel.AppOption { return runnel.Brokers("a:1", "b:2") }, func(o runnel.AppOptions) bool { return strings.Join(o.Brokers, ",") == "a:1,b:2" }},
		{"ProcessingGuarantee", func() runnel.AppOption { return runnel.ProcessingGuarantee(runnel.AtLeastOnce) }, func(o runnel.AppOptions) bool {
			return o.Guarantee == runnel.AtLeastOnce && o.CommitInterval == 30*time.Second
		}},
		{"CommitInterval(0)", func() runnel.AppOption { return runnel.CommitInterval(0) }, func(o runnel.AppOptions) bool { return o.CommitInterval == 0 }},
		{"CommitInterval", func() runnel.AppOption { return runnel.CommitInterval(7 * time.Second) }, func(o runnel.AppOptions) bool { return o.CommitInterval == 7*time.Second }},
		{"StateDir", func() runnel.AppOption { return runnel.StateDir("/tmp/x") }, func(o runnel.AppOptions) bool { return o.StateDir == "/tmp/x" }},
		{"NumWorkers", func() runnel.AppOption { return runnel.NumWorkers(4) }, func(o runnel.AppOptions) bool { return o.NumWorkers == 4 }},
		{"CacheBytes(0)", func() runnel.AppOption { return runnel.CacheBytes(0) }, func(o runnel.AppOptions) bool { return o.CacheBytes == 0 }},
		{"CacheBytes", func() runnel.AppOption { return runnel.CacheBytes(123) }, func(o runnel.AppOptions) bool { return o.CacheBytes == 123 }},
		{"CreateSourceTopics", func() runnel.AppOption { return runnel.CreateSourceTopics(5) }, func(o runnel.AppOptions) bool { return o.SourcePartitions == 5 }},
		{"ApplicationServer", func() runnel.AppOption { return runnel.ApplicationServer("h:9") }, func(o runnel.AppOptions) bool { return o.ApplicationServer == "h:9" }},
		{"StandbyReplicas", func() runnel.AppOption { return runnel.StandbyReplicas(2) }, func(o runnel.AppOptions) bool { return o.StandbyReplicas == 2 }},
		{"SessionTimeout", func() runnel.AppOption { return runnel.SessionTimeout(time.Second) }, func(o runnel.AppOptions) bool { return o.SessionTimeout == time.Second }},
		{"LeaveGroupOnClose(false)", func() runnel.AppOption { return runnel.LeaveGroupOnClose(false) }, func(o runnel.AppOptions) bool { return !o.LeaveGroupOnClose }},
		{"Logger", func() runnel.AppOption { return runnel.Logger(logger) }, func(o runnel.AppOptions) bool { return o.Logger == logger }},
		{"Logger(nil)", func() runnel.AppOption { return runnel.Logger(nil) }, func(o runnel.AppOptions) bool { return o.Logger != nil && !o.Logger.Enabled(nil, slog.LevelError) }},
		{"ReplicationFactor", func() runnel.AppOption { return runnel.ReplicationFactor(3) }, func(o runnel.AppOptions) bool { return o.ReplicationFactor == 3 }},
		{"RepartitionPurgeInterval", func() runnel.AppOption { return runnel.RepartitionPurgeInterval(time.Minute) }, func(o runnel.AppOptions) bool {
			return o.RepartitionPurgeInterval == time.Minute
		}},
		{"DeserializationErrorHandler", func() runnel.AppOption { return runnel.DeserializationErrorHandler(dlq) }, func(o runnel.AppOptions) bool { return o.DeserializationHandler != nil }},
		{"ProductionErrorHandler", func() runnel.AppOption { return runnel.ProductionErrorHandler(runnel.ProductionLogAndContinue) }, func(o runnel.AppOptions) bool {
			return o.ProductionHandler != nil
		}},
		{"UncaughtError", func() runnel.AppOption { return runnel.UncaughtError(runnel.ReplaceWorker) }, func(o runnel.AppOptions) bool { return o.UncaughtErrorPolicy == runnel.ReplaceWorker }},
		{"StateListener", func() runnel.AppOption { return runnel.StateListener(listener) }, func(o runnel.AppOptions) bool { return o.StateListener != nil }},
		{"MetricsRegisterer", func() runnel.AppOption { return runnel.MetricsRegisterer(prometheus.NewRegistry()) }, func(o runnel.AppOptions) bool { return o.MetricsRegisterer != nil }},
		{"StatusInterval(0)", func() runnel.AppOption { return runnel.StatusInterval(0) }, func(o runnel.AppOptions) bool { return o.StatusInterval == 0 }},
		{"StatusInterval", func() runnel.AppOption { return runnel.StatusInterval(time.Minute) }, func(o runnel.AppOptions) bool { return o.StatusInterval == time.Minute }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The option before and after the application id, with the
			// guarantee last, so that no default depends on the order.
			for _, opts := range [][]runnel.AppOption{
				{tc.opt(), runnel.ApplicationID("wc")},
				{runnel.ApplicationID("wc"), tc.opt()},
			} {
				app, err := runnel.NewApp(topo, opts...)
				if err != nil {
					t.Fatal(err)
				}
				if o := app.Options(); !tc.check(o) {
					t.Fatalf("option not in force: %s", o.String())
				}
			}
		})
	}
}

// TestAppOptionsInvalid: values that cannot work are refused by NewApp, all
// problems in one error, each naming the option.
func TestAppOptionsInvalid(t *testing.T) {
	topo := buildTopology(t, wordCount)
	_, err := runnel.NewApp(topo, runnel.ApplicationID("wc"), runnel.StandbyReplicas(-1), runnel.NumWorkers(0),
		runnel.CommitInterval(-time.Second), runnel.CacheBytes(-1), runnel.SessionTimeout(0), runnel.StateDir(""), runnel.StatusInterval(-time.Second),
		runnel.MaxTaskIdle(-time.Second))
	if err == nil {
		t.Fatal("NewApp took invalid options")
	}
	for _, want := range []string{"standby replicas is negative", "num workers 0 is below 1", "commit interval -1s is negative",
		"cache bytes -1 is negative", "session timeout 0s is not positive", "state dir is empty", "status interval -1s is negative",
		"max task idle -1s is negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
