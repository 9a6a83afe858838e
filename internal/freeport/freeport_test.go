package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsDistinctFreeAndBelowEphemeral(t *testing.T) {
	high := ephemeralLow()
	seen := map[int]bool{}
	for range 20 {
		ports, err := Ports(5)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("port %d returned twice", p)
			}
			seen[p] = true
			if high-lowest >= 1000 && (p < lowest || p >= high) {
				t.Fatalf("port %d outside [%d, %d)", p, lowest, high)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Fatalf("port %d not free: %v", p, err)
			}
			ln.Close()
		}
	}
}

// A port some listener holds is never returned.
func TestPortsSkipTaken(t *testing.T) {
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	taken := map[int]bool{}
	// Hold a good share of the range so a pick lands on a held port often.
	for p := lowest; p < lowest+2000; p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		held = append(held, ln)
		taken[p] = true
	}
	ports, err := Ports(200)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if taken[p] {
			t.Fatalf("port %d is held by this test", p)
		}
	}
}
