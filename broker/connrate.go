package broker

import (
	"math"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Connection creation rates, as Kafka's KIP-612:
//
//   - max.connection.creation.rate (ClientLimitsConfig) bounds the
//     connections per second the broker accepts across its listeners. A
//     listener past it waits before it serves the connection it accepted
//     and accepts no other meanwhile, as Kafka's acceptor does: clients
//     wait in the listen backlog. When the broker has several listeners
//     the inter-broker one is exempt, so that the other brokers are never
//     held up by clients; with a single listener it counts too (Kafka
//     would exempt it, which leaves such a broker without the limit).
//   - connection_creation_rate, a client quota of an IP entity (a named
//     address, or the default for every address without one; set with
//     AlterClientQuotas, kafka-configs --entity-type ips), bounds the
//     connections per second from one address. A connection past it is
//     closed once the address is back within its rate, as Kafka closes
//     a throttled connection after its throttle time, so that a client
//     that reconnects at once is slowed down rather than refused in a
//     loop. Until then it counts against max.connections and
//     max.connections.per.ip, which bound what such connections hold.
//     Refused connections take nothing from the address's allowance.
//     The inter-broker listener is exempt here too when the broker has
//     several: the other brokers all connect from their own addresses.
//
// Each rate is a token bucket filled at the rate and holding the rate
// times the quota window span (quota.window.num x
// quota.window.size), and always room for one connection.
type connRates struct {
	now  func() time.Time
	span time.Duration
	// rate is max.connection.creation.rate, 0 for none.
	rate float64

	mu sync.Mutex // guards the following
	// broker is the bucket of max.connection.creation.rate.
	broker rateBucket
	// byIP are the buckets of the addresses with a rate, dropped once
	// full again (sweepLocked).
	byIP      map[string]*rateBucket
	lastSweep time.Time
}

func newConnRates(cfg *Config) *connRates {
	r := &connRates{
		now:  cfg.Now,
		span: time.Duration(cfg.ClientLimits.QuotaWindowNum) * cfg.ClientLimits.QuotaWindowSize,
		rate: float64(cfg.ClientLimits.MaxConnectionCreationRate),
		byIP: map[string]*rateBucket{},
	}
	r.broker = rateBucket{tokens: r.burst(r.rate), last: r.now()}
	return r
}

// burst is what a bucket of rate holds at most.
func (r *connRates) burst(rate float64) float64 { return max(1, rate*r.span.Seconds()) }

// reserve takes a connection from the broker's rate and returns how long
// the listener waits before serving it: zero while the rate holds. Each
// connection reserves its place, so the listeners' connections are served
// at the rate in the order they came.
func (r *connRates) reserve() time.Duration {
	if r.rate <= 0 {
		return 0
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broker.refill(now, r.rate, r.burst(r.rate))
	r.broker.tokens--
	if r.broker.tokens >= 0 {
		return 0
	}
	return secondsDuration(-r.broker.tokens / r.rate)
}

// admitIP takes a connection from ip's connection_creation_rate, if it
// has one in q, and returns zero, or how long until the address may
// connect again when it is past its rate (nothing taken).
func (r *connRates) admitIP(q meta.Quotas, ip string) time.Duration {
	rate, ok := ipConnectionRate(q, ip)
	if !ok || rate <= 0 {
		return 0
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
	burst := r.burst(rate)
	b := r.byIP[ip]
	if b == nil {
		b = &rateBucket{tokens: burst, last: now}
		r.byIP[ip] = b
	}
	b.refill(now, rate, burst)
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return secondsDuration((1 - b.tokens) / rate)
}

// ipConnectionRate is the connection_creation_rate of ip: its own, else
// the default IP entity's.
func ipConnectionRate(q meta.Quotas, ip string) (float64, bool) {
	if len(q) == 0 {
		return 0, false
	}
	if v, ok := q[meta.QuotaEntity{IP: meta.Named(ip)}][quotaConnectionCreationRate]; ok {
		return v, true
	}
	v, ok := q[meta.QuotaEntity{IP: meta.DefaultName()}][quotaConnectionCreationRate]
	return v, ok
}

// sweepLocked drops, once a minute, the buckets of addresses idle for a
// span: refilled, they are as new.
// REQUIRES: r.mu held.
func (r *connRates) sweepLocked(now time.Time) {
	if now.Sub(r.lastSweep) < time.Minute {
		return
	}
	r.lastSweep = now
	for ip, b := range r.byIP {
		if now.Sub(b.last) > r.span {
			delete(r.byIP, ip)
		}
	}
}

// rateBucket is a token bucket of connections.
// Invariant: tokens <= the burst it was last refilled with.
type rateBucket struct {
	tokens float64
	last   time.Time // when tokens were last refilled
}

// refill adds what rate brings from the last refill to now, up to burst.
func (b *rateBucket) refill(now time.Time, rate, burst float64) {
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens += rate * dt.Seconds()
		b.last = now
	}
	b.tokens = min(b.tokens, burst)
}

// secondsDuration converts seconds to a duration, rounded up so that a
// wait of it always ends within the rate.
func secondsDuration(s float64) time.Duration {
	return time.Duration(math.Ceil(s * float64(time.Second)))
}
