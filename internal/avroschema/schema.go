// Package avroschema parses Avro schemas into a tree the registry can
// reason about, writes them back in a normalized, self-contained form, and
// decides whether data written with one schema can be read with another
// (the schema-resolution rules of the Avro specification).
//
// goavro (github.com/linkedin/goavro/v2) is the codec and the final judge of
// validity: Parse builds the tree, then hands the self-contained form to
// goavro, which checks what the tree does not (default values against their
// types, logical-type attributes). goavro does not expose its parsed
// schema, and resolution needs one, hence this tree.
//
// Named types live in a Names table. A schema with references (the
// registry's schema references) is parsed with the referenced schemas'
// names already in the table, so it may use them by name.
package avroschema

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Kind is an Avro type: a primitive or a complex type.
type Kind string

// The Avro types.
const (
	Null    Kind = "null"
	Boolean Kind = "boolean"
	Int     Kind = "int"
	Long    Kind = "long"
	Float   Kind = "float"
	Double  Kind = "double"
	Bytes   Kind = "bytes"
	String  Kind = "string"
	Record  Kind = "record"
	Enum    Kind = "enum"
	Array   Kind = "array"
	Map     Kind = "map"
	Union   Kind = "union"
	Fixed   Kind = "fixed"
)

var primitives = map[string]Kind{
	"null": Null, "boolean": Boolean, "int": Int, "long": Long,
	"float": Float, "double": Double, "bytes": Bytes, "string": String,
}

// Schema is one node of a parsed schema. A named type (record, enum,
// fixed) is one node however often it is referenced, so the tree of a
// recursive record has cycles.
type Schema struct {
	Kind Kind
	// Name is the full name of a named type ("ns.Name").
	Name string
	// Aliases are the full names a named type was also known by.
	Aliases []string
	// Logical is the logicalType attribute, with its parameters in Props.
	Logical string
	// Props keeps a logical type's parameters (precision, scale) for the
	// normalized form.
	Props map[string]any

	Fields     []*Field  // record
	Symbols    []string  // enum
	EnumDef    *string   // enum default symbol
	Items      *Schema   // array
	Values     *Schema   // map
	Branches   []*Schema // union
	Size       int       // fixed
	IsErrorRec bool      // record declared as "error"
}

// Field is a record field.
type Field struct {
	Name       string
	Aliases    []string
	Type       *Schema
	HasDefault bool
	Default    any
	Order      string
}

// Names maps full names to the named types defined so far.
type Names map[string]*Schema

// Parse parses a schema's JSON text. names holds the named types it may
// use without defining them (those of its references); Parse adds the
// types the schema defines. names may be nil.
func Parse(text string, names Names) (*Schema, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("avro: schema is not JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("avro: trailing data after the schema")
	}
	if names == nil {
		names = Names{}
	}
	p := &parser{names: names}
	return p.parse(v, "")
}

type parser struct {
	names Names
	depth int
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 256

func (p *parser) parse(v any, ns string) (*Schema, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, fmt.Errorf("avro: schema nested deeper than %d", maxDepth)
	}
	switch v := v.(type) {
	case string:
		return p.ref(v, ns)
	case []any:
		return p.union(v, ns)
	case map[string]any:
		return p.object(v, ns)
	default:
		return nil, fmt.Errorf("avro: a schema is a string, an array or an object, not %s", jsonKind(v))
	}
}

func (p *parser) ref(name, ns string) (*Schema, error) {
	if k, ok := primitives[name]; ok {
		return &Schema{Kind: k}, nil
	}
	if s, ok := p.names[fullName(name, ns)]; ok {
		return s, nil
	}
	if s, ok := p.names[name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("avro: unknown type %q", name)
}

func (p *parser) union(vs []any, ns string) (*Schema, error) {
	u := &Schema{Kind: Union}
	seen := map[string]bool{}
	for _, v := range vs {
		b, err := p.parse(v, ns)
		if err != nil {
			return nil, err
		}
		if b.Kind == Union {
			return nil, fmt.Errorf("avro: a union may not contain a union")
		}
		key := string(b.Kind)
		if b.Name != "" {
			key = b.Name
		}
		if seen[key] {
			return nil, fmt.Errorf("avro: union has %s twice", key)
		}
		seen[key] = true
		u.Branches = append(u.Branches, b)
	}
	return u, nil
}

func (p *parser) object(m map[string]any, ns string) (*Schema, error) {
	t, ok := m["type"]
	if !ok {
		return nil, fmt.Errorf("avro: schema object has no \"type\"")
	}
	ts, ok := t.(string)
	if !ok {
		// {"type": {...}} or {"type": [...]}: the inner schema.
		return p.parse(t, ns)
	}
	logical, _ := m["logicalType"].(string)
	switch ts {
	case "record", "error":
		return p.record(m, ns, ts == "error")
	case "enum":
		return p.enum(m, ns)
	case "fixed":
		s, err := p.named(m, ns, Fixed)
		if err != nil {
			return nil, err
		}
		size, ok := m["size"].(json.Number)
		n, err := size.Int64()
		if !ok || err != nil || n < 0 || n > 1<<30 {
			return nil, fmt.Errorf("avro: fixed %s needs a non-negative integer size", s.Name)
		}
		s.Size = int(n)
		s.Logical, s.Props = logical, logicalProps(m)
		return s, nil
	case "array":
		items, ok := m["items"]
		if !ok {
			return nil, fmt.Errorf("avro: array has no \"items\"")
		}
		it, err := p.parse(items, ns)
		if err != nil {
			return nil, err
		}
		return &Schema{Kind: Array, Items: it, Logical: logical, Props: logicalProps(m)}, nil
	case "map":
		values, ok := m["values"]
		if !ok {
			return nil, fmt.Errorf("avro: map has no \"values\"")
		}
		vt, err := p.parse(values, ns)
		if err != nil {
			return nil, err
		}
		return &Schema{Kind: Map, Values: vt, Logical: logical, Props: logicalProps(m)}, nil
	}
	if k, ok := primitives[ts]; ok {
		return &Schema{Kind: k, Logical: logical, Props: logicalProps(m)}, nil
	}
	// {"type": "com.example.Named"} refers to a named type.
	return p.ref(ts, ns)
}

// logicalProps keeps the parameters of a logical type that change what the
// bytes mean.
func logicalProps(m map[string]any) map[string]any {
	var props map[string]any
	for _, k := range []string{"precision", "scale"} {
		if v, ok := m[k]; ok {
			if props == nil {
				props = map[string]any{}
			}
			props[k] = v
		}
	}
	return props
}

// named reads name, namespace and aliases and defines the type.
func (p *parser) named(m map[string]any, ns string, k Kind) (*Schema, error) {
	name, ok := m["name"].(string)
	if !ok || name == "" {
		return nil, fmt.Errorf("avro: %s has no name", k)
	}
	if n, ok := m["namespace"].(string); ok && !strings.Contains(name, ".") {
		ns = n
	}
	full := fullName(name, ns)
	for _, part := range strings.Split(full, ".") {
		if !validName(part) {
			return nil, fmt.Errorf("avro: invalid name %q", full)
		}
	}
	if _, ok := primitives[full]; ok {
		return nil, fmt.Errorf("avro: %q is a primitive type, not a name", full)
	}
	if _, ok := p.names[full]; ok {
		return nil, fmt.Errorf("avro: %s is defined twice", full)
	}
	s := &Schema{Kind: k, Name: full}
	aliases, err := stringList(m["aliases"], "aliases")
	if err != nil {
		return nil, err
	}
	for _, a := range aliases {
		s.Aliases = append(s.Aliases, fullName(a, namespaceOf(full)))
	}
	p.names[full] = s
	return s, nil
}

func (p *parser) record(m map[string]any, ns string, isErr bool) (*Schema, error) {
	s, err := p.named(m, ns, Record)
	if err != nil {
		return nil, err
	}
	s.IsErrorRec = isErr
	fields, ok := m["fields"].([]any)
	if !ok {
		return nil, fmt.Errorf("avro: record %s needs a \"fields\" array", s.Name)
	}
	inner := namespaceOf(s.Name)
	seen := map[string]bool{}
	for _, fv := range fields {
		fm, ok := fv.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("avro: record %s: a field is an object", s.Name)
		}
		name, ok := fm["name"].(string)
		if !ok || !validName(name) {
			return nil, fmt.Errorf("avro: record %s: field with invalid name %v", s.Name, fm["name"])
		}
		if seen[name] {
			return nil, fmt.Errorf("avro: record %s: field %s twice", s.Name, name)
		}
		seen[name] = true
		ft, ok := fm["type"]
		if !ok {
			return nil, fmt.Errorf("avro: record %s: field %s has no type", s.Name, name)
		}
		t, err := p.parse(ft, inner)
		if err != nil {
			return nil, fmt.Errorf("%w (in field %s.%s)", err, s.Name, name)
		}
		f := &Field{Name: name, Type: t}
		f.Default, f.HasDefault = fm["default"]
		if f.Aliases, err = stringList(fm["aliases"], "aliases"); err != nil {
			return nil, err
		}
		if o, ok := fm["order"].(string); ok {
			if o != "ascending" && o != "descending" && o != "ignore" {
				return nil, fmt.Errorf("avro: field %s: order %q", name, o)
			}
			f.Order = o
		}
		s.Fields = append(s.Fields, f)
	}
	return s, nil
}

func (p *parser) enum(m map[string]any, ns string) (*Schema, error) {
	s, err := p.named(m, ns, Enum)
	if err != nil {
		return nil, err
	}
	syms, err := stringList(m["symbols"], "symbols")
	if err != nil || m["symbols"] == nil {
		return nil, fmt.Errorf("avro: enum %s needs a \"symbols\" array of strings", s.Name)
	}
	seen := map[string]bool{}
	for _, sym := range syms {
		if !validName(sym) || seen[sym] {
			return nil, fmt.Errorf("avro: enum %s: symbol %q invalid or repeated", s.Name, sym)
		}
		seen[sym] = true
	}
	s.Symbols = syms
	if d, ok := m["default"]; ok {
		ds, ok := d.(string)
		if !ok || !seen[ds] {
			return nil, fmt.Errorf("avro: enum %s: default %v is not one of its symbols", s.Name, d)
		}
		s.EnumDef = &ds
	}
	return s, nil
}

func stringList(v any, what string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	vs, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("avro: %s is an array of strings", what)
	}
	out := make([]string, 0, len(vs))
	for _, e := range vs {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("avro: %s is an array of strings", what)
		}
		out = append(out, s)
	}
	return out, nil
}

func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

// simpleName is a full name without its namespace.
func simpleName(full string) string { return full[strings.LastIndexByte(full, '.')+1:] }

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
