package broker

import (
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// The rate and throttle arithmetic on an injected clock: a burst is
// measured over at least num-1 windows, the throttle brings the rate back
// to the bound and is capped at the window span, and windows older than
// the span are forgotten.
func TestRateSensorThrottle(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := &rateSensor{num: 3, size: time.Second}
	r.record(t0, 1000)
	// 1000 bytes over the minimum 2s window: 500/s.
	if got := r.rate(t0); got != 500 {
		t.Fatalf("rate after the first record: %v", got)
	}
	if d := r.throttle(t0, 500); d != 0 {
		t.Fatalf("throttle at the bound: %v", d)
	}
	// Another 1000 half a second later, in the same window: 2000 over
	// 0.5s plus the 2 whole windows is 800/s; waiting 1.5s brings 2000
	// over 4s down to the bound of 500/s.
	now := t0.Add(500 * time.Millisecond)
	r.record(now, 1000)
	if d := r.throttle(now, 500); d != 1500*time.Millisecond {
		t.Fatalf("throttle at twice the bound: %v", d)
	}
	// Far over: capped at the span, 3 windows of 1s.
	r.record(now, 100000)
	if d := r.throttle(now, 500); d != 3*time.Second {
		t.Fatalf("throttle far over the bound: %v", d)
	}
	// Three windows later every sample is gone.
	later := t0.Add(3 * time.Second)
	if got := r.rate(later); got != 0 || len(r.samples) != 0 {
		t.Fatalf("rate once the samples expired: %v (%d samples)", got, len(r.samples))
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
