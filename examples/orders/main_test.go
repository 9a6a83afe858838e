package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"testing"
	"time"
)

type windowKey struct {
	category string
	start    int64
}

// reference computes the example's output plainly from the generated data:
// the final revenue of every window that closed, and every order paid
// within payWithin.
func reference(d Data) (map[windowKey]Revenue, map[string]PaidOrder) {
	customers := map[string]Customer{}
	for _, c := range d.Customers {
		customers[c.ID] = c // the latest record for an id wins
	}
	revenue := map[windowKey]Revenue{}
	orders := map[string]Order{}
	streamTime := int64(-1)
	size := windowSize.Milliseconds()
	for _, o := range d.Orders {
		if _, ok := customers[o.CustomerID]; !ok {
			continue
		}
		orders[o.ID] = o
		k := windowKey{o.Category, o.Time - o.Time%size}
		r := revenue[k]
		revenue[k] = Revenue{Cents: r.Cents + o.Cents, Orders: r.Orders + 1}
		streamTime = max(streamTime, o.Time)
	}
	for k := range revenue {
		if k.start+size+windowGrace.Milliseconds() > streamTime {
			delete(revenue, k) // still open: no final result yet
		}
	}
	paid := map[string]PaidOrder{}
	for _, p := range d.Payments {
		o, ok := orders[p.OrderID]
		if !ok || p.Time-o.Time > payWithin.Milliseconds() || o.Time-p.Time > payWithin.Milliseconds() {
			continue
		}
		c := customers[o.CustomerID]
		paid[o.ID] = PaidOrder{OrderID: o.ID, Customer: c.Name, Region: c.Region, Category: o.Category,
			Cents: o.Cents, Method: p.Method, OrderedAt: o.Time, PaidAt: p.Time}
	}
	return revenue, paid
}

// TestOrders runs the example on its embedded broker with a fixed seed and
// checks the final window results and the paid orders against the
// reference: each exactly once.
func TestOrders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	d := Generate(42, time.Now().UTC().Truncate(time.Minute))
	var out bytes.Buffer
	got, err := Run(ctx, nil, t.TempDir(), d, &out)
	if err != nil {
		t.Fatalf("%v\noutput so far:\n%s", err, out.String())
	}
	wantRevenue, wantPaid := reference(d)
	if len(wantRevenue) < 20 || len(wantPaid) < 50 || len(wantPaid) == len(d.Payments) {
		t.Fatalf("generated data too thin: %d windows, %d of %d payments in time", len(wantRevenue), len(wantPaid), len(d.Payments))
	}

	gotRevenue := map[windowKey]Revenue{}
	for _, w := range got.Revenue {
		k := windowKey{w.Category, w.Start}
		if _, dup := gotRevenue[k]; dup {
			t.Errorf("window %v emitted twice", k)
		}
		if w.End != w.Start+windowSize.Milliseconds() {
			t.Errorf("window %v ends at %d", k, w.End)
		}
		gotRevenue[k] = w.Revenue
	}
	if !maps.Equal(gotRevenue, wantRevenue) {
		t.Errorf("revenue per category\n got %v\nwant %v", gotRevenue, wantRevenue)
	}
	gotPaid := map[string]PaidOrder{}
	for _, p := range got.Paid {
		if _, dup := gotPaid[p.OrderID]; dup {
			t.Errorf("order %s paid twice", p.OrderID)
		}
		gotPaid[p.OrderID] = p
	}
	if !maps.Equal(gotPaid, wantPaid) {
		t.Errorf("paid orders\n got %v\nwant %v", gotPaid, wantPaid)
	}
	// The explanation's figures add up: payments less those outside the
	// join window are the paid orders.
	var why bytes.Buffer
	explain(&why, d, got)
	var paid, orders, late, shown int
	if _, err := fmt.Sscanf(why.String(), "why: %d of %d orders were paid, but %d payments", &paid, &orders, &late); err != nil {
		t.Fatalf("explanation %q: %v", why.String(), err)
	}
	shown = len(got.Paid)
	if paid != len(d.Payments) || orders != len(d.Orders) || paid-late != shown {
		t.Errorf("explanation does not add up (%d paid - %d late != %d shown):\n%s", paid, late, shown, why.String())
	}
	if t.Failed() {
		t.Logf("output:\n%s", out.String())
	}
}
