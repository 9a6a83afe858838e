package nexmark

import "strconv"

// The codec of q5's intermediate and result values, which it writes to
// its repartition topic and stores: encoding/json's reflection took a
// quarter of what q5 allocated. As for the events (codec.go), the bytes
// written are json.Marshal's and what the reader does not take in full
// goes to encoding/json.

// AuctionCountSerde is the serde of AuctionCount: JSON.
var AuctionCountSerde = auctionCountSerde{}

// Q5Serde is the serde of Q5: JSON.
var Q5Serde = q5Serde{}

type auctionCountSerde struct{ jsonName }

func (auctionCountSerde) Serialize(v AuctionCount) ([]byte, error) {
	return v.appendJSON(make([]byte, 0, 48)), nil
}
func (auctionCountSerde) Append(b []byte, v AuctionCount) ([]byte, error) {
	return v.appendJSON(b), nil
}
func (auctionCountSerde) Deserialize(b []byte) (v AuctionCount, err error) {
	if v.decodeJSON(b) {
		return v, nil
	}
	return slowJSON[AuctionCount](b)
}

type q5Serde struct{ jsonName }

func (q5Serde) Serialize(v Q5) ([]byte, error)        { return v.appendJSON(make([]byte, 0, 64)), nil }
func (q5Serde) Append(b []byte, v Q5) ([]byte, error) { return v.appendJSON(b), nil }
func (q5Serde) Deserialize(b []byte) (v Q5, err error) {
	if v.decodeJSON(b) {
		return v, nil
	}
	return slowJSON[Q5](b)
}

func (v *AuctionCount) appendJSON(b []byte) []byte {
	b = append(b, `{"auction":`...)
	b = strconv.AppendInt(b, v.Auction, 10)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, v.Count, 10)
	return append(b, '}')
}

func (v *AuctionCount) decodeJSON(b []byte) bool {
	r := objectReader{b: b}
	if !r.open() {
		return false
	}
	for r.next() {
		ok := false
		switch string(r.key()) {
		case "auction":
			ok = r.int(&v.Auction)
		case "count":
			ok = r.int(&v.Count)
		}
		if !ok {
			return false
		}
	}
	return r.close()
}

func (v *Q5) appendJSON(b []byte) []byte {
	b = append(b, `{"count":`...)
	b = strconv.AppendInt(b, v.Count, 10)
	b = append(b, `,"auctions":`...)
	if v.Auctions == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, a := range v.Auctions {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, a, 10)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (v *Q5) decodeJSON(b []byte) bool {
	r := objectReader{b: b}
	if !r.open() {
		return false
	}
	for r.next() {
		ok := false
		switch string(r.key()) {
		case "count":
			ok = r.int(&v.Count)
		case "auctions":
			ok = r.ints(&v.Auctions)
		}
		if !ok {
			return false
		}
	}
	return r.close()
}

// ints reads null (a nil slice) or an array of integers (a new slice,
// empty but not nil for []), as json.Unmarshal decodes them into a new
// value.
func (r *objectReader) ints(v *[]int64) bool {
	r.space()
	if r.i+4 <= len(r.b) && string(r.b[r.i:r.i+4]) == "null" {
		r.i += 4
		*v = nil
		return true
	}
	if !r.consume('[') {
		return false
	}
	out := []int64{}
	if r.consume(']') {
		*v = out
		return true
	}
	for {
		var x int64
		if !r.int(&x) {
			return false
		}
		out = append(out, x)
		if r.consume(']') {
			*v = out
			return true
		}
		if !r.consume(',') {
			return false
		}
	}
}
