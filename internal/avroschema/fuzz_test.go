package avroschema

import "testing"

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
