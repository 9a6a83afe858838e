package topology_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/memstore"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// counter counts records per key in a store and forwards running counts; a
// punctuation forwards "tick" records.
type counter struct {
	ctx   topology.Context[string, string]
	store state.KeyValueStore
	typ   topology.PunctuationType
}

func (c *counter) Init(ctx topology.Context[string, string]) error {
	c.ctx = ctx
	c.store = ctx.Store("counts").(state.KeyValueStore)
	ctx.Schedule(10*time.Millisecond, c.typ, func(ts int64) error {
		ctx.ForwardTo("out", topology.Record[string, string]{Key: "tick", Value: fmt.Sprint(ts), Timestamp: ts})
		return nil
	})
	return nil
}

func (c *counter) Process(r topology.Record[string, string]) error {
	m, _ := c.ctx.Metadata()
	old, err := c.store.Get([]byte(r.Key))
	if err != nil {
		return err
	}
	n := len(old) + 1
	if err := c.store.Put([]byte(r.Key), make([]byte, n)); err != nil {
		return err
	}
	c.ctx.Forward(topology.Record[string, string]{Key: r.Key, Value: fmt.Sprintf("%d from %s[%d]@%d", n, m.Topic, m.Partition, m.Offset), Timestamp: r.Timestamp})
	return nil
}

func (c *counter) Close() error { return nil }

func build(t *testing.T, typ topology.PunctuationType) *topology.Topology {
	b := topology.NewBuilder()
	topology.AddSource(b, "in", topology.Source[string, string]{Topics: []string{"input"}, KeySerde: serde.String, ValueSerde: serde.String})
	topology.AddProcessor(b, "count", func() topology.Processor[string, string, string, string] { return &counter{typ: typ} }, "in")
	b.AddStore(topology.StoreSpec{Name: "counts", Kind: topology.KeyValueStore, Logging: true}, "count")
	topology.AddSink(b, "out", topology.Sink[string, string]{Topic: "output", KeySerde: serde.String, ValueSerde: serde.String}, "count")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestTaskProcessAndPunctuate(t *testing.T) {
	for _, typ := range []topology.PunctuationType{topology.StreamTime, topology.WallClockTime} {
		t.Run(typ.String(), func(t *testing.T) {
			var out []string
			task, err := topology.NewTask(build(t, typ), topology.TaskConfig{
				ApplicationID: "app", ID: topology.TaskID{Partition: 2}, Stores: memstore.Supplier{},
				Collector: topology.RecordCollectorFunc(func(r topology.OutputRecord) error {
					out = append(out, fmt.Sprintf("%s %s=%s @%d", r.Topic, r.Key, r.Value, r.Timestamp))
					return nil
				}),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer task.Close()
			for i, ts := range []int64{5, 12, 3, 31} {
				if err := task.Process(topology.InputRecord{Topic: "input", Partition: 2, Offset: int64(i), Key: []byte("k"), Value: []byte("v"), Timestamp: ts}); err != nil {
					t.Fatal(err)
				}
			}
			if err := task.AdvanceWallClock(25); err != nil {
				t.Fatal(err)
			}
			if task.StreamTime() != 31 {
				t.Errorf("stream time %d, want 31", task.StreamTime())
			}
			var want []string
			for i, ts := range []int64{5, 12, 3, 31} {
				want = append(want, fmt.Sprintf("app-counts-changelog k=%s @%d", make([]byte, i+1), ts))
				want = append(want, fmt.Sprintf("output k=%d from input[2]@%d @%d", i+1, i, ts))
				if typ == topology.StreamTime && ts == 31 {
					want = append(want, "output tick=31 @31") // first fire at 5+10; once per advance
				}
			}
			if typ == topology.WallClockTime {
				want = append(want, "output tick=25 @25")
			}
			if !slices.Equal(out, want) {
				t.Errorf("output\n got %q\nwant %q", out, want)
			}
		})
	}
}

func TestSubTopologiesAndPartitions(t *testing.T) {
	b := topology.NewBuilder()
	s := topology.Source[string, string]{KeySerde: serde.String, ValueSerde: serde.String}
	pass := topology.ProcessorFunc[string, string, string, string](func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
		ctx.Forward(r)
		return nil
	}).Supplier()
	s.Topics = []string{"a"}
	topology.AddSource(b, "src-a", s)
	topology.AddProcessor(b, "p1", pass, "src-a")
	b.AddRepartitionTopic("x-repartition", 0)
	topology.AddSink(b, "to-x", topology.Sink[string, string]{Topic: "x-repartition", KeySerde: serde.String, ValueSerde: serde.String}, "p1")
	s.Topics = []string{"x-repartition"}
	topology.AddSource(b, "src-x", s)
	s.Topics = []string{"b"}
	topology.AddSource(b, "src-b", s)
	topology.AddProcessor(b, "join", pass, "src-x", "src-b")
	b.AddStore(topology.StoreSpec{Name: "st", Logging: true}, "join")
	b.Copartition("src-x", "src-b")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	subs := topo.SubTopologies()
	if len(subs) != 2 || !slices.Equal(subs[1].SourceTopics(), []string{"b", "x-repartition"}) {
		t.Fatalf("sub-topologies: %s", topo.Describe())
	}
	p, err := topo.ResolvePartitions("app", func(topic string) (int, bool) { return map[string]int{"a": 2, "b": 6}[topic], true })
	if err != nil {
		t.Fatal(err)
	}
	if p.Topics["app-x-repartition"] != 6 || p.Tasks[0] != 2 || p.Tasks[1] != 6 || p.Topics["app-st-changelog"] != 6 {
		t.Errorf("partitions: %+v", p)
	}
	if !strings.Contains(topo.Describe(), "Co-partitioned topics:\n    [b, x-repartition]") {
		t.Errorf("describe:\n%s", topo.Describe())
	}
}

func TestBuildReportsEveryProblem(t *testing.T) {
	b := topology.NewBuilder()
	topology.AddProcessor(b, "orphan", topology.ProcessorFunc[string, string, string, string](nil).Supplier())
	topology.AddSink(b, "sink", topology.Sink[string, string]{KeySerde: serde.String, ValueSerde: serde.String}, "nowhere")
	b.ConnectStore("missing", "orphan")
	_, err := b.Build()
	if !errors.Is(err, topology.ErrInvalidTopology) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"has no parent", "no topic", `parent "nowhere"`, `store "missing"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestCopartitionMismatch(t *testing.T) {
	b := topology.NewBuilder()
	pass := topology.ProcessorFunc[string, string, string, string](func(topology.Context[string, string], topology.Record[string, string]) error { return nil }).Supplier()
	for _, topic := range []string{"l", "r"} {
		topology.AddSource(b, topic, topology.Source[string, string]{Topics: []string{topic}, KeySerde: serde.String, ValueSerde: serde.String})
	}
	topology.AddProcessor(b, "j", pass, "l", "r")
	b.Copartition("l", "r")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	_, err = topo.ResolvePartitions("app", func(topic string) (int, bool) { return map[string]int{"l": 2, "r": 3}[topic], true })
	if !errors.Is(err, topology.ErrCopartition) {
		t.Fatalf("err = %v, want ErrCopartition", err)
	}
}
