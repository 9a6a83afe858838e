package main

import (
	"context"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/stream"
)

// TestClickstream runs the example on its embedded broker and checks that
// the sessions it reads are those the clicks make, with every click in
// one.
func TestClickstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clicks := Generate(7, time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	got, err := Run(ctx, nil, t.TempDir(), clicks)
	if err != nil {
		t.Fatal(err)
	}
	want := Sessions(clicks)
	if len(got) != len(want) || len(want) < 2*len(users) {
		t.Fatalf("%d sessions, want %d (at least 2 per user)", len(got), len(want))
	}
	var views int64
	for _, s := range got {
		if n, ok := want[windowed(s)]; !ok || n != s.Views {
			t.Errorf("session %+v; want %d views", s, n)
		}
		views += s.Views
	}
	if views != int64(len(clicks)) {
		t.Errorf("sessions hold %d views, want %d", views, len(clicks))
	}
}

func windowed(s Session) stream.Windowed[string] {
	return stream.Windowed[string]{Key: s.User, Start: s.Start, End: s.End}
}
