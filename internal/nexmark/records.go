package nexmark

import (
	"encoding/binary"
	"fmt"
)

// Record is an event as written to its topic.
type Record struct {
	Topic     string
	Key       []byte // the id, 8 bytes big-endian (serde.Int64)
	Value     []byte // the event, as the Serdes it was encoded with write it
	Timestamp int64  // the event time, ms
}

// Encode returns e as the record written to its topic, as JSON.
func (e Event) Encode() Record {
	// The JSON serdes cannot fail: the event types hold only strings and
	// integers.
	r, _ := e.EncodeWith(JSON)
	return r
}

// EncodeWith returns e as the record written to its topic, its value
// written with s.
func (e Event) EncodeWith(s Serdes) (Record, error) {
	var (
		id    int64
		value []byte
		err   error
	)
	switch e.Kind {
	case KindPerson:
		id = e.Person.ID
		value, err = s.Person.Serialize(*e.Person)
	case KindAuction:
		id = e.Auction.ID
		value, err = s.Auction.Serialize(*e.Auction)
	default:
		id = e.Bid.Auction
		value, err = s.Bid.Serialize(*e.Bid)
	}
	if err != nil {
		return Record{}, fmt.Errorf("nexmark: %s %d: %w", e.Kind, id, err)
	}
	return Record{Topic: e.Topic(), Key: binary.BigEndian.AppendUint64(nil, uint64(id)), Value: value, Timestamp: e.Time()}, nil
}
