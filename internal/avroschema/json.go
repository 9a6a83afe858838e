package avroschema

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends v, a value of schema s in goavro's native form, in
// Avro's JSON encoding: record fields in schema order, a union value as
// null or {"branch": value}, bytes and fixed as strings of code points
// 0-255, map keys sorted so that equal values print the same. goavro's
// own textual encoding orders record fields as Go maps iterate, so two
// prints of one value could differ.
func AppendJSON(b []byte, s *Schema, v any) ([]byte, error) {
	switch s.Kind {
	case Union:
		if v == nil {
			return append(b, "null"...), nil
		}
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return nil, fmt.Errorf("avro: union value %T is not a one-entry map", v)
		}
		for key, inner := range m {
			i := slices.IndexFunc(s.Branches, func(br *Schema) bool { return UnionKey(br) == key })
			if i < 0 {
				return nil, fmt.Errorf("avro: union has no branch %s", key)
			}
			b = append(b, '{')
			b = strconv.AppendQuote(b, key)
			b = append(b, ':')
			var err error
			if b, err = AppendJSON(b, s.Branches[i], inner); err != nil {
				return nil, err
			}
			return append(b, '}'), nil
		}
	case Record:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("avro: record value is %T", v)
		}
		b = append(b, '{')
		for i, f := range s.Fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, f.Name)
			b = append(b, ':')
			var err error
			if b, err = AppendJSON(b, f.Type, m[f.Name]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case Array:
		xs, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("avro: array value is %T", v)
		}
		b = append(b, '[')
		for i, x := range xs {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = AppendJSON(b, s.Items, x); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case Map:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("avro: map value is %T", v)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = AppendJSON(b, s.Values, m[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return appendLeaf(b, s, v)
}

// appendLeaf appends a primitive, enum or fixed value.
func appendLeaf(b []byte, s *Schema, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case float32:
		return appendFloat(b, float64(x), 32), nil
	case float64:
		return appendFloat(b, x, 64), nil
	case string:
		return appendString(b, x), nil
	case []byte:
		// Avro's JSON encoding of bytes: each byte a code point 0-255.
		rs := make([]rune, len(x))
		for i, c := range x {
			rs[i] = rune(c)
		}
		return appendString(b, string(rs)), nil
	case time.Time:
		switch s.Logical {
		case "timestamp-micros", "local-timestamp-micros":
			return strconv.AppendInt(b, x.UnixMicro(), 10), nil
		case "date":
			return strconv.AppendInt(b, int64(math.Floor(float64(x.Unix())/86400)), 10), nil
		}
		return strconv.AppendInt(b, x.UnixMilli(), 10), nil
	case time.Duration:
		if s.Logical == "time-micros" {
			return strconv.AppendInt(b, x.Microseconds(), 10), nil
		}
		return strconv.AppendInt(b, x.Milliseconds(), 10), nil
	}
	// Anything else goavro makes (a decimal's *big.Rat) as encoding/json
	// writes it.
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("avro: %w", err)
	}
	return append(b, j...), nil
}

func appendFloat(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		// JSON has no such numbers; Avro's Java encoder writes them as
		// strings.
		return strconv.AppendQuote(b, strconv.FormatFloat(f, 'g', -1, bits))
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	j, _ := json.Marshal(s)
	return append(b, j...)
}
