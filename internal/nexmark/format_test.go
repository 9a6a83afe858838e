package nexmark

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/registry/registrytest"
)

// Avro events are in Confluent's wire format (a zero byte, then the id of
// a schema registered under the topic's value subject, then Avro binary),
// their schema the event type's, and they read back to the same event.
func TestAvroEventsInConfluentFormat(t *testing.T) {
	reg := registrytest.Client(t)
	s, err := AvroSerdes(reg)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Kind]bool{}
	for _, e := range testEvents(t)[:200] {
		r, err := e.EncodeWith(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Value) < 5 || r.Value[0] != 0 {
			t.Fatalf("%s: value %x is not in Confluent's wire format", e.Kind, r.Value)
		}
		if r.Timestamp != e.Time() || int64(binary.BigEndian.Uint64(r.Key)) != idOf(e) {
			t.Fatalf("%s: key %x or timestamp %d is not the event's", e.Kind, r.Key, r.Timestamp)
		}
		if !seen[e.Kind] {
			seen[e.Kind] = true
			id := int(binary.BigEndian.Uint32(r.Value[1:5]))
			subject := r.Topic + "-value"
			ss, err := reg.SchemaByVersion(context.Background(), subject, -1)
			if err != nil {
				t.Fatalf("%s: subject %s: %v", e.Kind, subject, err)
			}
			if ss.ID != id {
				t.Fatalf("%s: the value carries schema id %d, subject %s has %d", e.Kind, id, subject, ss.ID)
			}
			name := `"name":"` + map[Kind]string{KindPerson: "Person", KindAuction: "Auction", KindBid: "Bid"}[e.Kind] + `"`
			if !strings.Contains(ss.Schema.Schema, name) || !strings.Contains(ss.Schema.Schema, `"namespace":"nexmark"`) {
				t.Fatalf("%s: registered schema %s is not nexmark's", e.Kind, ss.Schema.Schema)
			}
		}
		var same bool
		switch e.Kind {
		case KindPerson:
			v, err := s.Person.Deserialize(r.Value)
			same = err == nil && v == *e.Person
		case KindAuction:
			v, err := s.Auction.Deserialize(r.Value)
			same = err == nil && v == *e.Auction
		case KindBid:
			v, err := s.Bid.Deserialize(r.Value)
			same = err == nil && v == *e.Bid
		}
		if !same {
			t.Fatalf("%s does not read back as the event it was written from", e.Kind)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("the events held only %v", seen)
	}
}

func idOf(e Event) int64 {
	switch e.Kind {
	case KindPerson:
		return e.Person.ID
	case KindAuction:
		return e.Auction.ID
	}
	return e.Bid.Auction
}

func TestAvroSerdesNeedARegistry(t *testing.T) {
	if _, err := AvroSerdes(nil); err == nil {
		t.Fatal("AvroSerdes(nil) made serdes")
	}
	if _, err := Queries["q0"].BuildWith(Serdes{}); err == nil {
		t.Fatal("BuildWith(Serdes{}) built a topology")
	}
}
