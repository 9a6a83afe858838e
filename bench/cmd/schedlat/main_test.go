package main

import (
	"bytes"
	"runtime/trace"
	"strings"
	"testing"
)

// handOff passes a token back and forth n times between two goroutines:
// each pass wakes the other side from a channel receive.
//
//go:noinline
func handOff(n int) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	for i := range n {
		ping <- i
		<-pong
	}
	close(ping)
}

// TestAnalyzeHandOffs traces a known number of channel hand-offs and
// checks that schedlat finds a wait for each wake, grouped by the waker.
func TestAnalyzeHandOffs(t *testing.T) {
	const n = 500
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Skipf("tracing unavailable: %v", err)
	}
	handOff(n)
	trace.Stop()

	waits, _, err := analyze(&buf, 3)
	if err != nil {
		t.Fatal(err)
	}
	var woken int
	for g, d := range waits {
		if strings.HasPrefix(g, "woken by ") && strings.Contains(g, "handOff") {
			woken += len(d)
			for _, x := range d {
				if x < 0 {
					t.Fatalf("group %q has a negative wait %v", g, x)
				}
			}
		}
	}
	// Each pass and each answer wakes a goroutine parked on a channel,
	// unless the other side happened to be ready already; at least one
	// wake per pass is always there.
	if woken < n {
		t.Fatalf("%d waits after wakes from handOff, want at least %d; groups: %v", woken, n, keys(waits))
	}
}

func TestAnalyzeRejectsGarbage(t *testing.T) {
	if _, _, err := analyze(strings.NewReader("not a trace"), 3); err == nil {
		t.Fatal("analyze accepted bytes that are not a trace")
	}
}

func keys(g groups) []string {
	var ks []string
	for k := range g {
		ks = append(ks, k)
	}
	return ks
}
