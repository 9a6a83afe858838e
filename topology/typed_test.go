package topology_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/topology"
)

// point is a value too large to box without an allocation.
type point struct{ X, Y, Z int64 }

// pointSerde reads and writes a point as 24 bytes, into one buffer it
// reuses: it allocates nothing.
type pointSerde struct{ buf []byte }

func (s *pointSerde) Serialize(p point) ([]byte, error) {
	s.buf = binary.BigEndian.AppendUint64(s.buf[:0], uint64(p.X))
	s.buf = binary.BigEndian.AppendUint64(s.buf, uint64(p.Y))
	s.buf = binary.BigEndian.AppendUint64(s.buf, uint64(p.Z))
	return s.buf, nil
}

func (s *pointSerde) Deserialize(b []byte) (point, error) {
	if len(b) != 24 {
		return point{}, fmt.Errorf("point: %d bytes", len(b))
	}
	return point{int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:])), int64(binary.BigEndian.Uint64(b[16:]))}, nil
}

// keySerde reads and writes a key of 8 bytes big-endian, with no
// allocation.
type keySerde struct{ buf []byte }

func (s *keySerde) Serialize(k int64) ([]byte, error) {
	s.buf = binary.BigEndian.AppendUint64(s.buf[:0], uint64(k))
	return s.buf, nil
}

func (s *keySerde) Deserialize(b []byte) (int64, error) {
	return int64(binary.BigEndian.Uint64(b)), nil
}

// TestTypedRecordsAreNotBoxed checks that records travel between typed
// nodes of the same types without being boxed into Record[any, any]: a
// pipeline of a source, two processors and a sink whose serdes allocate
// nothing processes a record with no allocation.
func TestTypedRecordsAreNotBoxed(t *testing.T) {
	b := topology.NewBuilder()
	topology.AddSource(b, "in", topology.Source[int64, point]{Topics: []string{"input"}, KeySerde: &keySerde{}, ValueSerde: &pointSerde{}})
	shift := topology.ProcessorFunc[int64, point, int64, point](func(ctx topology.Context[int64, point], r topology.Record[int64, point]) error {
		r.Value.X += 1000
		ctx.Forward(r)
		return nil
	}).Supplier()
	rekey := topology.ProcessorFunc[int64, point, int64, point](func(ctx topology.Context[int64, point], r topology.Record[int64, point]) error {
		ctx.ForwardTo("out", topology.Record[int64, point]{Key: r.Key + 1000, Value: r.Value, Timestamp: r.Timestamp})
		return nil
	}).Supplier()
	topology.AddProcessor(b, "shift", shift, "in")
	topology.AddProcessor(b, "rekey", rekey, "shift")
	topology.AddSink(b, "out", topology.Sink[int64, point]{Topic: "output", KeySerde: &keySerde{}, ValueSerde: &pointSerde{}}, "rekey")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var last topology.OutputRecord
	task, err := topology.NewTask(topo, topology.TaskConfig{ApplicationID: "app", Collector: topology.RecordCollectorFunc(func(r topology.OutputRecord) error {
		last = r
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	defer task.Close()
	key, _ := (&keySerde{}).Serialize(5000)
	value, _ := (&pointSerde{}).Serialize(point{1, 2, 3})
	in := topology.InputRecord{Topic: "input", Key: key, Value: value, Timestamp: 7}
	allocs := testing.AllocsPerRun(100, func() {
		if err := task.Process(in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per record, want 0", allocs)
	}
	k, _ := (&keySerde{}).Deserialize(last.Key)
	v, _ := (&pointSerde{}).Deserialize(last.Value)
	if last.Topic != "output" || k != 6000 || v != (point{1001, 2, 3}) || last.Timestamp != 7 {
		t.Errorf("output %s %d=%v @%d, want output 6000={1001 2 3} @7", last.Topic, k, v, last.Timestamp)
	}
}

// TestTypedAndRawChildren checks what the children of a typed node see
// when some take their input types and others any: a null (a nil key or
// value read) is nil to a raw child and the zero value to a typed one, and
// a value is the same to both; a sink writes a null as a null.
func TestTypedAndRawChildren(t *testing.T) {
	b := topology.NewBuilder()
	topology.AddSource(b, "in", topology.Source[string, string]{Topics: []string{"input"}, KeySerde: serde.String, ValueSerde: serde.String})
	var seen []string
	raw := topology.ProcessorFunc[any, any, any, any](func(ctx topology.Context[any, any], r topology.Record[any, any]) error {
		seen = append(seen, fmt.Sprintf("raw %#v=%#v", r.Key, r.Value))
		ctx.Forward(r)
		return nil
	}).Supplier()
	typed := topology.ProcessorFunc[string, string, string, string](func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
		seen = append(seen, fmt.Sprintf("typed %q=%q", r.Key, r.Value))
		ctx.Forward(r)
		return nil
	}).Supplier()
	topology.AddProcessor(b, "raw", raw, "in")
	topology.AddProcessor(b, "typed", typed, "in")
	topology.AddSink(b, "raw-out", topology.Sink[string, string]{Topic: "raw-output", KeySerde: serde.String, ValueSerde: serde.String}, "raw")
	topology.AddSink(b, "typed-out", topology.Sink[string, string]{Topic: "typed-output", KeySerde: serde.String, ValueSerde: serde.String}, "typed")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	task, err := topology.NewTask(topo, topology.TaskConfig{ApplicationID: "app", Collector: topology.RecordCollectorFunc(func(r topology.OutputRecord) error {
		out = append(out, fmt.Sprintf("%s %q(%t)=%q(%t)", r.Topic, r.Key, r.Key == nil, r.Value, r.Value == nil))
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	defer task.Close()
	for _, in := range []topology.InputRecord{
		{Topic: "input", Key: []byte("k"), Value: []byte("v")},
		{Topic: "input", Key: []byte("k"), Value: nil},
		{Topic: "input", Key: nil, Value: []byte("")},
	} {
		if err := task.Process(in); err != nil {
			t.Fatal(err)
		}
	}
	wantSeen := []string{
		`raw "k"="v"`, `typed "k"="v"`,
		`raw "k"=<nil>`, `typed "k"=""`,
		`raw <nil>=""`, `typed ""=""`,
	}
	wantOut := []string{
		`raw-output "k"(false)="v"(false)`, `typed-output "k"(false)="v"(false)`,
		`raw-output "k"(false)=""(true)`, `typed-output "k"(false)=""(false)`,
		`raw-output ""(true)=""(false)`, `typed-output ""(false)=""(false)`,
	}
	if !slices.Equal(seen, wantSeen) {
		t.Errorf("processors saw\n%q\nwant\n%q", seen, wantSeen)
	}
	if !slices.Equal(out, wantOut) {
		t.Errorf("sinks wrote\n%q\nwant\n%q", out, wantOut)
	}
}

// TestForwardNullValue checks that a typed processor's null value reaches
// its children as a null does from a raw one: nil to a raw child, the zero
// value to a typed child, a tombstone to a sink.
func TestForwardNullValue(t *testing.T) {
	b := topology.NewBuilder()
	topology.AddSource(b, "in", topology.Source[int64, point]{Topics: []string{"input"}, KeySerde: &keySerde{}, ValueSerde: &pointSerde{}})
	// Deletes the key of every point with X 0.
	deleter := topology.ProcessorFunc[int64, point, int64, point](func(ctx topology.Context[int64, point], r topology.Record[int64, point]) error {
		if r.Value.X == 0 {
			topology.ForwardNullValue(ctx, r)
			return nil
		}
		ctx.Forward(r)
		return nil
	}).Supplier()
	var seen []string
	raw := topology.ProcessorFunc[any, any, any, any](func(ctx topology.Context[any, any], r topology.Record[any, any]) error {
		seen = append(seen, fmt.Sprintf("raw %v=%v", r.Key, r.Value))
		return nil
	}).Supplier()
	typed := topology.ProcessorFunc[int64, point, int64, point](func(ctx topology.Context[int64, point], r topology.Record[int64, point]) error {
		seen = append(seen, fmt.Sprintf("typed %v=%v", r.Key, r.Value))
		return nil
	}).Supplier()
	topology.AddProcessor(b, "deleter", deleter, "in")
	topology.AddProcessor(b, "raw", raw, "deleter")
	topology.AddProcessor(b, "typed", typed, "deleter")
	topology.AddSink(b, "out", topology.Sink[int64, point]{Topic: "output", KeySerde: &keySerde{}, ValueSerde: &pointSerde{}}, "deleter")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	task, err := topology.NewTask(topo, topology.TaskConfig{ApplicationID: "app", Collector: topology.RecordCollectorFunc(func(r topology.OutputRecord) error {
		out = append(out, fmt.Sprintf("key %t value %t @%d", r.Key != nil, r.Value != nil, r.Timestamp))
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	defer task.Close()
	key, _ := (&keySerde{}).Serialize(5)
	for i, p := range []point{{1, 2, 3}, {0, 2, 3}} {
		value, _ := (&pointSerde{}).Serialize(p)
		if err := task.Process(topology.InputRecord{Topic: "input", Key: key, Value: value, Timestamp: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	wantSeen := []string{"raw 5={1 2 3}", "typed 5={1 2 3}", "raw 5=<nil>", "typed 5={0 0 0}"}
	if !slices.Equal(seen, wantSeen) {
		t.Errorf("children saw\n%q\nwant\n%q", seen, wantSeen)
	}
	if want := []string{"key true value true @0", "key true value false @1"}; !slices.Equal(out, want) {
		t.Errorf("sink wrote %q, want %q", out, want)
	}
}
