package broker

import (
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// The bucket arithmetic on an injected clock: a new entity may burst the
// window span's worth, past it is throttled the time to refill what it
// owes, is refilled at the quota's rate while it does not send (never
// past the burst), owes at most one burst however much it sends at once,
// and follows a changed quota at once.
func TestQuotaBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const span = 2 * time.Second
	const bound = 500.0 // per second: a burst of 1000
	b := newQuotaBucket(t0, bound, span)
	if d := b.record(t0, 1000, bound, span); d != 0 {
		t.Fatalf("throttled within the burst: %v", d)
	}
	// 250 more owes 250: half a second at 500/s.
	if d := b.record(t0, 250, bound, span); d != 500*time.Millisecond {
		t.Fatalf("throttle for 250 owed at 500/s: %v", d)
	}
	// A second later 500 came in and 250 of it paid the debt.
	if d := b.record(t0.Add(time.Second), 0, bound, span); d != 0 || b.tokens != 250 {
		t.Fatalf("a second later: throttle %v, %v held", d, b.tokens)
	}
	// A record from a moment before the last refills nothing.
	if d := b.record(t0.Add(900*time.Millisecond), 0, bound, span); d != 0 || b.tokens != 250 {
		t.Fatalf("a record out of order: throttle %v, %v held", d, b.tokens)
	}
	// Idle for a minute, the bucket holds one burst, no more.
	later := t0.Add(time.Minute)
	if b.record(later, 0, bound, span); b.tokens != 1000 {
		t.Fatalf("after a minute idle: %v held", b.tokens)
	}
	// A huge request owes at most a burst: throttled the span at most,
	// and two spans later it may send again.
	if d := b.record(later, 1e9, bound, span); d != span {
		t.Fatalf("throttle for a huge request: %v", d)
	}
	if d := b.record(later.Add(2*span), 1000, bound, span); d != 0 {
		t.Fatalf("two spans after a huge request: %v", d)
	}
	// The quota lowered to 100/s: the bucket holds at most its burst of
	// 200, and 300 owes 100, a second at 100/s.
	now := later.Add(3 * span)
	if d := b.record(now, 300, 100, span); d != time.Second {
		t.Fatalf("throttle under a lowered quota: %v", d)
	}
	// No quota, no throttle.
	if d := b.record(now, 1e9, 0, span); d != 0 {
		t.Fatalf("throttle with a zero quota: %v", d)
	}
}

// Each quota key resolves to the first entity that sets it, in Kafka's
// order, and to the rate that entity's connections share.
func TestResolveQuotaOrder(t *testing.T) {
	u, c, d := meta.Named("alice"), meta.Named("app"), meta.DefaultName()
	q := meta.Quotas{
		{User: u, ClientID: c}:  {"request_percentage": 1},
		{User: u}:               {"producer_byte_rate": 2},
		{User: d, ClientID: d}:  {"consumer_byte_rate": 3},
		{ClientID: c}:           {"producer_byte_rate": 4, "consumer_byte_rate": 5},
		{ClientID: d}:           {"request_percentage": 6},
		{User: meta.Named("x")}: {"producer_byte_rate": 7},
	}
	for _, tc := range []struct {
		key, user, client string
		want              float64
		sensor            sensorKey
	}{
		{"request_percentage", "alice", "app", 1, sensorKey{quota: "request_percentage", user: "alice", clientID: "app", hasUser: true, hasClient: true}},
		{"producer_byte_rate", "alice", "app", 2, sensorKey{quota: "producer_byte_rate", user: "alice", hasUser: true}},
		{"consumer_byte_rate", "alice", "app", 3, sensorKey{quota: "consumer_byte_rate", user: "alice", clientID: "app", hasUser: true, hasClient: true}},
		{"producer_byte_rate", "bob", "app", 4, sensorKey{quota: "producer_byte_rate", clientID: "app", hasClient: true}},
		{"request_percentage", "bob", "other", 6, sensorKey{quota: "request_percentage", clientID: "other", hasClient: true}},
		{"producer_byte_rate", "bob", "other", 0, sensorKey{}},
	} {
		v, sk, ok := resolveQuota(q, tc.key, tc.user, tc.client)
		if v != tc.want || sk != tc.sensor || ok != (tc.want != 0) {
			t.Errorf("%s for %s/%s: %v %+v %v, want %v %+v", tc.key, tc.user, tc.client, v, sk, ok, tc.want, tc.sensor)
		}
	}
}

// A client that sends as hard as its throttles let it is held at its
// quota over the long run, not under it: simulated on an injected clock,
// each connection sends a request of size bytes, waits out the throttle
// the broker answers with (as franz-go does, KIP-219) plus overhead (the
// response's round trip and the client's own work), and sends again. In
// every 10s of the minute after the first burst the bytes recorded are
// within 2% (and a request) of the quota's, whatever the request size,
// the overhead, the windows, or how many connections share the entity.
func TestQuotaHoldsRate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bound    float64
		size     float64
		overhead time.Duration
		num      int
		window   time.Duration
		conns    int
	}{
		{"1MiB/s, 16KiB requests, default windows", 1 << 20, 16 << 10, time.Millisecond, 11, time.Second, 1},
		{"1MiB/s, 16KiB requests, 5 windows of 500ms", 1 << 20, 16 << 10, 5 * time.Millisecond, 5, 500 * time.Millisecond, 1},
		{"256KiB/s, 16KiB requests, 5 windows of 500ms", 256 << 10, 16 << 10, 2 * time.Millisecond, 5, 500 * time.Millisecond, 1},
		{"1MiB/s, 1MiB requests", 1 << 20, 1 << 20, 10 * time.Millisecond, 11, time.Second, 1},
		{"1MiB/s, 64KiB requests, 11 windows of 100ms", 1 << 20, 64 << 10, 3 * time.Millisecond, 11, 100 * time.Millisecond, 1},
		{"1MiB/s shared by 3 connections", 1 << 20, 16 << 10, 2 * time.Millisecond, 11, time.Second, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			s := &quotaSensors{now: func() time.Time { return now }, num: tc.num, size: tc.window, sensors: map[sensorKey]*quotaBucket{}}
			s.lastSweep = now
			q := meta.Quotas{{User: meta.Named("u")}: {quotaProducerByteRate: tc.bound}}
			start := now
			span := time.Duration(tc.num) * tc.window
			const slice = 10 * time.Second
			warmup, measure := 2*span, 6*slice
			next := make([]time.Time, tc.conns)
			for i := range next {
				next[i] = start
			}
			bytes := make([]float64, measure/slice)
			for now.Before(start.Add(warmup + measure)) {
				// The connection whose next request comes first.
				c := 0
				for i := range next {
					if next[i].Before(next[c]) {
						c = i
					}
				}
				now = next[c]
				d := s.record(q, quotaProducerByteRate, "u", "client", tc.size)
				if since := now.Sub(start); since >= warmup && since < warmup+measure {
					bytes[(since-warmup)/slice] += tc.size
				}
				next[c] = now.Add(d + tc.overhead)
			}
			want := tc.bound * slice.Seconds()
			for i, b := range bytes {
				if b < 0.98*want-tc.size || b > 1.02*want+tc.size {
					rate := b / slice.Seconds()
					t.Errorf("%v-%v after the first burst: %.0f B/s (%.1f%% of the quota %.0f B/s)",
						warmup+time.Duration(i)*slice, warmup+time.Duration(i+1)*slice, rate, 100*rate/tc.bound, tc.bound)
				}
			}
		})
	}
}
