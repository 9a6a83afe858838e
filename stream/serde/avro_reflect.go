package serde

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/internal/avroschema"
)

// Avro records from Go types. A struct is a record whose fields are the
// struct's exported fields, named by their `avro:"name"` tag or else by
// the Go field name (`avro:"-"` leaves a field out). Go types map to Avro
// types as follows:
//
//	bool                          boolean
//	int8, int16, int32, uint8, uint16   int
//	int, int64, uint32            long
//	float32, float64              float, double
//	string                        string
//	[]byte                        bytes
//	time.Time                     long with logicalType timestamp-millis
//	struct                        record named by the Go type
//	[]T                           array of T
//	map[string]T                  map of T
//	*T                            ["null", T] with default null
//
// Other types (uint, uint64, interfaces, channels, maps with other keys)
// have no Avro type; deriving a schema from them is an error.

// avroTimeType is time.Time, a struct that is not a record.
var avroTimeType = reflect.TypeFor[time.Time]()

// AvroSchemaOf returns the Avro record schema of T, a struct, as JSON:
// the schema that Avro[T] registers unless given AvroSchema. namespace is
// the namespace of the records (and may be "").
func AvroSchemaOf[T any](namespace string) (string, error) {
	return avroSchemaOf(reflect.TypeFor[T](), namespace)
}

func avroSchemaOf(t reflect.Type, namespace string) (string, error) {
	if t.Kind() != reflect.Struct || t == avroTimeType {
		return "", fmt.Errorf("serde: avro: %s is not a struct; a record comes from a struct", t)
	}
	d := &avroDeriver{ns: namespace, named: map[reflect.Type]string{}, names: map[string]reflect.Type{}}
	s, err := d.schema(t, t.Name())
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("serde: avro: %w", err)
	}
	return string(b), nil
}

// avroDeriver builds a schema from Go types. A struct type met a second
// time (a type used by two fields, or a recursive one) is named, not
// defined again, as Avro requires.
type avroDeriver struct {
	ns    string
	named map[reflect.Type]string // struct type to its record's name
	names map[string]reflect.Type // and back, to catch two types of one name
}

// avroField and avroRecord give the JSON of a schema its usual key order.
type avroField struct {
	Name    string `json:"name"`
	Type    any    `json:"type"`
	Default any    `json:"default,omitempty"`
	// nullDefault writes "default": null, which omitempty cannot.
	nullDefault bool
}

func (f avroField) MarshalJSON() ([]byte, error) {
	type plain avroField
	b, err := json.Marshal(plain(f))
	if err != nil || !f.nullDefault {
		return b, err
	}
	return append(b[:len(b)-1], `,"default":null}`...), nil
}

type avroRecord struct {
	Type      string      `json:"type"`
	Name      string      `json:"name"`
	Namespace string      `json:"namespace,omitempty"`
	Fields    []avroField `json:"fields"`
}

func (d *avroDeriver) schema(t reflect.Type, path string) (any, error) {
	switch t {
	case avroTimeType:
		return map[string]string{"type": "long", "logicalType": "timestamp-millis"}, nil
	case reflect.TypeFor[[]byte]():
		return "bytes", nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean", nil
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16:
		return "int", nil
	case reflect.Int, reflect.Int64, reflect.Uint32:
		return "long", nil
	case reflect.Float32:
		return "float", nil
	case reflect.Float64:
		return "double", nil
	case reflect.String:
		return "string", nil
	case reflect.Slice:
		items, err := d.schema(t.Elem(), path+"[]")
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "array", "items": items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("serde: avro: %s: map keys must be strings, not %s", path, t.Key())
		}
		values, err := d.schema(t.Elem(), path+"[key]")
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "map", "values": values}, nil
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Pointer {
			return nil, fmt.Errorf("serde: avro: %s: a pointer to a pointer has no Avro type", path)
		}
		elem, err := d.schema(t.Elem(), path)
		if err != nil {
			return nil, err
		}
		return []any{"null", elem}, nil
	case reflect.Struct:
		return d.record(t, path)
	}
	return nil, fmt.Errorf("serde: avro: %s: %s has no Avro type", path, t)
}

func (d *avroDeriver) record(t reflect.Type, path string) (any, error) {
	if name, ok := d.named[t]; ok {
		return name, nil
	}
	name := t.Name()
	if name == "" {
		return nil, fmt.Errorf("serde: avro: %s: an anonymous struct has no record name", path)
	}
	if i := strings.IndexByte(name, '['); i >= 0 {
		// A generic type's name carries its type arguments.
		return nil, fmt.Errorf("serde: avro: %s: %s is generic; its name is no Avro name", path, name)
	}
	full := name
	if d.ns != "" {
		full = d.ns + "." + name
	}
	if other, ok := d.names[full]; ok {
		return nil, fmt.Errorf("serde: avro: %s: types %s and %s both make record %s", path, other, t, full)
	}
	d.named[t], d.names[full] = full, t
	rec := avroRecord{Type: "record", Name: name, Namespace: d.ns, Fields: []avroField{}}
	for _, f := range avroFields(t) {
		ft, err := d.schema(f.typ, path+"."+f.name)
		if err != nil {
			return nil, err
		}
		af := avroField{Name: f.name, Type: ft}
		if f.typ.Kind() == reflect.Pointer {
			af.nullDefault = true
		}
		rec.Fields = append(rec.Fields, af)
	}
	return rec, nil
}

// goField is an exported struct field with its Avro name.
type goField struct {
	name  string
	index int
	typ   reflect.Type
}

// avroFields lists the fields of struct t that are record fields.
func avroFields(t reflect.Type) []goField {
	var out []goField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("avro"); ok {
			tag, _, _ = strings.Cut(tag, ",")
			if tag == "-" {
				continue
			}
			if tag != "" {
				name = tag
			}
		}
		out = append(out, goField{name: name, index: i, typ: f.Type})
	}
	return out
}

// avroConv converts between a Go type and goavro's native form of one
// schema. It is built once per serde, so the hot path does no lookups by
// name.
type avroConv struct {
	enc func(v reflect.Value) (any, error)
	dec func(native any, v reflect.Value) error
}

type convKey struct {
	t reflect.Type
	s *avroschema.Schema
}

// newAvroConv builds the conversion of t to and from schema s.
func newAvroConv(t reflect.Type, s *avroschema.Schema) (*avroConv, error) {
	return buildConv(t, s, map[convKey]*avroConv{}, t.String())
}

func buildConv(t reflect.Type, s *avroschema.Schema, done map[convKey]*avroConv, path string) (*avroConv, error) {
	k := convKey{t, s}
	if c, ok := done[k]; ok {
		// A recursive type: its conversion is being built and is filled
		// in before it is used.
		return c, nil
	}
	c := &avroConv{}
	done[k] = c
	mismatch := func() (*avroConv, error) {
		return nil, fmt.Errorf("serde: avro: %s: Go type %s does not fit Avro %s", path, t, avroDescribe(s))
	}
	if t.Kind() == reflect.Interface && t.NumMethod() == 0 {
		// any holds goavro's native form as it is.
		c.enc = func(v reflect.Value) (any, error) { return v.Interface(), nil }
		c.dec = func(n any, v reflect.Value) error {
			if n != nil {
				v.Set(reflect.ValueOf(n))
			}
			return nil
		}
		return c, nil
	}
	switch s.Kind {
	case avroschema.Union:
		return c, unionConv(c, t, s, done, path)
	case avroschema.Null:
		c.enc = func(reflect.Value) (any, error) { return nil, nil }
		c.dec = func(any, reflect.Value) error { return nil }
		return c, nil
	case avroschema.Record:
		if t.Kind() != reflect.Struct || t == avroTimeType {
			return mismatch()
		}
		return c, recordConv(c, t, s, done, path)
	case avroschema.Array:
		if t.Kind() != reflect.Slice || t.Elem().Kind() == reflect.Uint8 {
			return mismatch()
		}
		ec, err := buildConv(t.Elem(), s.Items, done, path+"[]")
		if err != nil {
			return nil, err
		}
		c.enc = func(v reflect.Value) (any, error) {
			out := make([]any, v.Len())
			for i := range out {
				var err error
				if out[i], err = ec.enc(v.Index(i)); err != nil {
					return nil, err
				}
			}
			return out, nil
		}
		c.dec = func(n any, v reflect.Value) error {
			items, ok := n.([]any)
			if !ok {
				return fmt.Errorf("serde: avro: %s: decoded %T, not an array", path, n)
			}
			sl := reflect.MakeSlice(t, len(items), len(items))
			for i, it := range items {
				if err := ec.dec(it, sl.Index(i)); err != nil {
					return err
				}
			}
			v.Set(sl)
			return nil
		}
		return c, nil
	case avroschema.Map:
		if t.Kind() != reflect.Map || t.Key().Kind() != reflect.String {
			return mismatch()
		}
		vc, err := buildConv(t.Elem(), s.Values, done, path+"[key]")
		if err != nil {
			return nil, err
		}
		c.enc = func(v reflect.Value) (any, error) {
			out := make(map[string]any, v.Len())
			for it := v.MapRange(); it.Next(); {
				n, err := vc.enc(it.Value())
				if err != nil {
					return nil, err
				}
				out[it.Key().String()] = n
			}
			return out, nil
		}
		c.dec = func(n any, v reflect.Value) error {
			m, ok := n.(map[string]any)
			if !ok {
				return fmt.Errorf("serde: avro: %s: decoded %T, not a map", path, n)
			}
			out := reflect.MakeMapWithSize(t, len(m))
			for k, x := range m {
				ev := reflect.New(t.Elem()).Elem()
				if err := vc.dec(x, ev); err != nil {
					return err
				}
				out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
			}
			v.Set(out)
			return nil
		}
		return c, nil
	}
	if t.Kind() == reflect.Pointer {
		// A pointer where the schema has no null: nil cannot be written.
		ec, err := buildConv(t.Elem(), s, done, path)
		if err != nil {
			return nil, err
		}
		c.enc = func(v reflect.Value) (any, error) {
			if v.IsNil() {
				return nil, fmt.Errorf("serde: avro: %s: nil, and %s has no null", path, avroDescribe(s))
			}
			return ec.enc(v.Elem())
		}
		c.dec = func(n any, v reflect.Value) error {
			p := reflect.New(t.Elem())
			if err := ec.dec(n, p.Elem()); err != nil {
				return err
			}
			v.Set(p)
			return nil
		}
		return c, nil
	}
	if !leafConv(c, t, s, path) {
		return mismatch()
	}
	return c, nil
}

// unionConv converts a pointer (nil being the null branch) or a value to
// a union with null and one other branch.
func unionConv(c *avroConv, t reflect.Type, s *avroschema.Schema, done map[convKey]*avroConv, path string) error {
	hasNull := false
	var other *avroschema.Schema
	for _, b := range s.Branches {
		switch {
		case b.Kind == avroschema.Null:
			hasNull = true
		case other == nil:
			other = b
		default:
			return fmt.Errorf("serde: avro: %s: the union %s has several non-null branches; use a field of type any", path, avroDescribe(s))
		}
	}
	if other == nil {
		c.enc = func(reflect.Value) (any, error) { return nil, nil }
		c.dec = func(any, reflect.Value) error { return nil }
		return nil
	}
	elem := t
	if t.Kind() == reflect.Pointer && hasNull {
		elem = t.Elem()
	}
	ec, err := buildConv(elem, other, done, path)
	if err != nil {
		return err
	}
	key := avroschema.UnionKey(other)
	c.enc = func(v reflect.Value) (any, error) {
		if elem != t {
			if v.IsNil() {
				return nil, nil
			}
			v = v.Elem()
		}
		n, err := ec.enc(v)
		if err != nil {
			return nil, err
		}
		return map[string]any{key: n}, nil
	}
	c.dec = func(n any, v reflect.Value) error {
		if n == nil {
			v.SetZero()
			return nil
		}
		m, ok := n.(map[string]any)
		if !ok || len(m) != 1 {
			return fmt.Errorf("serde: avro: %s: decoded %T, not a union value", path, n)
		}
		x, ok := m[key]
		if !ok {
			return fmt.Errorf("serde: avro: %s: decoded a union value of another branch", path)
		}
		if elem != t {
			p := reflect.New(elem)
			if err := ec.dec(x, p.Elem()); err != nil {
				return err
			}
			v.Set(p)
			return nil
		}
		return ec.dec(x, v)
	}
	return nil
}

// recordConv converts a struct to a record by field name. A record field
// the struct lacks is written with its default, and is an error without
// one; a struct field the record lacks is left alone.
func recordConv(c *avroConv, t reflect.Type, s *avroschema.Schema, done map[convKey]*avroConv, path string) error {
	byName := map[string]goField{}
	for _, f := range avroFields(t) {
		byName[f.name] = f
	}
	type fieldConv struct {
		name  string
		index int // -1: not in the struct, written as def
		def   any
		conv  *avroConv
	}
	fields := make([]fieldConv, 0, len(s.Fields))
	for _, af := range s.Fields {
		gf, ok := byName[af.Name]
		if !ok {
			if !af.HasDefault {
				return fmt.Errorf("serde: avro: %s: the record's field %q, which has no default, is not in %s", path, af.Name, t)
			}
			def, err := avroschema.DefaultNative(af.Type, af.Default)
			if err != nil {
				return fmt.Errorf("serde: avro: %s.%s: default: %w", path, af.Name, err)
			}
			fields = append(fields, fieldConv{name: af.Name, index: -1, def: def})
			continue
		}
		fc, err := buildConv(gf.typ, af.Type, done, path+"."+af.Name)
		if err != nil {
			return err
		}
		fields = append(fields, fieldConv{name: af.Name, index: gf.index, conv: fc})
	}
	c.enc = func(v reflect.Value) (any, error) {
		m := make(map[string]any, len(fields))
		for _, f := range fields {
			if f.index < 0 {
				m[f.name] = f.def
				continue
			}
			n, err := f.conv.enc(v.Field(f.index))
			if err != nil {
				return nil, err
			}
			m[f.name] = n
		}
		return m, nil
	}
	c.dec = func(n any, v reflect.Value) error {
		m, ok := n.(map[string]any)
		if !ok {
			return fmt.Errorf("serde: avro: %s: decoded %T, not a record", path, n)
		}
		for _, f := range fields {
			if f.index < 0 {
				continue
			}
			if err := f.conv.dec(m[f.name], v.Field(f.index)); err != nil {
				return err
			}
		}
		return nil
	}
	return nil
}

// leafConv converts scalars; it reports whether t fits s.
func leafConv(c *avroConv, t reflect.Type, s *avroschema.Schema, path string) bool {
	overflow := func(n any) error {
		return fmt.Errorf("serde: avro: %s: %v does not fit %s", path, n, t)
	}
	switch {
	case t == avroTimeType:
		if s.Kind != avroschema.Long || (s.Logical != "timestamp-millis" && s.Logical != "timestamp-micros") {
			return false
		}
		c.enc = func(v reflect.Value) (any, error) { return v.Interface(), nil }
		c.dec = func(n any, v reflect.Value) error {
			tm, ok := n.(time.Time)
			if !ok {
				return fmt.Errorf("serde: avro: %s: decoded %T, not a time", path, n)
			}
			v.Set(reflect.ValueOf(tm))
			return nil
		}
		return true
	case s.Kind == avroschema.Boolean && t.Kind() == reflect.Bool:
		c.enc = func(v reflect.Value) (any, error) { return v.Bool(), nil }
		c.dec = func(n any, v reflect.Value) error {
			b, ok := n.(bool)
			if !ok {
				return fmt.Errorf("serde: avro: %s: decoded %T, not a boolean", path, n)
			}
			v.SetBool(b)
			return nil
		}
		return true
	case (s.Kind == avroschema.Int || s.Kind == avroschema.Long) && s.Logical == "":
		isInt := s.Kind == avroschema.Int
		var enc func(v reflect.Value) (int64, error)
		var dec func(x int64, v reflect.Value) error
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			enc = func(v reflect.Value) (int64, error) { return v.Int(), nil }
			dec = func(x int64, v reflect.Value) error {
				if v.OverflowInt(x) {
					return overflow(x)
				}
				v.SetInt(x)
				return nil
			}
		case reflect.Uint8, reflect.Uint16, reflect.Uint32:
			enc = func(v reflect.Value) (int64, error) { return int64(v.Uint()), nil }
			dec = func(x int64, v reflect.Value) error {
				if x < 0 || v.OverflowUint(uint64(x)) {
					return overflow(x)
				}
				v.SetUint(uint64(x))
				return nil
			}
		default:
			return false
		}
		c.enc = func(v reflect.Value) (any, error) {
			x, err := enc(v)
			if err != nil {
				return nil, err
			}
			if isInt {
				if x < math.MinInt32 || x > math.MaxInt32 {
					return nil, fmt.Errorf("serde: avro: %s: %d does not fit an Avro int", path, x)
				}
				return int32(x), nil
			}
			return x, nil
		}
		c.dec = func(n any, v reflect.Value) error {
			switch x := n.(type) {
			case int32:
				return dec(int64(x), v)
			case int64:
				return dec(x, v)
			}
			return fmt.Errorf("serde: avro: %s: decoded %T, not an integer", path, n)
		}
		return true
	case (s.Kind == avroschema.Float || s.Kind == avroschema.Double) && (t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64):
		isFloat := s.Kind == avroschema.Float
		c.enc = func(v reflect.Value) (any, error) {
			if isFloat {
				return float32(v.Float()), nil
			}
			return v.Float(), nil
		}
		c.dec = func(n any, v reflect.Value) error {
			switch x := n.(type) {
			case float32:
				v.SetFloat(float64(x))
			case float64:
				v.SetFloat(x)
			default:
				return fmt.Errorf("serde: avro: %s: decoded %T, not a float", path, n)
			}
			return nil
		}
		return true
	case (s.Kind == avroschema.String || s.Kind == avroschema.Enum) && t.Kind() == reflect.String:
		c.enc = func(v reflect.Value) (any, error) { return v.String(), nil }
		c.dec = func(n any, v reflect.Value) error {
			switch x := n.(type) {
			case string:
				v.SetString(x)
			case []byte:
				v.SetString(string(x))
			default:
				return fmt.Errorf("serde: avro: %s: decoded %T, not a string", path, n)
			}
			return nil
		}
		return true
	case (s.Kind == avroschema.Bytes || s.Kind == avroschema.Fixed || s.Kind == avroschema.String) && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		isString := s.Kind == avroschema.String
		c.enc = func(v reflect.Value) (any, error) {
			if isString {
				return string(v.Bytes()), nil
			}
			return v.Bytes(), nil
		}
		c.dec = func(n any, v reflect.Value) error {
			switch x := n.(type) {
			case []byte:
				v.SetBytes(x)
			case string:
				v.SetBytes([]byte(x))
			default:
				return fmt.Errorf("serde: avro: %s: decoded %T, not bytes", path, n)
			}
			return nil
		}
		return true
	}
	return false
}

// avroDescribe names a schema in an error.
func avroDescribe(s *avroschema.Schema) string {
	if s.Name != "" {
		return fmt.Sprintf("%s %s", s.Kind, s.Name)
	}
	if s.Logical != "" {
		return fmt.Sprintf("%s (%s)", s.Kind, s.Logical)
	}
	return string(s.Kind)
}

// errAvroNotStruct is the error of Avro[T] for a T that is no struct.
var errAvroNotStruct = errors.New("serde: avro: Avro[T] needs a struct type T; use AvroGeneric for maps")
