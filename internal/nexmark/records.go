package nexmark

import (
	"encoding/binary"
	"encoding/json"
)

// Record is an event as written to its topic.
type Record struct {
	Topic     string
	Key       []byte // the id, 8 bytes big-endian (serde.Int64)
	Value     []byte // JSON
	Timestamp int64  // the event time, ms
}

// Encode returns e as the record written to its topic.
func (e Event) Encode() Record {
	var (
		topic string
		id    int64
		v     any
	)
	switch e.Kind {
	case KindPerson:
		topic, id, v = TopicPersons, e.Person.ID, e.Person
	case KindAuction:
		topic, id, v = TopicAuctions, e.Auction.ID, e.Auction
	default:
		topic, id, v = TopicBids, e.Bid.Auction, e.Bid
	}
	// The event types hold only strings and integers: Marshal cannot fail.
	value, _ := json.Marshal(v)
	return Record{Topic: topic, Key: binary.BigEndian.AppendUint64(nil, uint64(id)), Value: value, Timestamp: e.Time()}
}
