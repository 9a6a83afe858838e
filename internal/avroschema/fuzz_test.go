package avroschema

import (
	"encoding/json"
	"testing"
)

// FuzzParse feeds arbitrary text to the parser: it must return a schema
// or an error, never panic or loop, and a schema it accepts must
// normalize to a text that parses to the same normalized form, and read
// its own data.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`"int"`, `["null","string"]`, `{"type":"array","items":"long"}`,
		`{"type":"record","name":"r","fields":[{"name":"a","type":"int","default":1}]}`,
		`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`,
		`{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}`,
		`{"type":"fixed","name":"F","size":16,"logicalType":"decimal","precision":4}`,
		`{"type":"map","values":{"type":"record","name":"n.R","aliases":["Q"],"fields":[]}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParseChecked(text, nil)
		if err != nil {
			return
		}
		again, err := ParseChecked(p.Normal, nil)
		if err != nil {
			t.Fatalf("normalized form %s of %s does not parse: %v", p.Normal, text, err)
		}
		if again.Normal != p.Normal {
			t.Fatalf("normalizing is not stable: %s then %s", p.Normal, again.Normal)
		}
		if msgs := CanRead(p.Root, again.Root); len(msgs) > 0 {
			t.Fatalf("%s cannot read itself: %v", p.Normal, msgs)
		}
	})
}

// FuzzDecodeToJSON decodes arbitrary bytes with a schema of every kind
// of type, as the Avro serdes and `runnel consume --value-format avro`
// do with a record's payload: Decode and AppendJSON return a value or an
// error, never panic or run out of memory, and what AppendJSON writes is
// JSON. CheckBinary, which Decode runs first, agrees with goavro: what
// it takes goavro decodes, to the same end, and what goavro encodes it
// takes.
func FuzzDecodeToJSON(f *testing.F) {
	const schema = `{"type":"record","name":"R","fields":[
		{"name":"b","type":"boolean"},{"name":"i","type":"int"},{"name":"l","type":"long"},
		{"name":"f","type":"float"},{"name":"d","type":"double"},{"name":"s","type":"string"},
		{"name":"by","type":"bytes"},{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
		{"name":"fx","type":{"type":"fixed","name":"F","size":2}},
		{"name":"a","type":{"type":"array","items":["null","long"]}},
		{"name":"m","type":{"type":"map","values":"string"}},
		{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"dt","type":{"type":"int","logicalType":"date"}},
		{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":6,"scale":2}},
		{"name":"next","type":["null","R"]}]}`
	p, err := ParseChecked(schema, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{1, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'x', 2, 0xff, 2, 'a', 'b', 2, 2, 6, 0, 2, 2, 'k', 2, 'v', 0, 2, 4, 2, 1, 0x2c, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		checked, err := CheckBinary(p.Root, b)
		if err != nil {
			if _, _, err := p.Decode(b); err == nil {
				t.Fatalf("Decode took % x, which CheckBinary refuses", b)
			}
			return
		}
		v, rest, err := p.Decode(b)
		if err != nil {
			t.Fatalf("CheckBinary took % x, which goavro does not: %v", b, err)
		}
		if len(rest) != len(checked) {
			t.Fatalf("% x: goavro leaves %d bytes, CheckBinary %d", b, len(rest), len(checked))
		}
		again, err := p.Codec.BinaryFromNative(nil, v)
		if err != nil {
			t.Fatalf("goavro does not encode what it decoded from % x: %v", b, err)
		}
		if rest, err := CheckBinary(p.Root, again); err != nil || len(rest) != 0 {
			t.Fatalf("CheckBinary refuses goavro's encoding % x: %v (%d bytes left)", again, err, len(rest))
		}
		out, err := AppendJSON(nil, p.Root, v)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("AppendJSON wrote %s, not JSON", out)
		}
	})
}
