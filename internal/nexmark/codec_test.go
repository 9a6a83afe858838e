package nexmark

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// oddStrings need escapes or the encoding/json fallback on one side or
// the other.
var oddStrings = []string{"", "plain", `quo"te`, `back\slash`, "<a href=x>&amp;</a>", "tab\there", "new\nline",
	"\x00nul", "\b\f\x1f", "caf\u00e9", "\u2028\u2029", "日本", "bad\xffutf8", "\x7fdel", "/slash/"}

// TestCodecMatchesEncodingJSON: every generated event, and events with
// strings and integers at the edges, serialize to json.Marshal's bytes
// and read back to the same value.
func TestCodecMatchesEncodingJSON(t *testing.T) {
	var bids []Bid
	var auctions []Auction
	var persons []Person
	for _, e := range testEvents(t) {
		switch e.Kind {
		case KindBid:
			bids = append(bids, *e.Bid)
		case KindAuction:
			auctions = append(auctions, *e.Auction)
		case KindPerson:
			persons = append(persons, *e.Person)
		}
	}
	ints := []int64{0, -1, 1, math.MaxInt64, math.MinInt64, 1e18, -1e18}
	for i, s := range oddStrings {
		n := ints[i%len(ints)]
		bids = append(bids, Bid{Auction: n, Bidder: -n, Price: n, Channel: s, URL: s + "u", DateTime: n, Extra: s})
		auctions = append(auctions, Auction{ID: n, ItemName: s, Description: s, InitialBid: n, Reserve: n, DateTime: n, Expires: n, Seller: n, Category: n, Extra: s})
		persons = append(persons, Person{ID: n, Name: s, EmailAddress: s, CreditCard: s, City: s, State: s, DateTime: n, Extra: s})
	}
	checkRoundTrip(t, BidSerde.Serialize, BidSerde.Deserialize, bids)
	checkRoundTrip(t, AuctionSerde.Serialize, AuctionSerde.Deserialize, auctions)
	checkRoundTrip(t, PersonSerde.Serialize, PersonSerde.Deserialize, persons)
}

func checkRoundTrip[T any](t *testing.T, ser func(T) ([]byte, error), de func([]byte) (T, error), vs []T) {
	t.Helper()
	for _, v := range vs {
		got, err := ser(v)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(v)
		if !bytes.Equal(got, want) {
			t.Fatalf("Serialize(%+v)\n got %s\nwant %s", v, got, want)
		}
		back, err := de(got)
		if err != nil {
			t.Fatalf("Deserialize(%s): %v", got, err)
		}
		var ref T
		if err := json.Unmarshal(got, &ref); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, ref) {
			t.Fatalf("Deserialize(%s) = %+v, encoding/json gives %+v", got, back, ref)
		}
	}
}

// TestCodecFastPathTaken: the generator's events are read without
// encoding/json (the point of the codec), and inputs the fast reader does
// not handle are left to it.
func TestCodecFastPathTaken(t *testing.T) {
	for _, e := range testEvents(t)[:500] {
		r := e.Encode()
		var ok bool
		switch e.Kind {
		case KindBid:
			ok = new(Bid).decodeJSON(r.Value)
		case KindAuction:
			ok = new(Auction).decodeJSON(r.Value)
		case KindPerson:
			ok = new(Person).decodeJSON(r.Value)
		}
		if !ok {
			t.Fatalf("the fast reader declined a generated %s: %s", e.Kind, r.Value)
		}
	}
	for _, in := range []string{`{"Auction":1}`, `{"price":1.5}`, `{"price":1e3}`, `{"price":null}`, `{"url":"a\x"}`,
		`{"extra":"\u00e9"}`, `{"price":01}`, `{"price":99999999999999999999}`, `{"other":1}`, `{"price":1}x`, `{"price":1,}`, `[]`} {
		if new(Bid).decodeJSON([]byte(in)) {
			t.Errorf("the fast reader took %s", in)
		}
	}
}

// FuzzBidJSON: on any input, the serde agrees with encoding/json (an
// error on the same inputs, the same value otherwise), and when the fast
// reader takes an input, encoding/json reads it to the same value.
func FuzzBidJSON(f *testing.F) {
	b, _ := json.Marshal(Bid{Auction: 1000, Bidder: 2001, Price: 12345, Channel: "Google", URL: "https://www.nexmark.com/abc", DateTime: 1e12, Extra: "x"})
	f.Add(b)
	for _, s := range []string{`{}`, ` { "price" : -0 , "url" : "<&>" } `, `{"price":-9223372036854775808}`, `{"price":9223372036854775808}`,
		`{"auction":1,"auction":2}`, `{"channel":"\n"}`, `{"channel":"Baidu","url":"a\u0026b\u003C\u00e9"}`, `{"channel":"Bai\u0064u"}`, `{"url":"\u00G1"}`, "{\"channel\":\"\xff\"}", `{"price":"1"}`, `{"AUCTION":3}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var fast Bid
		took := fast.decodeJSON(in)
		var ref Bid
		refErr := json.Unmarshal(in, &ref)
		if took && (refErr != nil || !reflect.DeepEqual(fast, ref)) {
			t.Fatalf("fast reader took %q as %+v; encoding/json: %+v, %v", in, fast, ref, refErr)
		}
		got, err := BidSerde.Deserialize(in)
		if (err != nil) != (refErr != nil) || err == nil && !reflect.DeepEqual(got, ref) {
			t.Fatalf("Deserialize(%q) = %+v, %v; encoding/json: %+v, %v", in, got, err, ref, refErr)
		}
	})
}

// FuzzAppendString: any string is written as json.Marshal writes it.
func FuzzAppendString(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, json.Marshal gives %s", s, got, want)
		}
	})
}

// FuzzResultJSON: q5's values are written as json.Marshal writes them, and
// read as json.Unmarshal reads them.
func FuzzResultJSON(f *testing.F) {
	for _, v := range []Q5{{}, {Count: 3, Auctions: []int64{}}, {Count: -1, Auctions: []int64{1, -2, 1 << 62}}} {
		b, _ := json.Marshal(v)
		f.Add(b)
	}
	for _, s := range []string{`{"auction":1,"count":2}`, `{"count":1,"auctions":null}`, `{"auctions":[ 1 , 2 ]}`, `{"auctions":[1,]}`,
		`{"auctions":[1.5]}`, `{"auctions":{}}`, `{"auctions":nul}`, `{"auctions":[01]}`, `{"Count":1}`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var ref Q5
		refErr := json.Unmarshal(in, &ref)
		got, err := Q5Serde.Deserialize(in)
		if (err != nil) != (refErr != nil) || err == nil && !reflect.DeepEqual(got, ref) {
			t.Fatalf("Q5 Deserialize(%q) = %#v, %v; encoding/json: %#v, %v", in, got, err, ref, refErr)
		}
		if err == nil {
			want, _ := json.Marshal(got)
			if b, _ := Q5Serde.Serialize(got); !bytes.Equal(b, want) {
				t.Fatalf("Q5 Serialize(%#v) = %s, json.Marshal gives %s", got, b, want)
			}
		}
		var refC AuctionCount
		refErr = json.Unmarshal(in, &refC)
		gotC, err := AuctionCountSerde.Deserialize(in)
		if (err != nil) != (refErr != nil) || err == nil && !reflect.DeepEqual(gotC, refC) {
			t.Fatalf("AuctionCount Deserialize(%q) = %#v, %v; encoding/json: %#v, %v", in, gotC, err, refC, refErr)
		}
		if err == nil {
			want, _ := json.Marshal(gotC)
			if b, _ := AuctionCountSerde.Serialize(gotC); !bytes.Equal(b, want) {
				t.Fatalf("AuctionCount Serialize(%#v) = %s, json.Marshal gives %s", gotC, b, want)
			}
		}
	})
}
