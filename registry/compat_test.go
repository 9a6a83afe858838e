package registry

import (
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/avroschema"
)

// rec builds a record schema named r with the given fields (JSON text).
func rec(fields ...string) string {
	return `{"type":"record","name":"r","namespace":"ns","fields":[` + strings.Join(fields, ",") + `]}`
}

// TestCompatibility is the verdict table: each row registers its earlier
// schemas (oldest first) and asks whether the new one is allowed at a
// level. The verdicts follow the Avro specification's resolution rules
// and Confluent's documented levels: BACKWARD means the new schema reads
// data of the latest, FORWARD that the latest reads data of the new, FULL
// both; *_TRANSITIVE against every earlier version, not just the latest.
func TestCompatibility(t *testing.T) {
	const (
		a       = `{"name":"a","type":"int"}`
		aLong   = `{"name":"a","type":"long"}`
		aFloat  = `{"name":"a","type":"float"}`
		aDouble = `{"name":"a","type":"double"}`
		aStr    = `{"name":"a","type":"string"}`
		aBytes  = `{"name":"a","type":"bytes"}`
		b       = `{"name":"b","type":"string"}`
		bDef    = `{"name":"b","type":"string","default":"x"}`
		bNull   = `{"name":"b","type":["null","string"],"default":null}`
		bAlias  = `{"name":"c","aliases":["b"],"type":"string"}`
		c       = `{"name":"c","type":"int"}`
		cDef    = `{"name":"c","type":"int","default":0}`
	)
	enum := func(syms string, def string) string {
		d := ""
		if def != "" {
			d = `,"default":"` + def + `"`
		}
		return rec(`{"name":"e","type":{"type":"enum","name":"E","symbols":[` + syms + `]` + d + `}}`)
	}
	union := func(branches string) string { return rec(`{"name":"u","type":[` + branches + `]}`) }
	nested := func(inner ...string) string {
		return rec(`{"name":"n","type":{"type":"record","name":"Inner","fields":[` + strings.Join(inner, ",") + `]}}`)
	}
	fixed := func(name string, size int) string {
		return rec(`{"name":"f","type":{"type":"fixed","name":"` + name + `","size":` + string(rune('0'+size)) + `}}`)
	}
	arr := func(item string) string { return rec(`{"name":"xs","type":{"type":"array","items":"` + item + `"}}`) }
	mp := func(val string) string { return rec(`{"name":"m","type":{"type":"map","values":"` + val + `"}}`) }

	cases := []struct {
		name    string
		level   string
		earlier []string
		next    string
		want    bool
	}{
		// NONE allows anything.
		{"none/unrelated", CompatNone, []string{rec(a)}, `"string"`, true},
		{"none/drop required", CompatNone, []string{rec(a, b)}, rec(c), true},

		// BACKWARD: new reads old.
		{"backward/add field with default", CompatBackward, []string{rec(a)}, rec(a, bDef), true},
		{"backward/add field without default", CompatBackward, []string{rec(a)}, rec(a, b), false},
		{"backward/add nullable with null default", CompatBackward, []string{rec(a)}, rec(a, bNull), true},
		{"backward/remove field", CompatBackward, []string{rec(a, b)}, rec(a), true},
		{"backward/int to long", CompatBackward, []string{rec(a)}, rec(aLong), true},
		{"backward/int to float", CompatBackward, []string{rec(a)}, rec(aFloat), true},
		{"backward/int to double", CompatBackward, []string{rec(a)}, rec(aDouble), true},
		{"backward/long to double", CompatBackward, []string{rec(aLong)}, rec(aDouble), true},
		{"backward/long to int", CompatBackward, []string{rec(aLong)}, rec(a), false},
		{"backward/double to float", CompatBackward, []string{rec(aDouble)}, rec(aFloat), false},
		{"backward/string to bytes", CompatBackward, []string{rec(aStr)}, rec(aBytes), true},
		{"backward/bytes to string", CompatBackward, []string{rec(aBytes)}, rec(aStr), true},
		{"backward/int to string", CompatBackward, []string{rec(a)}, rec(aStr), false},
		{"backward/rename with alias", CompatBackward, []string{rec(a, b)}, rec(a, bAlias), true},
		{"backward/rename without alias", CompatBackward, []string{rec(a, b)}, rec(a, `{"name":"c","type":"string"}`), false},
		{"backward/enum add symbol", CompatBackward, []string{enum(`"X","Y"`, "")}, enum(`"X","Y","Z"`, ""), true},
		{"backward/enum remove symbol", CompatBackward, []string{enum(`"X","Y"`, "")}, enum(`"X"`, ""), false},
		{"backward/enum remove symbol with default", CompatBackward, []string{enum(`"X","Y"`, "")}, enum(`"X"`, "X"), true},
		{"backward/type into union", CompatBackward, []string{rec(a)}, rec(`{"name":"a","type":["null","int"]}`), true},
		{"backward/union into its branch", CompatBackward, []string{union(`"null","int"`)}, rec(`{"name":"u","type":"int"}`), false},
		{"backward/union add branch", CompatBackward, []string{union(`"null","int"`)}, union(`"null","int","string"`), true},
		{"backward/union remove branch", CompatBackward, []string{union(`"null","int","string"`)}, union(`"null","int"`), false},
		{"backward/union branch promoted", CompatBackward, []string{union(`"null","int"`)}, union(`"null","long"`), true},
		{"backward/nested add field with default", CompatBackward, []string{nested(a)}, nested(a, cDef), true},
		{"backward/nested add field without default", CompatBackward, []string{nested(a)}, nested(a, c), false},
		{"backward/fixed same size", CompatBackward, []string{fixed("F", 4)}, fixed("F", 4), true},
		{"backward/fixed other size", CompatBackward, []string{fixed("F", 4)}, fixed("F", 8), false},
		{"backward/fixed renamed", CompatBackward, []string{fixed("F", 4)}, fixed("G", 4), false},
		{"backward/array items promoted", CompatBackward, []string{arr("int")}, arr("long"), true},
		{"backward/array items narrowed", CompatBackward, []string{arr("long")}, arr("int"), false},
		{"backward/map values to bytes", CompatBackward, []string{mp("string")}, mp("bytes"), true},
		{"backward/map values to int", CompatBackward, []string{mp("string")}, mp("int"), false},
		{"backward/record renamed", CompatBackward, []string{rec(a)}, strings.Replace(rec(a), `"name":"r"`, `"name":"s"`, 1), false},
		{"backward/record renamed with alias", CompatBackward, []string{rec(a)}, strings.Replace(rec(a), `"name":"r"`, `"name":"s","aliases":["ns.r"]`, 1), true},
		{"backward/namespace changed", CompatBackward, []string{rec(a)}, strings.Replace(rec(a), `"namespace":"ns"`, `"namespace":"other"`, 1), true},
		{"backward/logical type added", CompatBackward, []string{rec(aLong)}, rec(`{"name":"a","type":{"type":"long","logicalType":"timestamp-millis"}}`), true},
		{"backward/only against latest", CompatBackward, []string{rec(a), rec(a, bDef)}, rec(a, b), true},
		{"backward/union of int and long into long", CompatBackward, []string{union(`"int","long"`)}, rec(`{"name":"u","type":"long"}`), true},
		{"backward/union of int and string into long", CompatBackward, []string{union(`"int","string"`)}, rec(`{"name":"u","type":"long"}`), false},
		{"backward/logical type changed, same type", CompatBackward,
			[]string{rec(`{"name":"a","type":{"type":"long","logicalType":"timestamp-millis"}}`)},
			rec(`{"name":"a","type":{"type":"long","logicalType":"timestamp-micros"}}`), true},
		{"backward/date into timestamp (int to long)", CompatBackward,
			[]string{rec(`{"name":"a","type":{"type":"int","logicalType":"date"}}`)},
			rec(`{"name":"a","type":{"type":"long","logicalType":"timestamp-millis"}}`), true},
		{"backward/timestamp into date (long to int)", CompatBackward,
			[]string{rec(`{"name":"a","type":{"type":"long","logicalType":"timestamp-millis"}}`)},
			rec(`{"name":"a","type":{"type":"int","logicalType":"date"}}`), false},
		{"backward/decimal bytes into string", CompatBackward,
			[]string{rec(`{"name":"a","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}`)},
			rec(aStr), true},
		{"backward/enum default used for an unknown symbol in a nested record", CompatBackward,
			[]string{nested(`{"name":"e","type":{"type":"enum","name":"E","symbols":["X","Y"]}}`)},
			nested(`{"name":"e","type":{"type":"enum","name":"E","symbols":["X"],"default":"X"}}`), true},

		// BACKWARD_TRANSITIVE: new reads every old.
		{"backward_transitive/against all", CompatBackwardTransitive, []string{rec(a), rec(a, bDef)}, rec(a, b), false},
		{"backward_transitive/all fine", CompatBackwardTransitive, []string{rec(a), rec(a, bDef)}, rec(a, bDef, cDef), true},
		{"backward_transitive/promotion chain", CompatBackwardTransitive, []string{rec(a), rec(aLong)}, rec(aDouble), true},

		// FORWARD: old reads new.
		{"forward/add field without default", CompatForward, []string{rec(a)}, rec(a, b), true},
		{"forward/remove field without default", CompatForward, []string{rec(a, b)}, rec(a), false},
		{"forward/remove field with default", CompatForward, []string{rec(a, bDef)}, rec(a), true},
		{"forward/int to long", CompatForward, []string{rec(a)}, rec(aLong), false},
		{"forward/long to int", CompatForward, []string{rec(aLong)}, rec(a), true},
		{"forward/enum add symbol", CompatForward, []string{enum(`"X","Y"`, "")}, enum(`"X","Y","Z"`, ""), false},
		{"forward/enum add symbol, old has default", CompatForward, []string{enum(`"X","Y"`, "X")}, enum(`"X","Y","Z"`, "X"), true},
		{"forward/enum remove symbol", CompatForward, []string{enum(`"X","Y"`, "")}, enum(`"X"`, ""), true},
		{"forward/union remove branch", CompatForward, []string{union(`"null","int","string"`)}, union(`"null","int"`), true},

		// FORWARD_TRANSITIVE: every old reads new.
		{"forward_transitive/against all", CompatForwardTransitive, []string{rec(a, b), rec(a, bDef)}, rec(a), false},
		{"forward_transitive/all fine", CompatForwardTransitive, []string{rec(a, bDef), rec(a, bDef, c)}, rec(a, bDef, c, `{"name":"d","type":"int"}`), true},

		// FULL: both ways with the latest.
		{"full/add field with default", CompatFull, []string{rec(a)}, rec(a, bDef), true},
		{"full/add field without default", CompatFull, []string{rec(a)}, rec(a, b), false},
		{"full/remove field with default", CompatFull, []string{rec(a, bDef)}, rec(a), true},
		{"full/remove field without default", CompatFull, []string{rec(a, b)}, rec(a), false},
		{"full/int to long", CompatFull, []string{rec(a)}, rec(aLong), false},
		{"full/string to bytes", CompatFull, []string{rec(aStr)}, rec(aBytes), true},
		{"full/only against latest", CompatFull, []string{rec(a, b), rec(a, bDef)}, rec(a), true},

		// FULL_TRANSITIVE: both ways with every old.
		{"full_transitive/against all", CompatFullTransitive, []string{rec(a, b), rec(a, bDef)}, rec(a), false},
		{"full_transitive/all fine", CompatFullTransitive, []string{rec(a), rec(a, bDef)}, rec(a, bDef, cDef), true},

		// Recursive types resolve without looping.
		{"backward/recursive list", CompatBackward,
			[]string{`{"type":"record","name":"L","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}`},
			`{"type":"record","name":"L","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","L"]},{"name":"w","type":"int","default":1}]}`, true},
		{"backward/recursive list narrowed", CompatBackward,
			[]string{`{"type":"record","name":"L","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","L"]}]}`},
			`{"type":"record","name":"L","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}`, false},
	}
	levels := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			levels[tc.level] = true
			var earlier []*avroschema.Schema
			for _, s := range tc.earlier {
				p, err := avroschema.ParseChecked(s, nil)
				if err != nil {
					t.Fatalf("earlier schema %s: %v", s, err)
				}
				earlier = append(earlier, p.Root)
			}
			p, err := avroschema.ParseChecked(tc.next, nil)
			if err != nil {
				t.Fatalf("new schema %s: %v", tc.next, err)
			}
			msgs := compatible(tc.level, p.Root, earlier)
			if got := len(msgs) == 0; got != tc.want {
				t.Fatalf("%s: compatible = %v, want %v (messages %q)", tc.level, got, tc.want, msgs)
			}
		})
	}
	if len(cases) < 40 || len(levels) != len(compatLevels) {
		t.Fatalf("table has %d cases over %d levels; want at least 40 over all %d", len(cases), len(levels), len(compatLevels))
	}
}
