package broker

import (
	"context"
	"net"
	"sync"
)

// Connection limits, as Kafka's max.connections and max.connections.per.ip
// (ClientLimitsConfig). Every client connection of the broker's listeners
// counts; the controller listener's Raft connections do not.
//
//   - max.connections: at the limit a listener serves the connection it
//     just accepted, and accepts no other, only once a connection closes,
//     as Kafka's acceptor waits: new clients wait (in the listen backlog)
//     rather than being refused. In a cluster the
//     other brokers' replica fetchers connect like clients and count too:
//     leave room for them.
//   - max.connections.per.ip (and its overrides): a connection from an
//     address already at its limit is closed as soon as it is accepted.
type connLimits struct {
	// slots holds a token per open connection when max.connections is
	// set; nil means no limit.
	slots     chan struct{}
	perIP     int
	overrides map[string]int

	mu     sync.Mutex // guards byAddr
	byAddr map[string]int
}

func newConnLimits(c *ClientLimitsConfig) *connLimits {
	l := &connLimits{perIP: c.MaxConnectionsPerIP, overrides: c.MaxConnectionsPerIPOverrides, byAddr: map[string]int{}}
	if c.MaxConnections > 0 {
		l.slots = make(chan struct{}, c.MaxConnections)
	}
	return l
}

// acquire waits for room under max.connections, or for ctx to end.
func (l *connLimits) acquire(ctx context.Context) error {
	if l.slots == nil {
		return nil
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// releaseSlot gives back what acquire took.
func (l *connLimits) releaseSlot() {
	if l.slots != nil {
		<-l.slots
	}
}

// admit counts a connection from addr against its address's limit, and
// reports false, counting nothing, when the address is at it.
func (l *connLimits) admit(addr net.Addr) (string, bool) {
	ip := addrIP(addr)
	limit, ok := l.overrides[ip]
	if !ok {
		if l.perIP <= 0 {
			return ip, true
		}
		limit = l.perIP
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr[ip] >= limit {
		return ip, false
	}
	l.byAddr[ip]++
	return ip, true
}

// release uncounts a connection admit counted.
func (l *connLimits) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr[ip] <= 1 {
		delete(l.byAddr, ip)
	} else {
		l.byAddr[ip]--
	}
}

// addrIP is the IP of a TCP address in its canonical form, as the
// overrides are keyed.
func addrIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
