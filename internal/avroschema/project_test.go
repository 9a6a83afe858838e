package avroschema

import (
	"reflect"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// TestProject writes data with one schema, decodes it with goavro, and
// projects it onto a reader schema: the result is what the Avro
// specification's resolution rules say the reader sees.
func TestProject(t *testing.T) {
	writer := `{"type":"record","name":"R","fields":[
		{"name":"i","type":"int"},
		{"name":"s","type":"string"},
		{"name":"b","type":"bytes"},
		{"name":"gone","type":"string"},
		{"name":"xs","type":{"type":"array","items":"int"}},
		{"name":"m","type":{"type":"map","values":"float"}},
		{"name":"u","type":["null","int"]},
		{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
		{"name":"old","type":"long"}]}`
	reader := `{"type":"record","name":"R","fields":[
		{"name":"i","type":"double"},
		{"name":"s","type":"bytes"},
		{"name":"b","type":"string"},
		{"name":"xs","type":{"type":"array","items":"long"}},
		{"name":"m","type":{"type":"map","values":"double"}},
		{"name":"u","type":["null","long","string"]},
		{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}},
		{"name":"renamed","aliases":["old"],"type":"long"},
		{"name":"plain","type":"int","default":5},
		{"name":"opt","type":["null","string"],"default":null},
		{"name":"inner","type":{"type":"record","name":"In","fields":[{"name":"x","type":"string","default":"d"}]},"default":{}},
		{"name":"arr","type":{"type":"array","items":"string"},"default":["a"]}]}`
	w, err := ParseChecked(writer, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseChecked(reader, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{
		"i": int32(3), "s": "str", "b": []byte("byt"), "gone": "x",
		"xs": []any{int32(1), int32(2)}, "m": map[string]any{"k": float32(1.5)},
		"u": goavro.Union("int", int32(9)), "e": "C", "old": int64(7),
	}
	bin, err := w.Codec.BinaryFromNative(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	native, _, err := w.Codec.NativeFromBinary(bin)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProjector(r.Root, w.Root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Project(native)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"i": float64(3), "s": []byte("str"), "b": "byt",
		"xs": []any{int64(1), int64(2)}, "m": map[string]any{"k": float64(1.5)},
		"u": goavro.Union("long", int64(9)), "e": "A", "renamed": int64(7),
		"plain": int32(5), "opt": nil, "inner": map[string]any{"x": "d"}, "arr": []any{"a"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("projected\n%#v\nwant\n%#v", got, want)
	}
	// The reader's codec accepts what the projection made.
	if _, err := r.Codec.BinaryFromNative(nil, got); err != nil {
		t.Fatalf("reader codec refuses the projection: %v", err)
	}
	// A reader that cannot read the writer is refused up front.
	if _, err := NewProjector(w.Root, r.Root); err == nil {
		t.Fatal("projector built for an incompatible pair")
	}
}
