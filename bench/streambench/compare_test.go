package main

import (
	"strings"
	"testing"
)

func TestCanonicalValueIgnoresFieldOrderAndNumberForm(t *testing.T) {
	a, err := canonicalValue("q4", []byte(`{"sum":6,"count":3,"avg":2}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := canonicalValue("q4", []byte(`{"avg":2.0,"count":3,"sum":6}`))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("Go's and Jackson's forms of one Q4 differ: %s and %s", a, b)
	}
	if _, err := canonicalValue("q4", []byte(`{"sum":`)); err == nil {
		t.Error("a truncated value was accepted")
	}
}

func TestCanonicalValueSortsQ7Bids(t *testing.T) {
	a, err := canonicalValue("q7", []byte(`{"price":5,"bids":[{"auction":2,"price":5},{"auction":1,"price":5}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := canonicalValue("q7", []byte(`{"bids":[{"price":5,"auction":1},{"auction":2,"price":5}],"price":5}`))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("the same bids in another order differ: %s and %s", a, b)
	}
	// Other queries keep their lists' order.
	c, _ := canonicalValue("q5", []byte(`{"count":1,"auctions":[2,1]}`))
	d, _ := canonicalValue("q5", []byte(`{"count":1,"auctions":[1,2]}`))
	if c == d {
		t.Error("q5's auctions were sorted")
	}
}

func TestCanonicalKey(t *testing.T) {
	k, err := canonicalKey([]byte{0, 0, 0, 0, 0, 0, 1, 0})
	if err != nil || k != "256" {
		t.Errorf("8-byte key: %q, %v; want 256", k, err)
	}
	a, _ := canonicalKey([]byte(`{"id":1,"start":10000}`))
	b, _ := canonicalKey([]byte(`{"start":10000,"id":1}`))
	if a != b {
		t.Errorf("JSON keys %s and %s differ", a, b)
	}
}

func TestCompareOutputs(t *testing.T) {
	table := func(kv ...string) queryOutput {
		o := queryOutput{table: map[string]string{}}
		for i := 0; i < len(kv); i += 2 {
			o.table[kv[i]] = kv[i+1]
		}
		return o
	}
	if same, how := compareOutputs(table("1", "a", "2", "b"), table("2", "b", "1", "a")); !same {
		t.Errorf("equal tables differ: %s", how)
	}
	same, how := compareOutputs(table("1", "a", "2", "b"), table("1", "a", "2", "c", "3", "d"))
	if same || !strings.Contains(how, "1 only in Kafka Streams'") || !strings.Contains(how, "1 with different values") {
		t.Errorf("different tables: same %v, %s", same, how)
	}
	if same, _ := compareOutputs(queryOutput{records: 2, sum: 7}, queryOutput{records: 2, sum: 7}); !same {
		t.Error("equal streams differ")
	}
	if same, _ := compareOutputs(queryOutput{records: 2, sum: 7}, queryOutput{records: 2, sum: 8}); same {
		t.Error("different streams are the same")
	}
}
