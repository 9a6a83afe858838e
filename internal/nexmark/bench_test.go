package nexmark

import (
	"testing"

	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/topology"
)

// BenchmarkQuery runs a query's topology on one partition, as the runtime
// drives it but with no broker: a task per sub-topology on Pebble stores
// with the record cache on, committing every 1,000 input records, each
// repartitioned record fed to the task that reads it after the commit
// that wrote it. An op is one input event of the query's topics, so
// -benchmem gives the DSL's allocation per input event (sources, serdes,
// processors, stores, caches, changelogs, sinks), without the client's
// and the broker's.
//
//	go test ./internal/nexmark -run '^$' -bench Query -benchmem
func BenchmarkQuery(b *testing.B) {
	for _, name := range []string{"q0", "q1", "q2", "q5", "q7"} {
		b.Run(name, func(b *testing.B) { benchmarkQuery(b, Queries[name]) })
	}
}

func benchmarkQuery(b *testing.B, q Query) {
	topo, err := q.Build()
	if err != nil {
		b.Fatal(err)
	}
	g, err := NewGenerator(Config{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	reads := map[string]bool{}
	for _, in := range q.Inputs {
		reads[in] = true
	}
	var input []topology.InputRecord
	for i := int64(0); len(input) < b.N; i++ {
		e := g.Event(i)
		if !reads[e.Topic()] {
			continue
		}
		r := e.Encode()
		input = append(input, topology.InputRecord{Topic: r.Topic, Offset: int64(len(input)), Key: r.Key, Value: r.Value, Timestamp: r.Timestamp})
	}
	db, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()

	// pending are the repartitioned records not yet processed, their bytes
	// in arena: both reused from round to round, so the harness allocates
	// nothing once warm.
	var (
		pending []topology.InputRecord
		arena   []byte
		out     int
	)
	collect := topology.RecordCollectorFunc(func(r topology.OutputRecord) error {
		if !topo.IsRepartitionTopic(r.Topic) {
			out++
			return nil
		}
		in := topology.InputRecord{Topic: r.Topic, Timestamp: r.Timestamp}
		if r.Key != nil {
			arena = append(arena, r.Key...)
			in.Key = arena[len(arena)-len(r.Key):]
		}
		if r.Value != nil {
			arena = append(arena, r.Value...)
			in.Value = arena[len(arena)-len(r.Value):]
		}
		pending = append(pending, in)
		return nil
	})
	type runTask struct {
		task  *topology.Task
		batch *pebblestore.Batch
	}
	byTopic := map[string]runTask{}
	var tasks []runTask
	for _, sub := range topo.SubTopologies() {
		id := topology.TaskID{SubTopology: sub.ID()}
		batch := db.NewBatch(id.String())
		task, err := topology.NewTask(topo, topology.TaskConfig{ApplicationID: "bench", ID: id, Collector: collect, Stores: batch, Caching: true})
		if err != nil {
			b.Fatal(err)
		}
		defer task.Close()
		rt := runTask{task, batch}
		tasks = append(tasks, rt)
		for _, topic := range task.SourceTopics() {
			byTopic[topic] = rt
		}
	}
	var spare []topology.InputRecord
	var spareArena []byte
	commit := func() {
		for {
			for _, t := range tasks {
				if err := t.task.Flush(); err != nil {
					b.Fatal(err)
				}
				if err := t.batch.CommitNoSync(nil); err != nil {
					b.Fatal(err)
				}
			}
			if len(pending) == 0 {
				return
			}
			// Process what was repartitioned; what that repartitions in
			// turn goes to the other pair of buffers.
			batch, batchArena := pending, arena
			pending, arena = spare[:0], spareArena[:0]
			for _, in := range batch {
				if err := byTopic[in.Topic].task.Process(in); err != nil {
					b.Fatal(err)
				}
			}
			spare, spareArena = batch, batchArena
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if err := byTopic[input[i].Topic].task.Process(input[i]); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			commit()
		}
	}
	commit()
	b.StopTimer()
	if out == 0 && q.Name != "q2" {
		b.Fatal("no output")
	}
}
