package broker

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ClientLimitsConfig is how the broker protects itself from its clients:
// the windows client quotas are measured over (the quotas themselves are
// in the metadata, set with AlterClientQuotas; quota.go) and the
// connection limits (connlimits.go). Each field names the Kafka broker
// property it mirrors.
type ClientLimitsConfig struct {
	// QuotaWindowNum is quota.window.num: with QuotaWindowSize, the span a
	// client may burst at its quota's rate before it is throttled, and
	// the longest one throttle lasts (quota.go). Default 11.
	QuotaWindowNum int
	// QuotaWindowSize is quota.window.size.seconds, as a duration (Runnel
	// accepts less than a second). Default 1s.
	QuotaWindowSize time.Duration
	// MaxConnections is max.connections: the client connections the
	// broker holds across its listeners. At the limit it accepts no more
	// until one closes, as Kafka does; the controller listener is not
	// counted. Default 0, no limit.
	MaxConnections int
	// MaxConnectionsPerIP is max.connections.per.ip: the connections from
	// one address. A connection past it is closed as soon as it is
	// accepted. Default 0, no limit.
	MaxConnectionsPerIP int
	// MaxConnectionsPerIPOverrides is max.connections.per.ip.overrides:
	// limits for given addresses (IP literals) that replace
	// MaxConnectionsPerIP; 0 refuses every connection from the address.
	MaxConnectionsPerIPOverrides map[string]int
	// MaxConnectionCreationRate is max.connection.creation.rate: the
	// connections per second the broker accepts across its listeners
	// (the inter-broker one exempt when there are several); a listener
	// past it waits before it serves the next (connrate.go). Per
	// address, the IP entities' connection_creation_rate quotas bound
	// the rate. Default 0, no limit.
	MaxConnectionCreationRate int
}

func (c *ClientLimitsConfig) ensureDefaults() {
	if c.QuotaWindowNum == 0 {
		c.QuotaWindowNum = 11
	}
	if c.QuotaWindowSize == 0 {
		c.QuotaWindowSize = time.Second
	}
}

func (c *ClientLimitsConfig) validate() []error {
	var errs []error
	if c.QuotaWindowNum < 1 {
		errs = append(errs, fmt.Errorf("broker: quota.window.num %d must be at least 1", c.QuotaWindowNum))
	}
	if c.QuotaWindowSize < time.Millisecond {
		errs = append(errs, fmt.Errorf("broker: quota.window.size %v must be at least 1ms", c.QuotaWindowSize))
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("broker: max.connections %d is negative", c.MaxConnections))
	}
	if c.MaxConnectionsPerIP < 0 {
		errs = append(errs, fmt.Errorf("broker: max.connections.per.ip %d is negative", c.MaxConnectionsPerIP))
	}
	if c.MaxConnectionCreationRate < 0 {
		errs = append(errs, fmt.Errorf("broker: max.connection.creation.rate %d is negative", c.MaxConnectionCreationRate))
	}
	for _, ip := range slices.Sorted(maps.Keys(c.MaxConnectionsPerIPOverrides)) {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("broker: max.connections.per.ip.overrides: %q is not an IP address", ip))
		}
		if n := c.MaxConnectionsPerIPOverrides[ip]; n < 0 {
			errs = append(errs, fmt.Errorf("broker: max.connections.per.ip.overrides: %s:%d is negative", ip, n))
		}
	}
	return errs
}

func (c *ClientLimitsConfig) string() string {
	var b strings.Builder
	fmt.Fprintf(&b, "quota.window.num=%d\n", c.QuotaWindowNum)
	fmt.Fprintf(&b, "quota.window.size=%v\n", c.QuotaWindowSize)
	fmt.Fprintf(&b, "max.connections=%d\n", c.MaxConnections)
	fmt.Fprintf(&b, "max.connections.per.ip=%d\n", c.MaxConnectionsPerIP)
	var o []string
	for _, ip := range slices.Sorted(maps.Keys(c.MaxConnectionsPerIPOverrides)) {
		o = append(o, ip+":"+strconv.Itoa(c.MaxConnectionsPerIPOverrides[ip]))
	}
	fmt.Fprintf(&b, "max.connections.per.ip.overrides=%s\n", strings.Join(o, ","))
	fmt.Fprintf(&b, "max.connection.creation.rate=%d\n", c.MaxConnectionCreationRate)
	return b.String()
}

// ParseConnectionOverrides reads max.connections.per.ip.overrides:
// "IP:COUNT,IP:COUNT" (an IPv6 address in brackets or not).
func ParseConnectionOverrides(s string) (map[string]int, error) {
	out := map[string]int{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		i := strings.LastIndex(item, ":")
		if i < 0 {
			return nil, fmt.Errorf("broker: max.connections.per.ip.overrides %q: want IP:COUNT", item)
		}
		ip := strings.Trim(item[:i], "[]")
		n, err := strconv.Atoi(item[i+1:])
		if err != nil || net.ParseIP(ip) == nil || n < 0 {
			return nil, fmt.Errorf("broker: max.connections.per.ip.overrides %q: want IP:COUNT", item)
		}
		out[net.ParseIP(ip).String()] = n
	}
	return out, nil
}
