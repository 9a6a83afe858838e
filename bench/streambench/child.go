package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The restart workload runs its application in a child process: this
// binary, re-executed with childEnv set, so that it can be killed with
// SIGKILL. The child's settings come in these variables.
const (
	childEnv        = "STREAMBENCH_CHILD"      // "1": run as the child
	childBrokerEnv  = "STREAMBENCH_BROKER"     // bootstrap server; empty: the App's embedded broker
	childProbeEnv   = "STREAMBENCH_PROBE"      // if set, a line to produce once started
	childDirEnv     = "STREAMBENCH_STATE_DIR"  // state directory
	childProfileEnv = "STREAMBENCH_CPUPROFILE" // CPU profile of the start, until the second record is processed
)

// The child's application: an exactly-once word count over keyLines.
const (
	keysApp    = "keys"
	keysInput  = "keys-lines"
	keysOutput = "keys-counts"
)

// childOut serializes the child's report lines on stdout:
//
//	EV <unix ns> <event> [detail]   something happened
//	ADDR <host:port>                the broker the application uses
//	METRICS <processed> <restored> <commits> <aborts>
type childOut struct{ mu sync.Mutex }

func (o *childOut) println(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func (o *childOut) event(name, detail string) {
	o.println("EV %d %s %s", time.Now().UnixNano(), name, detail)
}

// runChild runs the keys word count until SIGTERM. It reports "main" as
// soon as it runs, "started" when Start returns, every log record of the
// runtime as a "log" event, "first" when it has processed a record and
// "second" when two (the probe line and, through the repartition topic,
// its word), and its metrics whenever they change.
func runChild() int {
	out := &childOut{}
	out.event("main", "")
	if path := os.Getenv(childProfileEnv); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child: cpu profile:", err)
			return 2
		}
		defer f.Close()
	}
	profiling := os.Getenv(childProfileEnv) != ""
	stopProfile := func() {
		if profiling {
			pprof.StopCPUProfile()
			profiling = false
		}
	}
	defer stopProfile()

	topo, err := wordCount(keysInput, keysOutput)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: build:", err)
		return 2
	}
	opts := []runnel.AppOption{runnel.ApplicationID(keysApp), runnel.StateDir(os.Getenv(childDirEnv)),
		runnel.ProcessingGuarantee(runnel.ExactlyOnce), runnel.Logger(slog.New(&eventHandler{out: out}))}
	embedded := os.Getenv(childBrokerEnv) == ""
	if embedded {
		opts = append(opts, runnel.CreateSourceTopics(partitions), runnel.CreateSinkTopics(partitions))
	} else {
		opts = append(opts, runnel.Brokers(os.Getenv(childBrokerEnv)))
	}
	app, err := runnel.NewApp(topo, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: new app:", err)
		return 2
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = app.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: start:", err)
		return 2
	}
	out.event("started", "")
	addr := app.Brokers()[0]
	if embedded {
		// The embedded broker does not create topics on first use.
		if err := createTopic(addr, keysOutput); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			app.Close()
			return 2
		}
	}
	out.println("ADDR %s", addr)
	if probe := os.Getenv(childProbeEnv); probe != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := produceOne(ctx, addr, &kgo.Record{Topic: keysInput, Value: []byte(probe)})
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "child: produce the probe:", err)
			app.Close()
			return 2
		}
		out.event("probe", "")
	}

	// Poll the counters every millisecond: the events' times are that
	// precise.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var last runnel.Metrics
	lastPrint := time.Now()
	for {
		select {
		case <-tick.C:
			m := app.Metrics()
			if m == last {
				continue
			}
			if last.RecordsProcessed < 1 && m.RecordsProcessed >= 1 {
				out.event("first", "")
			}
			if last.RecordsProcessed < 2 && m.RecordsProcessed >= 2 {
				out.event("second", "")
				stopProfile()
			}
			last = m
			if now := time.Now(); now.Sub(lastPrint) >= 10*time.Millisecond {
				lastPrint = now
				out.println("METRICS %d %d %d %d", m.RecordsProcessed, m.RecordsRestored, m.Commits, m.Aborts)
			}
		case <-app.Done():
			fmt.Fprintln(os.Stderr, "child: processing stopped:", app.Close())
			return 1
		case <-sig:
			err := app.Close()
			m := app.Metrics()
			out.println("METRICS %d %d %d %d", m.RecordsProcessed, m.RecordsRestored, m.Commits, m.Aborts)
			if err != nil {
				fmt.Fprintln(os.Stderr, "child: close:", err)
				return 1
			}
			return 0
		}
	}
}

// createTopic creates topic on the broker at addr unless it exists.
func createTopic(addr, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// eventHandler turns the runtime's log records into "log" events: the
// message and its attributes.
type eventHandler struct {
	out   *childOut
	attrs []slog.Attr
}

func (h *eventHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.out.println("EV %d log %s", r.Time.UnixNano(), strings.ReplaceAll(sb.String(), "\n", " "))
	return nil
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &eventHandler{out: h.out, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *eventHandler) WithGroup(string) slog.Handler { return h }
