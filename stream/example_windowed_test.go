package stream_test

import (
	"fmt"
	"time"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
)

// pipeClicks pipes clicks of user "u" at the given times (ms), then
// commits, as the runtime does every commit interval: the record caches
// forward what they hold, the latest update of each window.
func pipeClicks(d *streamtest.Driver, times ...int64) {
	in := streamtest.Input(d, "clicks", serde.String, serde.String)
	for _, ts := range times {
		in.Pipe("u", "click", ts)
	}
	d.Commit()
}

func printWindows(d *streamtest.Driver, topic string) {
	out, _ := streamtest.Output(d, topic, stream.WindowedSerde(serde.String), serde.Int64)
	for _, r := range out {
		if r.Tombstone {
			fmt.Printf("%s [%d,%d] deleted\n", r.Key.Key, r.Key.Start, r.Key.End)
			continue
		}
		fmt.Printf("%s [%d,%d] %d\n", r.Key.Key, r.Key.Start, r.Key.End, r.Value)
	}
}

// Tumbling windows with a grace period, suppressed to one final result per
// window.
func Example_tumblingWindows() {
	b := stream.NewBuilder()
	clicks := stream.From(b, "clicks", serde.String, serde.String).GroupByKey()
	stream.WindowedBy(clicks, stream.Tumbling(10*time.Second, 2*time.Second)).Count().
		Suppress(stream.UntilWindowCloses()).ToStream().To("per-10s")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo)
	pipeClicks(d, 1_000, 9_000, 11_000, 8_000, 25_000)
	printWindows(d, "per-10s")
	// Output:
	// u [0,10000] 3
	// u [10000,20000] 1
}

// Hopping windows: 10s windows every 5s, so each record counts twice.
func Example_hoppingWindows() {
	b := stream.NewBuilder()
	clicks := stream.From(b, "clicks", serde.String, serde.String).GroupByKey()
	stream.WindowedBy(clicks, stream.Hopping(10*time.Second, 5*time.Second, 0)).Count().ToStream().To("counts")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo)
	pipeClicks(d, 1_000, 6_000)
	printWindows(d, "counts")
	// Output:
	// u [0,10000] 2
	// u [5000,15000] 1
}

// Sliding windows: every set of records at most 10s apart, windows both
// ending at a record and starting right after one. None starts before 0:
// the records of the first 10s share [0,10000].
func Example_slidingWindows() {
	b := stream.NewBuilder()
	clicks := stream.From(b, "clicks", serde.String, serde.String).GroupByKey()
	stream.SlidingWindowedBy(clicks, stream.Sliding(10*time.Second, 0)).Count().ToStream().To("counts")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo)
	pipeClicks(d, 1_000, 8_000, 15_000)
	printWindows(d, "counts")
	// Output:
	// u [0,10000] 2
	// u [1001,11001] 1
	// u [5000,15000] 2
	// u [8001,18001] 1
}

// Session windows: a click within 5s of the previous extends the session;
// one in between two sessions merges them, deleting the merged ones. (The
// earlier session must still be retained: its end within gap + grace of
// the latest.)
func Example_sessionWindows() {
	b := stream.NewBuilder()
	clicks := stream.From(b, "clicks", serde.String, serde.String).GroupByKey()
	stream.SessionWindowedBy(clicks, stream.Sessions(5*time.Second, 2*time.Second)).Count().ToStream().To("sessions")
	topo, _ := b.Build()
	d, _ := streamtest.New(topo)
	pipeClicks(d, 1_000, 3_000, 9_500, 7_500)
	printWindows(d, "sessions")
	// Output:
	// u [1000,1000] 1
	// u [1000,1000] deleted
	// u [1000,3000] 2
	// u [9500,9500] 1
	// u [1000,3000] deleted
	// u [9500,9500] deleted
	// u [1000,9500] 4
}
