package nexmark

import (
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/stream/serde"
)

// Serdes are the value serdes of the event topics: how the generator's
// events are written (Event.EncodeWith) and how the queries read them
// (Query.BuildWith). Keys are ids as serde.Int64 in every format.
type Serdes struct {
	Person  serde.Serde[Person]
	Auction serde.Serde[Auction]
	Bid     serde.Serde[Bid]
}

// JSON writes and reads events as JSON, with the event types' own codec
// (codec.go): byte for byte what encoding/json writes and reads.
var JSON = Serdes{Person: PersonSerde, Auction: AuctionSerde, Bid: BidSerde}

// AvroNamespace is the namespace of the event types' Avro records:
// nexmark.Person, nexmark.Auction and nexmark.Bid.
const AvroNamespace = "nexmark"

// AvroSerdes returns serdes that write and read events as Avro in
// Confluent's wire format, their schemas derived from the event types
// (fields named as in JSON) and registered with reg on the first write
// under each topic's value subject (TopicNameStrategy: nexmark-bids-value
// and so on). q0 and q1 write their bids with the bids' serde, so under
// nexmark-bids-value too.
func AvroSerdes(reg serde.AvroRegistry) (Serdes, error) {
	if reg == nil {
		return Serdes{}, errors.New("nexmark: Avro needs a schema registry")
	}
	var (
		s   Serdes
		err error
	)
	if s.Person, err = serde.Avro[Person](reg, serde.AvroTopic(TopicPersons), serde.AvroNamespace(AvroNamespace)); err != nil {
		return Serdes{}, fmt.Errorf("nexmark: person: %w", err)
	}
	if s.Auction, err = serde.Avro[Auction](reg, serde.AvroTopic(TopicAuctions), serde.AvroNamespace(AvroNamespace)); err != nil {
		return Serdes{}, fmt.Errorf("nexmark: auction: %w", err)
	}
	if s.Bid, err = serde.Avro[Bid](reg, serde.AvroTopic(TopicBids), serde.AvroNamespace(AvroNamespace)); err != nil {
		return Serdes{}, fmt.Errorf("nexmark: bid: %w", err)
	}
	return s, nil
}

func (s Serdes) check() error {
	if s.Person == nil || s.Auction == nil || s.Bid == nil {
		return errors.New("nexmark: Serdes needs a person, an auction and a bid serde")
	}
	return nil
}
