package main

import (
	"bytes"
	"context"
	"maps"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/brokertest"
)

// TestReplay runs the example on a broker of its own and checks both runs'
// counts: the second, after the reset, counts every human view once, so
// it did reprocess the input from the start, on empty state.
func TestReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	brokers := brokertest.Start(t)
	var out bytes.Buffer
	before, after, err := Run(ctx, brokers, t.TempDir(), &out)
	if err != nil {
		t.Fatalf("%v\noutput so far:\n%s", err, out.String())
	}
	if !maps.Equal(before, Want(false)) || !maps.Equal(after, Want(true)) || maps.Equal(before, after) {
		t.Fatalf("before %v, after %v\noutput:\n%s", before, after, out.String())
	}
	if !bytes.Contains(out.Bytes(), []byte("deleted internal topic replay-counts-changelog")) {
		t.Fatalf("output:\n%s", out.String())
	}
}
