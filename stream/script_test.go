package stream_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
)

// The scripts show every update an operation forwards: their drivers run
// with caching off.

func TestScriptWindows(t *testing.T) {
	newDriver := func() (*streamtest.Driver, error) {
		b := stream.NewBuilder()
		counts := stream.WindowedBy(stream.From(b, "clicks", serde.String, serde.String).GroupByKey(),
			stream.Tumbling(10*time.Second, 5*time.Second)).Count(stream.Materialized("counts"))
		counts.ToStream().To("updates")
		counts.Suppress(stream.UntilWindowCloses()).ToStream().To("final")
		topo, err := b.Build()
		if err != nil {
			return nil, err
		}
		return streamtest.New(topo, streamtest.Caching(false))
	}
	ws := stream.WindowedSerde(serde.String)
	streamtest.RunScript(t, "testdata/windows.script", newDriver, streamtest.Printer{
		Record: func(_ string, r streamtest.Record) string {
			k, _ := ws.Deserialize(r.Key)
			v, _ := serde.Int64.Deserialize(r.Value)
			return fmt.Sprintf("%v=%d @%d", k, v, r.Timestamp)
		},
		Store: func(d *streamtest.Driver, name string) ([]string, error) {
			m, err := streamtest.Windows(d, name, serde.String, serde.Int64)
			var out []string
			for k, v := range m {
				out = append(out, fmt.Sprintf("%s@%d=%d", k.Key, k.Start, v))
			}
			return out, err
		},
	})
}

func TestScriptJoins(t *testing.T) {
	newDriver := func() (*streamtest.Driver, error) {
		b := stream.NewBuilder()
		customers := stream.TableOf(b, "customers", serde.String, serde.String, stream.Materialized("customers-store"))
		orders := stream.From(b, "orders", serde.String, serde.String)
		stream.LeftJoinTable(orders, customers, func(o string, c *string) string {
			if c == nil {
				return o + "+?"
			}
			return o + "+" + *c
		}).To("enriched")
		clicks := stream.From(b, "clicks", serde.String, serde.String)
		imps := stream.From(b, "impressions", serde.String, serde.String)
		stream.LeftJoin(clicks, imps, func(c string, i *string) string {
			if i == nil {
				return c + "/-"
			}
			return c + "/" + *i
		}, stream.JoinWithin(10*time.Minute, time.Minute)).To("attributed")
		topo, err := b.Build()
		if err != nil {
			return nil, err
		}
		return streamtest.New(topo, streamtest.Caching(false))
	}
	streamtest.RunScript(t, "testdata/joins.script", newDriver, streamtest.Printer{
		Store: func(d *streamtest.Driver, name string) ([]string, error) {
			m, err := streamtest.KeyValues(d, name, serde.String, serde.String)
			var out []string
			for k, v := range m {
				out = append(out, k+"="+v)
			}
			return out, err
		},
	})
}

// windowPrinter prints windowed counts and session or window stores.
func windowPrinter(sessions bool) streamtest.Printer {
	ws := stream.WindowedSerde(serde.String)
	return streamtest.Printer{
		Record: func(_ string, r streamtest.Record) string {
			k, _ := ws.Deserialize(r.Key)
			if r.Value == nil {
				return fmt.Sprintf("%s@[%d,%d]=<nil> @%d", k.Key, k.Start, k.End, r.Timestamp)
			}
			v, _ := serde.Int64.Deserialize(r.Value)
			return fmt.Sprintf("%s@[%d,%d]=%d @%d", k.Key, k.Start, k.End, v, r.Timestamp)
		},
		Store: func(d *streamtest.Driver, name string) ([]string, error) {
			var out []string
			if sessions {
				m, err := streamtest.Sessions(d, name, serde.String, serde.Int64)
				for k, v := range m {
					out = append(out, fmt.Sprintf("%s@[%d,%d]=%d", k.Key, k.Start, k.End, v))
				}
				return out, err
			}
			m, err := streamtest.Windows(d, name, serde.String, serde.Int64)
			for k, v := range m {
				out = append(out, fmt.Sprintf("%s@%d=%d", k.Key, k.Start, v))
			}
			return out, err
		},
	}
}

func TestScriptSessions(t *testing.T) {
	newDriver := func() (*streamtest.Driver, error) {
		b := stream.NewBuilder()
		counts := stream.SessionWindowedBy(stream.From(b, "clicks", serde.String, serde.String).GroupByKey(),
			stream.Sessions(5*time.Second, 2*time.Second)).Count(stream.Materialized("sessions"))
		counts.ToStream().To("updates")
		counts.Suppress(stream.UntilWindowCloses()).ToStream().To("final")
		topo, err := b.Build()
		if err != nil {
			return nil, err
		}
		return streamtest.New(topo, streamtest.Caching(false))
	}
	streamtest.RunScript(t, "testdata/sessions.script", newDriver, windowPrinter(true))
}

func TestScriptSliding(t *testing.T) {
	newDriver := func() (*streamtest.Driver, error) {
		b := stream.NewBuilder()
		counts := stream.SlidingWindowedBy(stream.From(b, "clicks", serde.String, serde.String).GroupByKey(),
			stream.Sliding(10*time.Second, 5*time.Second)).Count(stream.Materialized("sliding"))
		counts.ToStream().To("updates")
		counts.Suppress(stream.UntilWindowCloses()).ToStream().To("final")
		topo, err := b.Build()
		if err != nil {
			return nil, err
		}
		return streamtest.New(topo, streamtest.Caching(false))
	}
	streamtest.RunScript(t, "testdata/sliding.script", newDriver, windowPrinter(false))
}

func TestScriptSuppressWallClock(t *testing.T) {
	newDriver := func() (*streamtest.Driver, error) {
		b := stream.NewBuilder()
		counts := stream.WindowedBy(stream.From(b, "clicks", serde.String, serde.String).GroupByKey(),
			stream.Tumbling(10*time.Second, 5*time.Second)).Count(stream.Materialized("counts"))
		counts.Suppress(stream.UntilWindowCloses().WallClockClose(5 * time.Second)).ToStream().To("final")
		topo, err := b.Build()
		if err != nil {
			return nil, err
		}
		return streamtest.New(topo, streamtest.Caching(false), streamtest.StartTime(10_000))
	}
	streamtest.RunScript(t, "testdata/suppress_wallclock.script", newDriver, windowPrinter(false))
}

func TestSuppressWallClockNeedsWindowCloses(t *testing.T) {
	for _, s := range []stream.Suppression{
		stream.UntilTimeLimit(time.Second).WallClockClose(time.Second),
		stream.UntilWindowCloses().WallClockClose(-time.Second),
	} {
		b := stream.NewBuilder()
		counts := stream.WindowedBy(stream.From(b, "clicks", serde.String, serde.String).GroupByKey(),
			stream.Tumbling(10*time.Second, 0)).Count()
		counts.Suppress(s).ToStream().To("final")
		if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "WallClockClose") {
			t.Errorf("Build = %v, want an error about WallClockClose", err)
		}
	}
}
