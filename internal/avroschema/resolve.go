package avroschema

import (
	"fmt"
	"slices"
)

// CanRead reports whether data written with writer can be read with
// reader, by the schema-resolution rules of the Avro specification, and if
// not, why (one message per problem, each with the path where it is).
//
// The rules, as the specification gives them and Avro's Java
// implementation checks them:
//   - A writer union is readable if each of its branches is.
//   - A reader union reads a non-union writer if one of its branches does.
//   - Primitives match themselves, and promote: int to long, float and
//     double; long to float and double; float to double; string and bytes
//     to each other.
//   - Named types match by unqualified name, or when the reader lists the
//     writer's name among its aliases.
//   - A record reads each of its fields from the writer's field of the same
//     name (or one of the reader field's aliases); a field the writer lacks
//     needs a default. Writer fields the reader lacks are skipped.
//   - An enum reads every writer symbol it has; a symbol it lacks is read
//     as the reader's default symbol, so without one each writer symbol
//     must be among the reader's.
//   - Fixed types need the same size; arrays and maps resolve their items
//     and values.
//
// Logical types are annotations: they do not change resolution (as in
// Avro's SchemaCompatibility, which Confluent's registry uses).
func CanRead(reader, writer *Schema) []string {
	c := &checker{seen: map[[2]*Schema]bool{}}
	c.check(reader, writer, "/")
	return c.msgs
}

type checker struct {
	// seen holds the named-type pairs under check: a recursive type meets
	// its own pair again, which is taken as compatible (the check of the
	// outer occurrence decides).
	seen map[[2]*Schema]bool
	msgs []string
}

func (c *checker) fail(path, format string, args ...any) {
	c.msgs = append(c.msgs, fmt.Sprintf("%s at %s", fmt.Sprintf(format, args...), path))
}

// ok runs check on a scratch checker and reports whether it passed.
func (c *checker) ok(reader, writer *Schema) bool {
	sub := &checker{seen: c.seen}
	sub.check(reader, writer, "")
	return len(sub.msgs) == 0
}

func (c *checker) check(r, w *Schema, path string) {
	if w.Kind == Union {
		for i, b := range w.Branches {
			c.check(r, b, fmt.Sprintf("%s%d/", path, i))
		}
		return
	}
	if r.Kind == Union {
		if slices.ContainsFunc(r.Branches, func(b *Schema) bool { return c.ok(b, w) }) {
			return
		}
		c.fail(path, "reader union lacks a type that reads the writer's %s", describe(w))
		return
	}
	if r.Kind != w.Kind {
		if !promotes(w.Kind, r.Kind) {
			c.fail(path, "reader type %s cannot read writer type %s", describe(r), describe(w))
		}
		return
	}
	switch r.Kind {
	case Record, Enum, Fixed:
		if !namesMatch(r, w) {
			c.fail(path, "reader %s name %s does not match writer's %s", r.Kind, r.Name, w.Name)
			return
		}
		pair := [2]*Schema{r, w}
		if c.seen[pair] {
			return
		}
		c.seen[pair] = true
	}
	switch r.Kind {
	case Record:
		for _, rf := range r.Fields {
			wf := writerField(rf, w)
			fpath := path + rf.Name + "/"
			if wf == nil {
				if !rf.HasDefault {
					c.fail(fpath, "reader field %q has no default and is missing from the writer", rf.Name)
				}
				continue
			}
			c.check(rf.Type, wf.Type, fpath)
		}
	case Enum:
		if r.EnumDef != nil {
			return
		}
		var missing []string
		for _, sym := range w.Symbols {
			if !slices.Contains(r.Symbols, sym) {
				missing = append(missing, sym)
			}
		}
		if len(missing) > 0 {
			c.fail(path, "reader enum %s lacks writer symbols %v and has no default", r.Name, missing)
		}
	case Fixed:
		if r.Size != w.Size {
			c.fail(path, "reader fixed %s has size %d, writer's %d", r.Name, r.Size, w.Size)
		}
	case Array:
		c.check(r.Items, w.Items, path+"items/")
	case Map:
		c.check(r.Values, w.Values, path+"values/")
	}
}

// promotes reports whether a writer primitive of kind w can be read as r.
func promotes(w, r Kind) bool {
	switch w {
	case Int:
		return r == Long || r == Float || r == Double
	case Long:
		return r == Float || r == Double
	case Float:
		return r == Double
	case String:
		return r == Bytes
	case Bytes:
		return r == String
	}
	return false
}

func namesMatch(r, w *Schema) bool {
	if simpleName(r.Name) == simpleName(w.Name) {
		return true
	}
	for _, a := range r.Aliases {
		if a == w.Name || simpleName(a) == simpleName(w.Name) {
			return true
		}
	}
	return false
}

// writerField finds the writer's field a reader field reads from: the one
// of the same name, else one named by the reader field's aliases.
func writerField(rf *Field, w *Schema) *Field {
	for _, wf := range w.Fields {
		if wf.Name == rf.Name {
			return wf
		}
	}
	for _, a := range rf.Aliases {
		for _, wf := range w.Fields {
			if wf.Name == a {
				return wf
			}
		}
	}
	return nil
}

func describe(s *Schema) string {
	if s.Name != "" {
		return fmt.Sprintf("%s %s", s.Kind, s.Name)
	}
	return string(s.Kind)
}
