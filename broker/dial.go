package broker

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// DialFunc opens a connection as net.Dialer.DialContext does. A broker
// uses Config.Dial for every connection it opens to another node.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// defaultDial is Config.Dial's default: a plain dial, bounded at 5 s so a
// black-holed peer does not hold a replica fetcher or a controller call.
func defaultDial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	return d.DialContext(ctx, network, addr)
}

// RouteDial returns a DialFunc that dials routes[addr] in place of addr
// when there is one, and addr itself otherwise. With it a test puts a
// proxy of its own on each link from this broker to another node (its
// Kafka listener or its controller listener) without changing what any
// node advertises, so it can cut, slow or make one-way the links of one
// broker alone.
func RouteDial(routes map[string]string) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if via, ok := routes[addr]; ok {
			addr = via
		}
		return defaultDial(ctx, network, addr)
	}
}

// ParseRoutes parses "ADDR=VIA,ADDR=VIA", the form of runnel broker's
// --peer-routes flag, into RouteDial's map.
func ParseRoutes(s string) (map[string]string, error) {
	routes := make(map[string]string)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		from, to, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("broker: route %q is not HOST:PORT=HOST:PORT", part)
		}
		for _, a := range []string{from, to} {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("broker: route %q: %v", part, err)
			}
		}
		if _, dup := routes[from]; dup {
			return nil, fmt.Errorf("broker: two routes for %s", from)
		}
		routes[from] = to
	}
	return routes, nil
}
