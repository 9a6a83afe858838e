package topology_test

import (
	"errors"
	"testing"

	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// panicky panics on the value "boom" and forwards everything else.
type panicky struct {
	ctx topology.Context[string, int64]
}

func (p *panicky) Init(ctx topology.Context[string, int64]) error { p.ctx = ctx; return nil }
func (p *panicky) Close() error                                   { return nil }
func (p *panicky) Process(r topology.Record[string, int64]) error {
	if r.Value < 0 {
		p.ctx.Drop(topology.DropLate)
		return nil
	}
	if r.Value == 13 {
		panic("unlucky")
	}
	p.ctx.Forward(r)
	return nil
}

type dropCounts map[topology.DropReason]int

func (d dropCounts) RecordDropped(_ topology.TaskID, reason topology.DropReason) { d[reason]++ }

// TestTaskErrors: a record the source cannot deserialize is reported
// (ErrDeserialization) without failing the task; a processor panic becomes
// the task's sticky ErrPanic; drops reach the DropCounter.
func TestTaskErrors(t *testing.T) {
	b := topology.NewBuilder()
	topology.AddSource(b, "in", topology.Source[string, int64]{Topics: []string{"input"}, KeySerde: serde.String, ValueSerde: serde.Int64})
	topology.AddProcessor(b, "p", func() topology.Processor[string, int64, string, int64] { return &panicky{} }, "in")
	topology.AddSink(b, "out", topology.Sink[string, int64]{Topic: "output", KeySerde: serde.String, ValueSerde: serde.Int64}, "p")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var out int
	drops := dropCounts{}
	task, err := topology.NewTask(topo, topology.TaskConfig{ApplicationID: "app", Drops: drops,
		Collector: topology.RecordCollectorFunc(func(topology.OutputRecord) error { out++; return nil })})
	if err != nil {
		t.Fatal(err)
	}
	enc := func(v int64) []byte { b, _ := serde.Int64.Serialize(v); return b }
	rec := func(off int64, v []byte) topology.InputRecord {
		return topology.InputRecord{Topic: "input", Offset: off, Key: []byte("k"), Value: v, Timestamp: 1}
	}
	if err := task.Process(rec(0, []byte("bad"))); !errors.Is(err, topology.ErrDeserialization) {
		t.Fatalf("bad bytes: %v, want ErrDeserialization", err)
	}
	if err := task.Process(rec(1, enc(1))); err != nil {
		t.Fatalf("after a deserialization error the task must go on: %v", err)
	}
	if err := task.Process(rec(2, enc(-1))); err != nil {
		t.Fatal(err)
	}
	if drops[topology.DropLate] != 1 || task.Dropped()[topology.DropLate] != 1 {
		t.Fatalf("drops %v, task %v", drops, task.Dropped())
	}
	if err := task.Process(rec(3, enc(13))); !errors.Is(err, topology.ErrPanic) {
		t.Fatalf("panic: %v, want ErrPanic", err)
	}
	if err := task.Process(rec(4, enc(2))); !errors.Is(err, topology.ErrPanic) {
		t.Fatalf("after a panic the error is sticky: %v", err)
	}
	if out != 1 {
		t.Fatalf("%d records out, want 1", out)
	}
	if err := task.Close(); err != nil {
		t.Fatal(err)
	}
}
