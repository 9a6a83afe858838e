package avroschema

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/linkedin/goavro/v2"
)

// A Projector turns data decoded with a writer schema into data of a
// reader schema, by the specification's resolution rules (see CanRead):
// fields the reader lacks are dropped, fields the writer lacks take the
// reader's default, numbers are promoted, enum symbols the reader lacks
// become its default, and union branches are chosen again. Data is in
// goavro's native form (records and maps as map[string]any, unions as nil
// or map[string]any{branch: value}).
//
// goavro decodes with one schema only, so this is the part of Avro's
// resolution it lacks. A Projector is safe for concurrent use; the
// defaults it fills in are shared between the values it returns.
type Projector struct {
	reader, writer *Schema
	// defaults holds the native form of each reader field default that
	// resolution may need, computed once.
	defaults map[*Field]any
}

// NewProjector checks that reader can read writer's data and prepares
// the projection.
func NewProjector(reader, writer *Schema) (*Projector, error) {
	if msgs := CanRead(reader, writer); len(msgs) > 0 {
		return nil, fmt.Errorf("avro: reader schema cannot read writer schema: %v", msgs)
	}
	p := &Projector{reader: reader, writer: writer, defaults: map[*Field]any{}}
	if err := p.prepare(reader, map[*Schema]bool{}); err != nil {
		return nil, err
	}
	return p, nil
}

// prepare converts every reader record field default to native form.
func (p *Projector) prepare(s *Schema, seen map[*Schema]bool) error {
	if seen[s] {
		return nil
	}
	seen[s] = true
	switch s.Kind {
	case Record:
		for _, f := range s.Fields {
			if f.HasDefault {
				v, err := DefaultNative(f.Type, f.Default)
				if err != nil {
					return fmt.Errorf("avro: default of field %s.%s: %w", s.Name, f.Name, err)
				}
				p.defaults[f] = v
			}
			if err := p.prepare(f.Type, seen); err != nil {
				return err
			}
		}
	case Array:
		return p.prepare(s.Items, seen)
	case Map:
		return p.prepare(s.Values, seen)
	case Union:
		for _, b := range s.Branches {
			if err := p.prepare(b, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// DefaultNative reads a default (JSON, a union's being of its first
// branch) into native form.
func DefaultNative(s *Schema, def any) (any, error) {
	t := s
	if s.Kind == Union {
		if len(s.Branches) == 0 {
			return nil, fmt.Errorf("empty union")
		}
		t = s.Branches[0]
	}
	if t.Kind == Null {
		return nil, nil
	}
	codec, err := goavro.NewCodec(Normalize(t))
	if err != nil {
		return nil, err
	}
	text, err := json.Marshal(def)
	if err != nil {
		return nil, err
	}
	v, _, err := codec.NativeFromTextual(text)
	if err != nil {
		return nil, err
	}
	if s.Kind == Union {
		return goavro.Union(UnionKey(t), v), nil
	}
	return v, nil
}

// UnionKey is the name goavro gives a union branch of type s.
func UnionKey(s *Schema) string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Logical != "" && s.Kind != Array && s.Kind != Map:
		return string(s.Kind) + "." + s.Logical
	}
	return string(s.Kind)
}

// Project converts v, decoded with the writer schema, to the reader's.
func (p *Projector) Project(v any) (any, error) {
	return p.project(p.reader, p.writer, v, 0)
}

func (p *Projector) project(r, w *Schema, v any, depth int) (any, error) {
	if depth > 1000 {
		return nil, fmt.Errorf("avro: value nested deeper than 1000")
	}
	if w.Kind == Union {
		if v == nil {
			i := slices.IndexFunc(w.Branches, func(b *Schema) bool { return b.Kind == Null })
			if i < 0 {
				return nil, fmt.Errorf("avro: null for a union without null")
			}
			return p.project(r, w.Branches[i], nil, depth+1)
		}
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return nil, fmt.Errorf("avro: union value %T is not a one-entry map", v)
		}
		for key, inner := range m {
			i := slices.IndexFunc(w.Branches, func(b *Schema) bool { return UnionKey(b) == key })
			if i < 0 {
				return nil, fmt.Errorf("avro: union has no branch %s", key)
			}
			return p.project(r, w.Branches[i], inner, depth+1)
		}
	}
	if r.Kind == Union {
		for _, b := range r.Branches {
			if len(CanRead(b, w)) > 0 {
				continue
			}
			out, err := p.project(b, w, v, depth+1)
			if err != nil || b.Kind == Null {
				return nil, err
			}
			return goavro.Union(UnionKey(b), out), nil
		}
		return nil, fmt.Errorf("avro: no branch of the reader union reads %s", describe(w))
	}
	switch r.Kind {
	case Long:
		if x, ok := v.(int32); ok {
			return int64(x), nil
		}
	case Float:
		switch x := v.(type) {
		case int32:
			return float32(x), nil
		case int64:
			return float32(x), nil
		}
	case Double:
		switch x := v.(type) {
		case int32:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case float32:
			return float64(x), nil
		}
	case String:
		if x, ok := v.([]byte); ok {
			return string(x), nil
		}
	case Bytes:
		if x, ok := v.(string); ok {
			return []byte(x), nil
		}
	case Enum:
		if x, ok := v.(string); ok && !slices.Contains(r.Symbols, x) && r.EnumDef != nil {
			return *r.EnumDef, nil
		}
	case Array:
		xs, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("avro: array value is %T", v)
		}
		out := make([]any, len(xs))
		for i, x := range xs {
			var err error
			if out[i], err = p.project(r.Items, w.Items, x, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	case Map:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("avro: map value is %T", v)
		}
		out := make(map[string]any, len(m))
		for k, x := range m {
			y, err := p.project(r.Values, w.Values, x, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	case Record:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("avro: record value is %T", v)
		}
		out := make(map[string]any, len(r.Fields))
		for _, rf := range r.Fields {
			wf := writerField(rf, w)
			if wf == nil {
				out[rf.Name] = p.defaults[rf]
				continue
			}
			y, err := p.project(rf.Type, wf.Type, m[wf.Name], depth+1)
			if err != nil {
				return nil, err
			}
			out[rf.Name] = y
		}
		return out, nil
	}
	return v, nil
}
