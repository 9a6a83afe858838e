package avroschema

import (
	"errors"
	"testing"
)

// TestCheckBinary: data a decoder would allocate for without having it
// is refused; data of the schema is taken, and the bytes after it left.
func TestCheckBinary(t *testing.T) {
	schema := func(text string) *Schema {
		t.Helper()
		p, err := ParseChecked(text, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p.Root
	}
	huge := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f} // 2^31-1
	nulls := schema(`{"type":"array","items":"null"}`)
	list := schema(`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`)
	deep := func(n int) []byte {
		b := make([]byte, n+1)
		for i := range n {
			b[i] = 2 // union branch 1: another L
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		schema *Schema
		data   []byte
		rest   int // bytes left, or -1 for refused
	}{
		{"long and rest", schema(`"long"`), []byte{0x80, 0x01, 9}, 1},
		{"bad varint", schema(`"long"`), []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, -1},
		{"boolean 2", schema(`"boolean"`), []byte{2}, -1},
		{"string past the end", schema(`"string"`), []byte{8, 'a'}, -1},
		{"negative length", schema(`"bytes"`), []byte{1}, -1},
		{"fixed", schema(`{"type":"fixed","name":"F","size":3}`), []byte{1, 2, 3}, 0},
		{"short fixed", schema(`{"type":"fixed","name":"F","size":3}`), []byte{1, 2}, -1},
		{"enum symbol", schema(`{"type":"enum","name":"E","symbols":["A"]}`), []byte{2}, -1},
		{"union branch", schema(`["null","int"]`), []byte{4}, -1},
		{"array", schema(`{"type":"array","items":"int"}`), []byte{4, 2, 4, 0}, 0},
		{"array, negative count with size", schema(`{"type":"array","items":"int"}`), []byte{3, 4, 2, 4, 0}, 0},
		{"array count past the end", schema(`{"type":"array","items":"int"}`), append(huge, 0), -1},
		{"map count past the end", schema(`{"type":"map","values":"int"}`), append(huge, 0), -1},
		{"smallest count", schema(`{"type":"array","items":"int"}`), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, -1},
		{"a few nulls", nulls, []byte{20, 0}, 0},
		{"2^31 nulls", nulls, append(huge, 0), -1},
		{"2^20 nulls a block, twice", nulls, []byte{0x80, 0x80, 0x80, 0x01, 0x80, 0x80, 0x80, 0x01, 0}, -1},
		{"recursion 1000 deep", list, deep(1000), 0},
		{"recursion past the bound", list, deep(maxBinaryDepth), -1},
	} {
		rest, err := CheckBinary(tc.schema, tc.data)
		switch {
		case tc.rest < 0 && err == nil:
			t.Errorf("%s: took % x", tc.name, tc.data)
		case tc.rest < 0 && !errors.Is(err, ErrBinary):
			t.Errorf("%s: %v, not ErrBinary", tc.name, err)
		case tc.rest >= 0 && (err != nil || len(rest) != tc.rest):
			t.Errorf("%s: %v, %d bytes left; want %d", tc.name, err, len(rest), tc.rest)
		}
	}
}

func TestRecursive(t *testing.T) {
	for text, want := range map[string]bool{
		`"int"`: false,
		`{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"record","name":"S","fields":[]}},{"name":"b","type":"S"}]}`:                        false,
		`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`:                                                                         true,
		`{"type":"record","name":"T","fields":[{"name":"kids","type":{"type":"array","items":"T"}}]}`:                                                         true,
		`{"type":"record","name":"A","fields":[{"name":"b","type":{"type":"record","name":"B","fields":[{"name":"a","type":{"type":"map","values":"A"}}]}}]}`: true,
	} {
		p, err := ParseChecked(text, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := Recursive(p.Root); got != want {
			t.Errorf("Recursive(%s) = %v", text, got)
		}
	}
}
