// Package freeport picks loopback ports for tests and local clusters that
// must know a broker's address before the broker starts (a controller
// quorum lists every voter's address up front; a restarted broker must
// come back on the address the others know).
//
// Listening on port 0 and closing is not enough for those: the kernel
// hands out that port again, both to the next listener on port 0 and as
// the local port of an outgoing connection, and on a busy machine some
// client's connection takes it before the broker binds it ("address
// already in use"). Ports below the kernel's ephemeral range are never
// handed out that way, so Addrs picks among them, at random so that test
// processes running at once rarely meet, and never twice in one process.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the lowest port Addrs picks: above the well-known and most
// registered service ports.
const lowest = 10000

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Addrs returns n distinct "127.0.0.1:PORT" addresses free now, each
// never returned before by this process.
func Addrs(n int) ([]string, error) {
	ports, err := Ports(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i, p := range ports {
		out[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return out, nil
}

// Ports is Addrs' ports alone.
func Ports(n int) ([]int, error) {
	mu.Lock()
	defer mu.Unlock()
	high := ephemeralLow()
	if high-lowest < 1000 {
		return ephemeral(n)
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]int, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("freeport: no free port found below %d after %d tries", high, tries)
		}
		p := lowest + rand.IntN(high-lowest)
		if given[p] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		given[p] = true
		out = append(out, p)
	}
	return out, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range, or the
// Linux default where the range cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if low, err := strconv.Atoi(f[0]); err == nil {
				return low
			}
		}
	}
	return 32768
}

// ephemeral is the fallback where the ephemeral range leaves no room
// below it: ports the kernel picks, held until all n are known.
func ephemeral(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]int, 0, n)
	for len(out) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
