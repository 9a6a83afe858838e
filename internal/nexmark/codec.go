package nexmark

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// The event types' JSON codec. encoding/json took over half of q1's CPU
// (reflection, a validation pass before decoding, a compaction pass after
// encoding) and most of its allocations. The event types are flat objects
// of integers and strings, so a direct reader and writer cover them; the
// bytes written are exactly json.Marshal's, and any input the reader does
// not recognise in full (escapes, non-ASCII text, unknown or differently
// cased field names, null, fractions, nesting) is decoded again by
// encoding/json, so what a value decodes to, and which inputs are errors,
// stay encoding/json's.

// The serdes of the event types. They are written out per type: a
// generic serde reaches the codec through its type parameter, which the
// compiler cannot see into, so the value it encoded or decoded escaped to
// the heap, an allocation per record.

type personSerde struct{ jsonName }

func (personSerde) Serialize(v Person) ([]byte, error) {
	return v.appendJSON(make([]byte, 0, 256)), nil
}
func (personSerde) Append(b []byte, v Person) ([]byte, error) { return v.appendJSON(b), nil }
func (personSerde) Deserialize(b []byte) (v Person, err error) {
	if v.decodeJSON(b) {
		return v, nil
	}
	return slowJSON[Person](b)
}

type auctionSerde struct{ jsonName }

func (auctionSerde) Serialize(v Auction) ([]byte, error) {
	return v.appendJSON(make([]byte, 0, 256)), nil
}
func (auctionSerde) Append(b []byte, v Auction) ([]byte, error) { return v.appendJSON(b), nil }
func (auctionSerde) Deserialize(b []byte) (v Auction, err error) {
	if v.decodeJSON(b) {
		return v, nil
	}
	return slowJSON[Auction](b)
}

type bidSerde struct{ jsonName }

func (bidSerde) Serialize(v Bid) ([]byte, error)        { return v.appendJSON(make([]byte, 0, 256)), nil }
func (bidSerde) Append(b []byte, v Bid) ([]byte, error) { return v.appendJSON(b), nil }
func (bidSerde) Deserialize(b []byte) (v Bid, err error) {
	if v.decodeJSON(b) {
		return v, nil
	}
	return slowJSON[Bid](b)
}

// slowJSON decodes what the fast reader did not take with encoding/json,
// into a new value (the fast reader may have filled part of its own).
func slowJSON[T any](b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("nexmark: json: %w", err)
	}
	return v, nil
}

// jsonName names the serdes' format.
type jsonName struct{}

func (jsonName) String() string { return "JSON" }

func (v *Bid) appendJSON(b []byte) []byte {
	b = append(b, `{"auction":`...)
	b = strconv.AppendInt(b, v.Auction, 10)
	b = append(b, `,"bidder":`...)
	b = strconv.AppendInt(b, v.Bidder, 10)
	b = append(b, `,"price":`...)
	b = strconv.AppendInt(b, v.Price, 10)
	b = append(b, `,"channel":`...)
	b = appendString(b, v.Channel)
	b = append(b, `,"url":`...)
	b = appendString(b, v.URL)
	b = append(b, `,"dateTime":`...)
	b = strconv.AppendInt(b, v.DateTime, 10)
	b = append(b, `,"extra":`...)
	b = appendString(b, v.Extra)
	return append(b, '}')
}

func (v *Bid) decodeJSON(b []byte) bool {
	r := objectReader{b: b}
	if !r.open() {
		return false
	}
	for r.next() {
		ok := false
		switch string(r.key()) {
		case "auction":
			ok = r.int(&v.Auction)
		case "bidder":
			ok = r.int(&v.Bidder)
		case "price":
			ok = r.int(&v.Price)
		case "channel":
			ok = r.stringOf(&v.Channel, channels)
		case "url":
			ok = r.string(&v.URL)
		case "dateTime":
			ok = r.int(&v.DateTime)
		case "extra":
			ok = r.string(&v.Extra)
		}
		if !ok {
			return false
		}
	}
	return r.close()
}

func (v *Auction) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, v.ID, 10)
	b = append(b, `,"itemName":`...)
	b = appendString(b, v.ItemName)
	b = append(b, `,"description":`...)
	b = appendString(b, v.Description)
	b = append(b, `,"initialBid":`...)
	b = strconv.AppendInt(b, v.InitialBid, 10)
	b = append(b, `,"reserve":`...)
	b = strconv.AppendInt(b, v.Reserve, 10)
	b = append(b, `,"dateTime":`...)
	b = strconv.AppendInt(b, v.DateTime, 10)
	b = append(b, `,"expires":`...)
	b = strconv.AppendInt(b, v.Expires, 10)
	b = append(b, `,"seller":`...)
	b = strconv.AppendInt(b, v.Seller, 10)
	b = append(b, `,"category":`...)
	b = strconv.AppendInt(b, v.Category, 10)
	b = append(b, `,"extra":`...)
	b = appendString(b, v.Extra)
	return append(b, '}')
}

func (v *Auction) decodeJSON(b []byte) bool {
	r := objectReader{b: b}
	if !r.open() {
		return false
	}
	for r.next() {
		ok := false
		switch string(r.key()) {
		case "id":
			ok = r.int(&v.ID)
		case "itemName":
			ok = r.string(&v.ItemName)
		case "description":
			ok = r.string(&v.Description)
		case "initialBid":
			ok = r.int(&v.InitialBid)
		case "reserve":
			ok = r.int(&v.Reserve)
		case "dateTime":
			ok = r.int(&v.DateTime)
		case "expires":
			ok = r.int(&v.Expires)
		case "seller":
			ok = r.int(&v.Seller)
		case "category":
			ok = r.int(&v.Category)
		case "extra":
			ok = r.string(&v.Extra)
		}
		if !ok {
			return false
		}
	}
	return r.close()
}

func (v *Person) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, v.ID, 10)
	b = append(b, `,"name":`...)
	b = appendString(b, v.Name)
	b = append(b, `,"emailAddress":`...)
	b = appendString(b, v.EmailAddress)
	b = append(b, `,"creditCard":`...)
	b = appendString(b, v.CreditCard)
	b = append(b, `,"city":`...)
	b = appendString(b, v.City)
	b = append(b, `,"state":`...)
	b = appendString(b, v.State)
	b = append(b, `,"dateTime":`...)
	b = strconv.AppendInt(b, v.DateTime, 10)
	b = append(b, `,"extra":`...)
	b = appendString(b, v.Extra)
	return append(b, '}')
}

func (v *Person) decodeJSON(b []byte) bool {
	r := objectReader{b: b}
	if !r.open() {
		return false
	}
	for r.next() {
		ok := false
		switch string(r.key()) {
		case "id":
			ok = r.int(&v.ID)
		case "name":
			ok = r.string(&v.Name)
		case "emailAddress":
			ok = r.string(&v.EmailAddress)
		case "creditCard":
			ok = r.string(&v.CreditCard)
		case "city":
			ok = r.string(&v.City)
		case "state":
			ok = r.string(&v.State)
		case "dateTime":
			ok = r.int(&v.DateTime)
		case "extra":
			ok = r.string(&v.Extra)
		}
		if !ok {
			return false
		}
	}
	return r.close()
}

// plainByte reports whether c stands for itself inside a JSON string as
// json.Marshal writes and json.Unmarshal reads it: printable ASCII other
// than the quote, the backslash, and the <, >, & that json.Marshal
// escapes for HTML.
func plainByte(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// readsAsItself tells, by byte, whether a decoder reads it as itself
// inside a string: a plain byte, or one of <, >, & (which json.Marshal
// escapes but json.Unmarshal takes as they are). A table, since the
// strings of every event are scanned byte by byte.
var readsAsItself = func() (t [256]bool) {
	for c := range 256 {
		t[c] = plainByte(byte(c)) || c == '<' || c == '>' || c == '&'
	}
	return t
}()

// appendString appends s as json.Marshal writes it. ASCII is escaped here;
// a string with other bytes goes to json.Marshal, which checks its UTF-8
// and escapes U+2028 and U+2029.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := len(b)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case plainByte(c) || c == 0x7f:
			b = append(b, c)
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x80: // control characters and <, >, &
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			q, _ := json.Marshal(s) // a string always marshals
			return append(b[:start], q...)
		}
	}
	return append(b, '"')
}

// objectReader reads one flat JSON object whose values are integers and
// strings of plain bytes. Every method returns false on anything else,
// and the caller falls back to encoding/json.
type objectReader struct {
	b     []byte
	i     int
	k     []byte // the key next returned
	first bool   // no member read yet
}

func (r *objectReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, if it is there.
func (r *objectReader) consume(c byte) bool {
	r.space()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *objectReader) open() bool {
	r.first = true
	return r.consume('{')
}

// next reads the key of the next member and its colon; it returns false at
// the closing brace or at anything it cannot read (close tells which).
func (r *objectReader) next() bool {
	r.space()
	if r.i < len(r.b) && r.b[r.i] == '}' {
		return false
	}
	if !r.first && !r.consume(',') {
		r.k = nil
		return false
	}
	r.first = false
	k, ok := r.plainString()
	if !ok || !r.consume(':') {
		r.i = len(r.b) + 1 // makes close fail
		return false
	}
	r.k = k
	return true
}

func (r *objectReader) key() []byte { return r.k }

// close reads the closing brace and checks that nothing but whitespace
// follows.
func (r *objectReader) close() bool {
	if r.i > len(r.b) || !r.consume('}') {
		return false
	}
	r.space()
	return r.i == len(r.b)
}

// plainString reads a quoted string of plain bytes.
func (r *objectReader) plainString() ([]byte, bool) {
	if !r.consume('"') {
		return nil, false
	}
	start := r.i
	for r.i < len(r.b) {
		c := r.b[r.i]
		if c == '"' {
			s := r.b[start:r.i]
			r.i++
			return s, true
		}
		// Other bytes need the decoder.
		if !readsAsItself[c] {
			return nil, false
		}
		r.i++
	}
	return nil, false
}

// string reads a quoted string of plain bytes and escapes that stand for
// ASCII (json.Marshal writes & as \u0026, and the generator's URLs hold
// it).
func (r *objectReader) string(v *string) bool {
	if !r.consume('"') {
		return false
	}
	start := r.i
	for r.i < len(r.b) {
		switch c := r.b[r.i]; {
		case c == '"':
			*v = string(r.b[start:r.i])
			r.i++
			return true
		case c == '\\':
			return r.escaped(v, start)
		case !readsAsItself[c]:
			return false
		}
		r.i++
	}
	return false
}

// stringOf reads a string as string does, but one of known (a field of few
// values: a bid's channel) comes as known's own string, not allocated.
func (r *objectReader) stringOf(v *string, known []string) bool {
	at := r.i
	if b, ok := r.plainString(); ok {
		for _, k := range known {
			if string(b) == k {
				*v = k
				return true
			}
		}
	}
	r.i = at
	return r.string(v)
}

// escaped reads the rest of a string that began at start and has an
// escape at r.i.
func (r *objectReader) escaped(v *string, start int) bool {
	var buf [128]byte // most strings fit: no allocation but the result's
	out := append(buf[:0], r.b[start:r.i]...)
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			*v = string(out)
			r.i++
			return true
		case c == '\\':
			if r.i+1 >= len(r.b) {
				return false
			}
			r.i++
			switch e := r.b[r.i]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if r.i+4 >= len(r.b) {
					return false
				}
				x, ok := hex4(r.b[r.i+1 : r.i+5])
				if !ok || x >= 0x80 { // beyond ASCII: UTF-8 and surrogates are encoding/json's
					return false
				}
				out = append(out, byte(x))
				r.i += 4
			default:
				return false
			}
		case !readsAsItself[c]:
			return false
		default:
			out = append(out, c)
		}
		r.i++
	}
	return false
}

// hex4 reads the four hexadecimal digits of a \u escape.
func hex4(b []byte) (uint16, bool) {
	var x uint16
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		x = x<<4 | uint16(c)
	}
	return x, true
}

// int reads an integer as JSON writes it (no leading zeros, no fraction or
// exponent) of at most 19 digits that fits an int64.
func (r *objectReader) int(v *int64) bool {
	r.space()
	neg := r.i < len(r.b) && r.b[r.i] == '-'
	if neg {
		r.i++
	}
	digits := r.i
	var x uint64
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		x = x*10 + uint64(r.b[r.i]-'0')
		r.i++
	}
	n := r.i - digits
	if n == 0 || n > 19 || n > 1 && r.b[digits] == '0' {
		return false
	}
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case '.', 'e', 'E':
			return false
		}
	}
	switch {
	case neg && x <= 1<<63:
		*v = int64(-x)
	case !neg && x < 1<<63:
		*v = int64(x)
	default:
		return false
	}
	return true
}
