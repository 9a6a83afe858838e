package avroschema

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrBinary is wrapped by CheckBinary's errors.
var ErrBinary = errors.New("avro: bad binary data")

// Limits of CheckBinary, past which data is refused before a decoder
// allocates for it.
const (
	// maxBinaryDepth bounds the nesting of values (records within
	// records, as a recursive type allows), so hostile data cannot
	// exhaust the stack of a decoder that recurses.
	maxBinaryDepth = 1 << 12
	// maxZeroSizeItems bounds the items of one array or map whose items
	// take no bytes (null, fixed of size 0, records of such): their count
	// alone costs memory to decode.
	maxZeroSizeItems = 1 << 20
)

// CheckBinary walks b, the Avro binary encoding of a value of s, without
// building the value, and returns the bytes after it. It refuses data a
// decoder would spend memory on that it does not have: a block count of
// an array or map larger than the bytes left (each item takes at least
// one), more than 2^20 items taking no bytes, a length past the end, a
// union branch or enum symbol that does not exist, nesting deeper than
// 4096. goavro trusts the block counts it reads to size what it
// allocates, so data from the network goes through CheckBinary first.
func CheckBinary(s *Schema, b []byte) ([]byte, error) {
	c := binChecker{zero: map[*Schema]bool{}}
	return c.check(s, b, 0)
}

// mapKey is the type of a map's keys.
var mapKey = &Schema{Kind: String}

type binChecker struct {
	// zero caches whether a type's values take no bytes.
	zero map[*Schema]bool
}

func binErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBinary, fmt.Sprintf(format, args...))
}

func (c *binChecker) check(s *Schema, b []byte, depth int) ([]byte, error) {
	if depth > maxBinaryDepth {
		return nil, binErr("values nested deeper than %d", maxBinaryDepth)
	}
	switch s.Kind {
	case Null:
		return b, nil
	case Boolean:
		if len(b) < 1 || b[0] > 1 {
			return nil, binErr("bad boolean")
		}
		return b[1:], nil
	case Int, Long:
		_, b, err := readVarint(b)
		return b, err
	case Float:
		return skip(b, 4, "float")
	case Double:
		return skip(b, 8, "double")
	case Bytes, String:
		n, b, err := readVarint(b)
		if err != nil {
			return nil, err
		}
		if n < 0 || n > int64(len(b)) {
			return nil, binErr("%s of length %d with %d bytes left", s.Kind, n, len(b))
		}
		return b[n:], nil
	case Fixed:
		return skip(b, s.Size, "fixed")
	case Enum:
		i, b, err := readVarint(b)
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(s.Symbols)) {
			return nil, binErr("enum %s has no symbol %d", s.Name, i)
		}
		return b, nil
	case Union:
		i, b, err := readVarint(b)
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(s.Branches)) {
			return nil, binErr("union has no branch %d", i)
		}
		return c.check(s.Branches[i], b, depth+1)
	case Record:
		var err error
		for _, f := range s.Fields {
			if b, err = c.check(f.Type, b, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case Array, Map:
		item := s.Items
		if s.Kind == Map {
			item = s.Values
		}
		zero := s.Kind == Array && c.zeroSize(item, map[*Schema]bool{})
		var total int64
		for {
			n, rest, err := readVarint(b)
			if err != nil {
				return nil, err
			}
			b = rest
			if n == 0 {
				return b, nil
			}
			if n < 0 {
				if n == math.MinInt64 {
					return nil, binErr("block count %d", n)
				}
				n = -n
				// The block's byte size, which is not needed here.
				if _, b, err = readVarint(b); err != nil {
					return nil, err
				}
			}
			total += n
			switch {
			case zero && total > maxZeroSizeItems:
				return nil, binErr("more than %d items that take no bytes", maxZeroSizeItems)
			case !zero && n > int64(len(b)):
				return nil, binErr("block of %d items with %d bytes left", n, len(b))
			}
			for range n {
				if s.Kind == Map {
					if b, err = c.check(mapKey, b, depth+1); err != nil {
						return nil, err
					}
				}
				if b, err = c.check(item, b, depth+1); err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, binErr("unknown type %s", s.Kind)
}

// zeroSize says whether values of s take no bytes. A type met again
// inside itself (a recursive record) is taken to need some: a value of a
// record that always contains itself cannot be written at all.
func (c *binChecker) zeroSize(s *Schema, visiting map[*Schema]bool) bool {
	if z, ok := c.zero[s]; ok {
		return z
	}
	if visiting[s] {
		return false
	}
	visiting[s] = true
	z := false
	switch s.Kind {
	case Null:
		z = true
	case Fixed:
		z = s.Size == 0
	case Record:
		z = true
		for _, f := range s.Fields {
			z = z && c.zeroSize(f.Type, visiting)
		}
	}
	c.zero[s] = z
	return z
}

func skip(b []byte, n int, what string) ([]byte, error) {
	if n > len(b) {
		return nil, binErr("short %s", what)
	}
	return b[n:], nil
}

// readVarint reads a zig-zag varint, as Avro writes int and long.
func readVarint(b []byte) (int64, []byte, error) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, nil, binErr("bad varint")
	}
	return v, b[n:], nil
}

// Decode decodes b, the Avro binary encoding of a value of the schema,
// into goavro's native form, after CheckBinary found it safe to: data
// that would make goavro allocate more than it holds is an error instead.
// It returns the bytes after the value.
func (p *Parsed) Decode(b []byte) (any, []byte, error) {
	if _, err := CheckBinary(p.Root, b); err != nil {
		return nil, nil, err
	}
	return p.Codec.NativeFromBinary(b)
}

// Recursive says whether s contains itself: a record with a field that
// holds (through unions, arrays, maps or other records) the same record.
// Data of a recursive type nests as deep as its bytes allow.
func Recursive(s *Schema) bool {
	return recursive(s, map[*Schema]bool{}, map[*Schema]bool{})
}

func recursive(s *Schema, onPath, done map[*Schema]bool) bool {
	if onPath[s] {
		return true
	}
	if done[s] {
		return false
	}
	onPath[s] = true
	defer func() { onPath[s] = false; done[s] = true }()
	var kids []*Schema
	switch s.Kind {
	case Record:
		for _, f := range s.Fields {
			kids = append(kids, f.Type)
		}
	case Union:
		kids = s.Branches
	case Array:
		kids = []*Schema{s.Items}
	case Map:
		kids = []*Schema{s.Values}
	}
	for _, k := range kids {
		if recursive(k, onPath, done) {
			return true
		}
	}
	return false
}
