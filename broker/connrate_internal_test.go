package broker

import (
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// The connection rates on a clock of their own: the broker's rate
// reserves each connection's place; an address's rate refuses what is
// past it, taking nothing, its own quota before the default's.
func TestConnRates(t *testing.T) {
	now := time.Unix(1000, 0)
	cfg := Config{Now: func() time.Time { return now }}
	cfg.ClientLimits = ClientLimitsConfig{QuotaWindowNum: 2, QuotaWindowSize: time.Second, MaxConnectionCreationRate: 2}
	r := newConnRates(&cfg)

	// A burst of 2/s x 2 s, then one every half second, reserved in turn.
	for i, want := range []time.Duration{0, 0, 0, 0, 500 * time.Millisecond, time.Second} {
		if got := r.reserve(); got != want {
			t.Fatalf("broker connection %d waits %v, want %v", i+1, got, want)
		}
	}
	now = now.Add(time.Second)
	// The second paid the two reserved: the next is the first in line.
	if got := r.reserve(); got != 500*time.Millisecond {
		t.Fatalf("a second later the next waits %v, want 500ms", got)
	}

	q := meta.Quotas{
		{IP: meta.DefaultName()}:         {quotaConnectionCreationRate: 1},
		{IP: meta.Named("10.0.0.1")}:     {quotaConnectionCreationRate: 0.5},
		{IP: meta.Named("10.0.0.9")}:     {quotaProducerByteRate: 1},
		{User: meta.Named("10.0.0.2")}:   {quotaConnectionCreationRate: 0.001},
		{ClientID: meta.Named("x")}:      {quotaConnectionCreationRate: 0.001},
		{IP: meta.Named("192.168.0.1")}:  {quotaConnectionCreationRate: 100},
		{IP: meta.Named("192.168.0.99")}: {},
	}
	// The default: 1/s over 2 s, a burst of 2.
	for i, want := range []time.Duration{0, 0, time.Second, time.Second} {
		if got := r.admitIP(q, "10.0.0.2"); got != want {
			t.Fatalf("10.0.0.2 connection %d: %v, want %v", i+1, got, want)
		}
	}
	// Its own 0.5/s, a burst of one (never less than one connection).
	for i, want := range []time.Duration{0, 2 * time.Second} {
		if got := r.admitIP(q, "10.0.0.1"); got != want {
			t.Fatalf("10.0.0.1 connection %d: %v, want %v", i+1, got, want)
		}
	}
	// Refused connections took nothing: half a second on, 10.0.0.2 is
	// half a connection closer.
	now = now.Add(500 * time.Millisecond)
	if got := r.admitIP(q, "10.0.0.2"); got != 500*time.Millisecond {
		t.Fatalf("10.0.0.2 half a second on: %v, want 500ms", got)
	}
	now = now.Add(500 * time.Millisecond)
	if got := r.admitIP(q, "10.0.0.2"); got != 0 {
		t.Fatalf("10.0.0.2 a second on: %v, want admitted", got)
	}
	if got := r.admitIP(nil, "10.0.0.2"); got != 0 {
		t.Fatalf("without quotas: %v", got)
	}
}
