package runnel_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAppOffsetResetReported: an application that committed its position
// in an input partition, restarted after the partition's log start moved
// past that position (DeleteRecords, as retention does), resumes at the
// log start and says so: a WARN line naming the partition, the position
// and where reading resumed, and runnel_stream_offset_resets_total 1. The
// records it never read are the only ones missing from its output.
func TestAppOffsetResetReported(t *testing.T) {
	for _, g := range []runnel.Guarantee{runnel.ExactlyOnce, runnel.AtLeastOnce} {
		t.Run(g.String(), func(t *testing.T) {
			addr := startAppBroker(t)
			createTopics(t, addr, 1, "in", "out")
			cl := newTestClient(t, addr)
			produce := func(from, to int) {
				t.Helper()
				var recs []*kgo.Record
				for i := from; i < to; i++ {
					recs = append(recs, &kgo.Record{Topic: "in", Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
				}
				if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			b := stream.NewBuilder()
			stream.From(b, "in", serde.String, serde.String).To("out")
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			reg := prometheus.NewRegistry()
			var logs lockedBuffer
			opts := []runnel.AppOption{runnel.ApplicationID("reset"), runnel.Brokers(addr), runnel.StateDir(dir),
				runnel.ProcessingGuarantee(g), runnel.CommitInterval(50 * time.Millisecond),
				runnel.Logger(slog.New(slog.NewTextHandler(&logs, nil)))}
			t.Cleanup(func() {
				if t.Failed() {
					t.Log(logs.String())
				}
			})

			// Offsets 0-9 processed and committed; Close commits.
			produce(0, 10)
			app := runApp(t, topo, nil, opts...)
			waitMetrics(t, "the first records processed", func() bool { return app.Metrics().RecordsProcessed == 10 })
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}
			adm := kadm.NewClient(cl)
			committed, err := adm.FetchOffsets(context.Background(), "reset")
			if err == nil {
				err = committed.Error()
			}
			if err != nil {
				t.Fatal(err)
			}
			at, ok := committed.Lookup("in", 0)
			if !ok || at.At < 10 {
				t.Fatalf("committed offset of in[0] %+v (found %v), want at least 10", at, ok)
			}
			was := at.At

			// While it is down, records arrive and the oldest unread ones
			// are deleted: the log now starts 5 records past its position.
			produce(10, 30)
			deleteTo := was + 5
			var del kadm.Offsets
			del.AddOffset("in", 0, deleteTo, -1)
			deleted, err := adm.DeleteRecords(context.Background(), del)
			if err == nil {
				err = deleted.Error()
			}
			if err != nil {
				t.Fatal(err)
			}

			app = runApp(t, topo, nil, append(opts, runnel.MetricsRegisterer(reg))...)
			resets := func() float64 {
				m := series(t, reg, "runnel_stream_offset_resets_total")["application_id=reset,task=0_0,topic=in"]
				if m == nil {
					return 0
				}
				return value(m)
			}
			waitFor(t, "the reset counted", func() bool { return resets() == 1 })
			line := ""
			for l := range strings.Lines(logs.String()) {
				if strings.Contains(l, "level=WARN") && strings.Contains(l, "below the log start") {
					line = l
				}
			}
			for _, want := range []string{"task=0_0", "topic=in", "partition=0", fmt.Sprintf("position=%d", was), fmt.Sprintf("resumed_at=%d", deleteTo)} {
				if !strings.Contains(line, want) {
					t.Fatalf("WARN line of the reset %q lacks %s", line, want)
				}
			}
			// The records after the log start are processed, once.
			remaining := 30 - deleteTo
			waitMetrics(t, "the records after the log start processed", func() bool { return app.Metrics().RecordsProcessed == remaining })
			if n := resets(); n != 1 {
				t.Fatalf("runnel_stream_offset_resets_total %v, want 1", n)
			}
		})
	}
}
