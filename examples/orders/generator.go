package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Customer is a value of the compacted customers topic, keyed by ID.
type Customer struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Region string `json:"region"`
}

// Order is a value of the orders topic, keyed by ID. Time is its event
// time in Unix milliseconds, also the record's timestamp.
type Order struct {
	ID         string `json:"id"`
	CustomerID string `json:"customer"`
	Category   string `json:"category"`
	Cents      int64  `json:"cents"`
	Time       int64  `json:"ts"`
}

// Payment is a value of the payments topic, keyed by the order it pays.
type Payment struct {
	OrderID string `json:"order"`
	Method  string `json:"method"`
	Cents   int64  `json:"cents"`
	Time    int64  `json:"ts"`
}

// Data is what the generator produces: customers first (in the order
// produced; a later record for an ID replaces the earlier one), then
// orders and payments interleaved as they arrive.
type Data struct {
	Customers []Customer
	Orders    []Order
	Payments  []Payment
	events    []*kgo.Record // orders and payments, in produce order
}

const (
	topicCustomers = "customers"
	topicOrders    = "orders"
	topicPayments  = "payments"

	orderSpan    = 6*time.Minute + 40*time.Second // event time the orders cover
	maxOrderLag  = 15 * time.Second               // how late an order may arrive; below the windows' grace
	paidShare    = 0.85                           // orders that get a payment
	latePayShare = 0.2                            // of those, paid too late to count (10m30s-13m)
)

var (
	names = []string{"Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra",
		"Barbara Liskov", "Donald Knuth", "Margaret Hamilton", "Ken Thompson", "Frances Allen",
		"John Backus", "Radia Perlman"}
	regions    = []string{"EU", "NA", "APAC", "LATAM"}
	categories = []struct {
		name     string
		weight   int
		min, max int64 // price range in cents
	}{
		{"books", 30, 800, 4500},
		{"grocery", 25, 500, 12000},
		{"toys", 15, 600, 8000},
		{"garden", 15, 1000, 25000},
		{"electronics", 15, 2500, 90000},
	}
	methods = []string{"card", "card", "card", "paypal", "bank-transfer"}
)

// Generate returns a fixed data set for seed, with event time starting at
// start: a dozen customers (one of whom moves region before ordering
// anything), about 150 orders over six and a half minutes, arriving up to
// 15 s out of order, and payments for most of them, some more than ten
// minutes late.
func Generate(seed uint64, start time.Time) Data {
	rng := rand.New(rand.NewPCG(seed, 0x6f7264657273))
	var d Data
	for i, n := range names {
		d.Customers = append(d.Customers, Customer{ID: fmt.Sprintf("c-%02d", i+1), Name: n, Region: regions[rng.IntN(len(regions))]})
	}
	moved := d.Customers[rng.IntN(len(d.Customers))]
	moved.Region = regions[(slices.Index(regions, moved.Region)+1)%len(regions)]
	d.Customers = append(d.Customers, moved)

	type event struct {
		arrival int64
		rec     *kgo.Record
	}
	var events []event
	add := func(topic, key string, v any, ts, arrival int64) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // plain structs always marshal
		}
		events = append(events, event{arrival, &kgo.Record{Topic: topic, Key: []byte(key), Value: b, Timestamp: time.UnixMilli(ts)}})
	}
	t0 := start.UnixMilli()
	total := 0
	for _, c := range categories {
		total += c.weight
	}
	for ts, i := t0, 1; ts < t0+orderSpan.Milliseconds(); i++ {
		pick := rng.IntN(total)
		ci := 0
		for pick >= categories[ci].weight {
			pick -= categories[ci].weight
			ci++
		}
		cat := categories[ci]
		o := Order{
			ID:         fmt.Sprintf("o-%04d", i),
			CustomerID: d.Customers[rng.IntN(len(names))].ID,
			Category:   cat.name,
			Cents:      cat.min + rng.Int64N(cat.max-cat.min),
			Time:       ts,
		}
		d.Orders = append(d.Orders, o)
		add(topicOrders, o.ID, o, o.Time, o.Time+rng.Int64N(maxOrderLag.Milliseconds()))
		if rng.Float64() < paidShare {
			delay := 5 + rng.Int64N(235) // seconds
			if rng.Float64() < latePayShare {
				delay = 630 + rng.Int64N(150)
			}
			p := Payment{OrderID: o.ID, Method: methods[rng.IntN(len(methods))], Cents: o.Cents, Time: o.Time + delay*1000}
			d.Payments = append(d.Payments, p)
			add(topicPayments, p.OrderID, p, p.Time, p.Time)
		}
		ts += 200 + int64(rng.ExpFloat64()*2400) // about one order every 2.6 s
	}
	slices.SortStableFunc(events, func(a, b event) int { return int(a.arrival - b.arrival) })
	for _, e := range events {
		d.events = append(d.events, e.rec)
	}
	return d
}

// customerRecords returns the customers topic's records, in produce order.
func (d Data) customerRecords() []*kgo.Record {
	var rs []*kgo.Record
	for _, c := range d.Customers {
		b, err := json.Marshal(c)
		if err != nil {
			panic(err)
		}
		// Customers exist before any order: stamp them at the first order's time.
		rs = append(rs, &kgo.Record{Topic: topicCustomers, Key: []byte(c.ID), Value: b, Timestamp: time.UnixMilli(d.Orders[0].Time)})
	}
	return rs
}
