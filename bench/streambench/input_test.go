package main

import (
	"bytes"
	"strings"
	"testing"
)

// The wordcount workload waits for lines + words records: the count
// wordLines returns must be the words its generator makes.
func TestWordLinesCountsItsWords(t *testing.T) {
	const n = 5000
	in, total := wordLines("t", n, 100)
	var got int64
	for i := range int64(n) {
		words := strings.Fields(string(in.gen(i).Value))
		if len(words) < 3 || len(words) > 7 {
			t.Fatalf("line %d has %d words, want 3 to 7", i, len(words))
		}
		got += int64(len(words))
	}
	if got != total {
		t.Fatalf("generated %d words, wordLines counted %d", got, total)
	}
}

// keyLines makes every key once, 4 to a line.
func TestKeyLinesMakesEveryKeyOnce(t *testing.T) {
	const keys = 1003
	in := keyLines("t", keys)
	if in.n != 251 {
		t.Fatalf("%d lines, want 251", in.n)
	}
	seen := map[string]bool{}
	for i := range in.n {
		for w := range strings.FieldsSeq(string(in.gen(i).Value)) {
			if seen[w] {
				t.Fatalf("key %s twice", w)
			}
			seen[w] = true
		}
	}
	if len(seen) != keys {
		t.Fatalf("%d distinct keys, want %d", len(seen), keys)
	}
}

// Bids carry their event time: bidsPerMs per millisecond, in order.
func TestBidsTimestamps(t *testing.T) {
	in := bids("t", 100)
	for i := range int64(100) {
		r := in.gen(i)
		if want := bidEpoch.UnixMilli() + i/bidsPerMs; r.Timestamp.UnixMilli() != want {
			t.Fatalf("bid %d at %d, want %d", i, r.Timestamp.UnixMilli(), want)
		}
		if !bytes.HasPrefix(r.Key, []byte("auction")) || len(r.Value) != 16 {
			t.Fatalf("bid %d: key %q, %d-byte value", i, r.Key, len(r.Value))
		}
	}
}

func TestChooseWorkloads(t *testing.T) {
	got, err := chooseWorkloads(" q5,wordcount,q5 ,")
	if err != nil || strings.Join(got, ",") != "q5,wordcount" {
		t.Fatalf("chooseWorkloads = %v, %v", got, err)
	}
	if _, err := chooseWorkloads("q6"); err == nil {
		t.Fatal("unknown workload accepted")
	}
	if _, err := chooseWorkloads(","); err == nil {
		t.Fatal("empty list accepted")
	}
}
