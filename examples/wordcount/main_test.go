package main

import (
	"context"
	"io"
	"maps"
	"testing"
	"time"
)

// TestWordCount runs the example on its embedded broker and checks the
// final counts.
func TestWordCount(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, err := Run(ctx, nil, t.TempDir(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := Want(Lines); !maps.Equal(got, want) {
		t.Fatalf("counts\n got %v\nwant %v", got, want)
	}
}
