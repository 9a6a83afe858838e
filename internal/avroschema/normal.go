package avroschema

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/linkedin/goavro/v2"
)

// Normalize writes s as self-contained JSON: every named type is defined
// in full, with its full name, where it first appears and referred to by
// full name after; attributes come in a fixed order and docs are left
// out. Two schemas that mean the same, however written (whitespace,
// attribute order, namespaces spelled out or inherited), normalize the
// same. Unlike Avro's Parsing Canonical Form it keeps what changes how
// data resolves (defaults, aliases, logical types, sort order), so a
// schema that only adds a default is a new schema, as the Confluent
// registry treats it.
func Normalize(s *Schema) string { return NormalizeReferring(s, nil) }

// NormalizeReferring is Normalize for a schema whose references define
// the named types in external: those are written by name, as the schema
// itself refers to them, so the result parses again with the same
// references in scope. A nil external is Normalize.
func NormalizeReferring(s *Schema, external Names) string {
	var b strings.Builder
	w := writer{b: &b, defined: map[string]bool{}}
	for name := range external {
		w.defined[name] = true
	}
	w.schema(s)
	return b.String()
}

type writer struct {
	b       *strings.Builder
	defined map[string]bool
}

func (w *writer) str(s string) {
	q, _ := json.Marshal(s)
	w.b.Write(q)
}

func (w *writer) raw(v any) {
	q, err := json.Marshal(v)
	if err != nil {
		q = []byte("null")
	}
	w.b.Write(q)
}

func (w *writer) schema(s *Schema) {
	switch s.Kind {
	case Union:
		w.b.WriteByte('[')
		for i, br := range s.Branches {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.schema(br)
		}
		w.b.WriteByte(']')
		return
	case Record, Enum, Fixed:
		if w.defined[s.Name] {
			w.str(s.Name)
			return
		}
		w.defined[s.Name] = true
	}
	if s.Kind != Record && s.Kind != Enum && s.Kind != Fixed && s.Kind != Array && s.Kind != Map && s.Logical == "" {
		w.str(string(s.Kind))
		return
	}
	typ := string(s.Kind)
	if s.IsErrorRec {
		typ = "error"
	}
	w.b.WriteString(`{"type":`)
	w.str(typ)
	if s.Name != "" {
		w.b.WriteString(`,"name":`)
		w.str(s.Name)
	}
	if len(s.Aliases) > 0 {
		w.b.WriteString(`,"aliases":`)
		w.raw(s.Aliases)
	}
	switch s.Kind {
	case Record:
		w.b.WriteString(`,"fields":[`)
		for i, f := range s.Fields {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.b.WriteString(`{"name":`)
			w.str(f.Name)
			if len(f.Aliases) > 0 {
				w.b.WriteString(`,"aliases":`)
				w.raw(f.Aliases)
			}
			w.b.WriteString(`,"type":`)
			w.schema(f.Type)
			if f.HasDefault {
				w.b.WriteString(`,"default":`)
				w.raw(f.Default)
			}
			if f.Order != "" && f.Order != "ascending" {
				w.b.WriteString(`,"order":`)
				w.str(f.Order)
			}
			w.b.WriteByte('}')
		}
		w.b.WriteByte(']')
	case Enum:
		w.b.WriteString(`,"symbols":`)
		w.raw(s.Symbols)
		if s.EnumDef != nil {
			w.b.WriteString(`,"default":`)
			w.str(*s.EnumDef)
		}
	case Fixed:
		fmt.Fprintf(w.b, `,"size":%d`, s.Size)
	case Array:
		w.b.WriteString(`,"items":`)
		w.schema(s.Items)
	case Map:
		w.b.WriteString(`,"values":`)
		w.schema(s.Values)
	}
	if s.Logical != "" {
		w.b.WriteString(`,"logicalType":`)
		w.str(s.Logical)
		for _, k := range []string{"precision", "scale"} {
			if v, ok := s.Props[k]; ok {
				fmt.Fprintf(w.b, `,%q:`, k)
				w.raw(v)
			}
		}
	}
	w.b.WriteByte('}')
}

// Parsed is a schema checked by goavro, with its normalized form.
type Parsed struct {
	Root *Schema
	// Normal is the normalized, self-contained form (see Normalize).
	Normal string
	// Codec encodes and decodes data of this schema.
	Codec *goavro.Codec
}

// ParseChecked parses text with the named types in names (which it
// extends) and has goavro check the result.
func ParseChecked(text string, names Names) (*Parsed, error) {
	root, err := Parse(text, names)
	if err != nil {
		return nil, err
	}
	normal := Normalize(root)
	codec, err := goavro.NewCodec(normal)
	if err != nil {
		return nil, fmt.Errorf("avro: %w", err)
	}
	return &Parsed{Root: root, Normal: normal, Codec: codec}, nil
}
