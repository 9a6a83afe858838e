package serde

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/runnel-dev/runnel/internal/avroschema"
)

// The direct path of Avro[T]: a Go value written as Avro binary, and read
// back from it, with no map in between. It is built from the same type
// and schema as avroConv (which checked that they fit) and serves the
// common case, data whose writer schema is the serde's own. What it does
// not do (a field of type any, a record field the struct lacks) answers
// errNoDirect, and the serde takes goavro's path through native maps
// instead; a read that fails here is retried on that path too, so its
// errors are goavro's.

// errNoDirect says a value needs goavro's path.
var errNoDirect = errors.New("serde: avro: no direct path")

// binConv writes and reads one Go type as one schema.
type binConv struct {
	app  func(b []byte, v reflect.Value) ([]byte, error)
	read func(b []byte, v reflect.Value) ([]byte, error)
}

// errAvroShort is a read past the end of the input.
var errAvroShort = errors.New("serde: avro: input too short")

func newBinConv(t reflect.Type, s *avroschema.Schema) *binConv {
	return buildBin(t, s, map[convKey]*binConv{})
}

func noDirect(c *binConv) *binConv {
	c.app = func([]byte, reflect.Value) ([]byte, error) { return nil, errNoDirect }
	c.read = func([]byte, reflect.Value) ([]byte, error) { return nil, errNoDirect }
	return c
}

func buildBin(t reflect.Type, s *avroschema.Schema, done map[convKey]*binConv) *binConv {
	k := convKey{t, s}
	if c, ok := done[k]; ok {
		return c
	}
	c := &binConv{}
	done[k] = c
	if t.Kind() == reflect.Interface {
		return noDirect(c)
	}
	switch s.Kind {
	case avroschema.Null:
		c.app = func(b []byte, _ reflect.Value) ([]byte, error) { return b, nil }
		c.read = func(b []byte, _ reflect.Value) ([]byte, error) { return b, nil }
		return c
	case avroschema.Union:
		return unionBin(c, t, s, done)
	case avroschema.Record:
		return recordBin(c, t, s, done)
	case avroschema.Array:
		ec := buildBin(t.Elem(), s.Items, done)
		c.app = func(b []byte, v reflect.Value) ([]byte, error) {
			n := v.Len()
			if n > 0 {
				b = appendAvroLong(b, int64(n))
				for i := range n {
					var err error
					if b, err = ec.app(b, v.Index(i)); err != nil {
						return nil, err
					}
				}
			}
			return append(b, 0), nil
		}
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			sl := reflect.MakeSlice(t, 0, 0)
			for {
				n, rest, err := readAvroBlock(b)
				if err != nil {
					return nil, err
				}
				b = rest
				if n == 0 {
					break
				}
				start := sl.Len()
				sl = reflect.AppendSlice(sl, reflect.MakeSlice(t, n, n))
				for i := range n {
					if b, err = ec.read(b, sl.Index(start+i)); err != nil {
						return nil, err
					}
				}
			}
			v.Set(sl)
			return b, nil
		}
		return c
	case avroschema.Map:
		vc := buildBin(t.Elem(), s.Values, done)
		c.app = func(b []byte, v reflect.Value) ([]byte, error) {
			if n := v.Len(); n > 0 {
				b = appendAvroLong(b, int64(n))
				for it := v.MapRange(); it.Next(); {
					b = appendAvroString(b, it.Key().String())
					var err error
					if b, err = vc.app(b, it.Value()); err != nil {
						return nil, err
					}
				}
			}
			return append(b, 0), nil
		}
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			m := reflect.MakeMap(t)
			for {
				n, rest, err := readAvroBlock(b)
				if err != nil {
					return nil, err
				}
				b = rest
				if n == 0 {
					break
				}
				for range n {
					var key []byte
					if key, b, err = readAvroBytes(b); err != nil {
						return nil, err
					}
					ev := reflect.New(t.Elem()).Elem()
					if b, err = vc.read(b, ev); err != nil {
						return nil, err
					}
					m.SetMapIndex(reflect.ValueOf(string(key)).Convert(t.Key()), ev)
				}
			}
			v.Set(m)
			return b, nil
		}
		return c
	}
	if t.Kind() == reflect.Pointer {
		ec := buildBin(t.Elem(), s, done)
		c.app = func(b []byte, v reflect.Value) ([]byte, error) {
			if v.IsNil() {
				return nil, errNoDirect // goavro's path reports it
			}
			return ec.app(b, v.Elem())
		}
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			p := reflect.New(t.Elem())
			b, err := ec.read(b, p.Elem())
			if err != nil {
				return nil, err
			}
			v.Set(p)
			return b, nil
		}
		return c
	}
	return leafBin(c, t, s)
}

func unionBin(c *binConv, t reflect.Type, s *avroschema.Schema, done map[convKey]*binConv) *binConv {
	nullAt, otherAt := -1, -1
	for i, br := range s.Branches {
		if br.Kind == avroschema.Null {
			nullAt = i
		} else if otherAt < 0 {
			otherAt = i
		}
	}
	if otherAt < 0 {
		c.app = func(b []byte, _ reflect.Value) ([]byte, error) { return appendAvroLong(b, int64(nullAt)), nil }
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			i, b, err := readAvroLong(b)
			if err != nil || i != int64(nullAt) {
				return nil, errNoDirect
			}
			return b, nil
		}
		return c
	}
	elem := t
	if t.Kind() == reflect.Pointer && nullAt >= 0 {
		elem = t.Elem()
	}
	ec := buildBin(elem, s.Branches[otherAt], done)
	c.app = func(b []byte, v reflect.Value) ([]byte, error) {
		if elem != t {
			if v.IsNil() {
				return appendAvroLong(b, int64(nullAt)), nil
			}
			v = v.Elem()
		}
		return ec.app(appendAvroLong(b, int64(otherAt)), v)
	}
	c.read = func(b []byte, v reflect.Value) ([]byte, error) {
		i, b, err := readAvroLong(b)
		if err != nil {
			return nil, err
		}
		switch {
		case i == int64(nullAt):
			v.SetZero()
			return b, nil
		case i != int64(otherAt):
			return nil, fmt.Errorf("serde: avro: union branch %d", i)
		case elem != t:
			p := reflect.New(elem)
			if b, err = ec.read(b, p.Elem()); err != nil {
				return nil, err
			}
			v.Set(p)
			return b, nil
		}
		return ec.read(b, v)
	}
	return c
}

func recordBin(c *binConv, t reflect.Type, s *avroschema.Schema, done map[convKey]*binConv) *binConv {
	byName := map[string]goField{}
	for _, f := range avroFields(t) {
		byName[f.name] = f
	}
	type fieldBin struct {
		index int
		conv  *binConv
	}
	fields := make([]fieldBin, 0, len(s.Fields))
	for _, af := range s.Fields {
		gf, ok := byName[af.Name]
		if !ok {
			return noDirect(c)
		}
		fields = append(fields, fieldBin{gf.index, buildBin(gf.typ, af.Type, done)})
	}
	c.app = func(b []byte, v reflect.Value) ([]byte, error) {
		var err error
		for _, f := range fields {
			if b, err = f.conv.app(b, v.Field(f.index)); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	c.read = func(b []byte, v reflect.Value) ([]byte, error) {
		var err error
		for _, f := range fields {
			if b, err = f.conv.read(b, v.Field(f.index)); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return c
}

func leafBin(c *binConv, t reflect.Type, s *avroschema.Schema) *binConv {
	switch {
	case t == avroTimeType:
		micros := s.Logical == "timestamp-micros"
		c.app = func(b []byte, v reflect.Value) ([]byte, error) {
			tm := v.Interface().(time.Time)
			if micros {
				return appendAvroLong(b, tm.UnixMicro()), nil
			}
			return appendAvroLong(b, tm.UnixMilli()), nil
		}
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			x, b, err := readAvroLong(b)
			if err != nil {
				return nil, err
			}
			if micros {
				v.Set(reflect.ValueOf(time.UnixMicro(x).UTC()))
			} else {
				v.Set(reflect.ValueOf(time.UnixMilli(x).UTC()))
			}
			return b, nil
		}
	case s.Kind == avroschema.Boolean:
		c.app = func(b []byte, v reflect.Value) ([]byte, error) {
			if v.Bool() {
				return append(b, 1), nil
			}
			return append(b, 0), nil
		}
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			if len(b) < 1 || b[0] > 1 {
				return nil, errAvroShort
			}
			v.SetBool(b[0] == 1)
			return b[1:], nil
		}
	case s.Kind == avroschema.Int || s.Kind == avroschema.Long:
		isInt := s.Kind == avroschema.Int
		signed := t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64
		c.app = func(b []byte, v reflect.Value) ([]byte, error) {
			var x int64
			if signed {
				x = v.Int()
			} else {
				x = int64(v.Uint())
			}
			if isInt && (x < math.MinInt32 || x > math.MaxInt32) {
				return nil, errNoDirect
			}
			return appendAvroLong(b, x), nil
		}
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			x, b, err := readAvroLong(b)
			if err != nil {
				return nil, err
			}
			if isInt && (x < math.MinInt32 || x > math.MaxInt32) {
				return nil, errNoDirect
			}
			if signed {
				if v.OverflowInt(x) {
					return nil, errNoDirect
				}
				v.SetInt(x)
			} else {
				if x < 0 || v.OverflowUint(uint64(x)) {
					return nil, errNoDirect
				}
				v.SetUint(uint64(x))
			}
			return b, nil
		}
	case s.Kind == avroschema.Float:
		c.app = func(b []byte, v reflect.Value) ([]byte, error) {
			return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v.Float()))), nil
		}
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			if len(b) < 4 {
				return nil, errAvroShort
			}
			v.SetFloat(float64(math.Float32frombits(binary.LittleEndian.Uint32(b))))
			return b[4:], nil
		}
	case s.Kind == avroschema.Double:
		c.app = func(b []byte, v reflect.Value) ([]byte, error) {
			return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float())), nil
		}
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			if len(b) < 8 {
				return nil, errAvroShort
			}
			v.SetFloat(math.Float64frombits(binary.LittleEndian.Uint64(b)))
			return b[8:], nil
		}
	case s.Kind == avroschema.Enum:
		index := make(map[string]int64, len(s.Symbols))
		for i, sym := range s.Symbols {
			index[sym] = int64(i)
		}
		c.app = func(b []byte, v reflect.Value) ([]byte, error) {
			i, ok := index[v.String()]
			if !ok {
				return nil, errNoDirect
			}
			return appendAvroLong(b, i), nil
		}
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			i, b, err := readAvroLong(b)
			if err != nil {
				return nil, err
			}
			if i < 0 || i >= int64(len(s.Symbols)) {
				return nil, errNoDirect
			}
			v.SetString(s.Symbols[i])
			return b, nil
		}
	case s.Kind == avroschema.Fixed:
		size := s.Size
		c.app = func(b []byte, v reflect.Value) ([]byte, error) {
			if v.Len() != size {
				return nil, errNoDirect
			}
			return append(b, v.Bytes()...), nil
		}
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			if len(b) < size {
				return nil, errAvroShort
			}
			v.SetBytes(append([]byte(nil), b[:size]...))
			return b[size:], nil
		}
	case t.Kind() == reflect.String: // string or bytes
		c.app = func(b []byte, v reflect.Value) ([]byte, error) { return appendAvroString(b, v.String()), nil }
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			x, b, err := readAvroBytes(b)
			if err != nil {
				return nil, err
			}
			v.SetString(string(x))
			return b, nil
		}
	default: // []byte as bytes or string
		c.app = func(b []byte, v reflect.Value) ([]byte, error) {
			x := v.Bytes()
			return append(appendAvroLong(b, int64(len(x))), x...), nil
		}
		c.read = func(b []byte, v reflect.Value) ([]byte, error) {
			x, b, err := readAvroBytes(b)
			if err != nil {
				return nil, err
			}
			v.SetBytes(append([]byte{}, x...))
			return b, nil
		}
	}
	return c
}

func appendAvroLong(b []byte, x int64) []byte {
	return binary.AppendUvarint(b, uint64(x<<1)^uint64(x>>63))
}

func appendAvroString(b []byte, s string) []byte {
	return append(appendAvroLong(b, int64(len(s))), s...)
}

func readAvroLong(b []byte) (int64, []byte, error) {
	u, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errAvroShort
	}
	return int64(u>>1) ^ -int64(u&1), b[n:], nil
}

// readAvroBytes reads a length and that many bytes (not copied).
func readAvroBytes(b []byte) ([]byte, []byte, error) {
	n, b, err := readAvroLong(b)
	if err != nil {
		return nil, nil, err
	}
	if n < 0 || n > int64(len(b)) {
		return nil, nil, errAvroShort
	}
	return b[:n], b[n:], nil
}

// readAvroBlock reads the count of a block of an array or map, skipping
// the byte size a negative count comes with. A count larger than the
// bytes left cannot be real (every item takes a byte, but for items of
// type null, which the goavro path then reads).
func readAvroBlock(b []byte) (int, []byte, error) {
	n, b, err := readAvroLong(b)
	if err != nil {
		return 0, nil, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, nil, errNoDirect
		}
		n = -n
		if _, b, err = readAvroLong(b); err != nil {
			return 0, nil, err
		}
	}
	if n > int64(len(b)) {
		return 0, nil, errNoDirect
	}
	return int(n), b, nil
}
