package stream_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
)

// windowResults returns the windowed counts written to topic as
// "key@[start,end)=n", in order.
func windowResults(t *testing.T, d *streamtest.Driver, topic string) []string {
	t.Helper()
	out, err := streamtest.Output(d, topic, stream.WindowedSerde(serde.String), serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out {
		if r.Tombstone {
			got = append(got, fmt.Sprintf("%s@[%d,%d)=<deleted>", r.Key.Key, r.Key.Start, r.Key.End))
			continue
		}
		got = append(got, fmt.Sprintf("%s@[%d,%d)=%d", r.Key.Key, r.Key.Start, r.Key.End, r.Value))
	}
	return got
}

// TestSuppressedTumblingCountCached is issue 19's repro: with the record
// cache on, windows that expired between two commits used to be dropped
// by the cache on flush, so Suppress never saw them and nothing came out.
// Caching may change how many updates reach Suppress, never its final
// results.
func TestSuppressedTumblingCountCached(t *testing.T) {
	for _, caching := range []bool{false, true} {
		t.Run(fmt.Sprintf("caching=%t", caching), func(t *testing.T) {
			b := stream.NewBuilder()
			clicks := stream.From(b, "clicks", serde.String, serde.String).GroupByKey()
			stream.WindowedBy(clicks, stream.Tumbling(10*time.Second, 2*time.Second)).Count().
				Suppress(stream.UntilWindowCloses()).ToStream().To("final")
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := streamtest.New(topo, streamtest.Caching(caching))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			in := streamtest.Input(d, "clicks", serde.String, serde.String)
			for _, s := range []int64{1, 9, 11, 8, 25, 200} {
				if err := in.Pipe("u", "click", s*1000); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Commit(); err != nil {
				t.Fatal(err)
			}
			want := []string{"u@[0,10000)=3", "u@[10000,20000)=1", "u@[20000,30000)=1"}
			if got := windowResults(t, d, "final"); !slices.Equal(got, want) {
				t.Fatalf("final results %v, want %v", got, want)
			}
			if dropped := d.Dropped(); len(dropped) > 0 {
				t.Fatalf("dropped %v", dropped)
			}
		})
	}
}
