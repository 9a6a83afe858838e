package stream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// BenchmarkHoppingSuppress runs the q5 shape (a count per key in hopping
// windows of 10 s every 2 s, then Suppress until the windows close) in one
// task on Pebble stores, committing every 1,000 records, with the record
// cache on and off. Time is per input record.
//
//	go test ./stream -run '^$' -bench HoppingSuppress -cpuprofile cpu.out
func BenchmarkHoppingSuppress(b *testing.B) {
	shapes := map[string]func(stream.GroupedStream[string, []byte]){
		"hopping-suppress": func(g stream.GroupedStream[string, []byte]) {
			stream.WindowedBy(g, stream.Hopping(10*time.Second, 2*time.Second, time.Second)).Count().
				Suppress(stream.UntilWindowCloses()).ToStream().To("out")
		},
		"hopping": func(g stream.GroupedStream[string, []byte]) {
			stream.WindowedBy(g, stream.Hopping(10*time.Second, 2*time.Second, time.Second)).Count().ToStream().To("out")
		},
		"count": func(g stream.GroupedStream[string, []byte]) { g.Count().ToStream().To("out") },
	}
	for _, shape := range []string{"hopping-suppress", "hopping", "count"} {
		for _, caching := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/caching=%t", shape, caching), func(b *testing.B) {
				sb := stream.NewBuilder()
				shapes[shape](stream.From(sb, "bids", serde.String, serde.Bytes).GroupByKey())
				topo, err := sb.Build()
				if err != nil {
					b.Fatal(err)
				}
				db, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				batch := db.NewBatch("0_0")
				task, err := topology.NewTask(topo, topology.TaskConfig{
					ApplicationID: "bench", Collector: topology.RecordCollectorFunc(func(topology.OutputRecord) error { return nil }),
					Stores: batch, Caching: caching,
				})
				if err != nil {
					b.Fatal(err)
				}
				defer task.Close()
				keys := make([][]byte, 10_000)
				for i := range keys {
					keys[i] = fmt.Appendf(nil, "auction-%d", i)
				}
				b.ResetTimer()
				for i := range b.N {
					// 10 bids per ms of event time, as streambench's q5.
					in := topology.InputRecord{Topic: "bids", Offset: int64(i), Key: keys[i%len(keys)], Value: []byte("bid"), Timestamp: int64(i / 10)}
					if err := task.Process(in); err != nil {
						b.Fatal(err)
					}
					if i%1000 == 999 {
						if err := task.Flush(); err != nil {
							b.Fatal(err)
						}
						if err := batch.CommitNoSync(nil); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
