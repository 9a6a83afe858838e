package broker

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// The memo answers as resolveQuota does, and forgets what it remembered
// once the quotas change (the metadata replaces the map on every change).
func TestQuotaMemoFollowsChanges(t *testing.T) {
	var m quotaMemo
	q1 := meta.Quotas{{User: meta.Named("alice")}: {quotaProducerByteRate: 100}}
	if v, sk, ok := m.resolve(q1, quotaProducerByteRate, "alice", "app"); !ok || v != 100 || !sk.hasUser || sk.user != "alice" {
		t.Fatalf("alice in q1: %v %+v %v", v, sk, ok)
	}
	if _, _, ok := m.resolve(q1, quotaProducerByteRate, "bob", "app"); ok {
		t.Fatal("bob has no quota in q1")
	}
	// The next version: alice's quota changed, bob got one.
	q2 := maps.Clone(q1)
	q2[meta.QuotaEntity{User: meta.Named("alice")}] = map[string]float64{quotaProducerByteRate: 200}
	q2[meta.QuotaEntity{ClientID: meta.DefaultName()}] = map[string]float64{quotaProducerByteRate: 50}
	if v, _, ok := m.resolve(q2, quotaProducerByteRate, "alice", "app"); !ok || v != 200 {
		t.Fatalf("alice in q2: %v %v, want 200", v, ok)
	}
	if v, sk, ok := m.resolve(q2, quotaProducerByteRate, "bob", "app"); !ok || v != 50 || !sk.hasClient || sk.clientID != "app" {
		t.Fatalf("bob in q2: %v %+v %v, want the default client's 50", v, sk, ok)
	}
	// Quotas all removed: an empty map (or nil) resolves nothing.
	if _, _, ok := m.resolve(meta.Quotas{}, quotaProducerByteRate, "alice", "app"); ok {
		t.Fatal("alice without quotas")
	}
	// Bounded: client ids that come and go do not grow it without end.
	for i := range quotaMemoMax + 10 {
		m.resolve(q2, quotaProducerByteRate, "bob", string(rune('a'+i%26))+time.Duration(i).String())
	}
	if n := len(m.entries); n > quotaMemoMax {
		t.Fatalf("%d entries, more than %d", n, quotaMemoMax)
	}
}

// A connection's throttle ends: waitMuted waits it out (on the broker's
// clock), then the connection reads no clock until it is muted again.
func TestWaitMutedEnds(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	c := &conn{b: &Broker{cfg: Config{Now: clock}}, ctx: context.Background()}
	if err := c.waitMuted(); err != nil {
		t.Fatal(err)
	}
	c.mute(time.Second)
	if got := c.mutedUntil.Load(); got != now.Add(time.Second).UnixNano() {
		t.Fatalf("muted until %d", got)
	}
	// The clock is past the throttle: no wait, and the mark is cleared.
	now = now.Add(2 * time.Second)
	if err := c.waitMuted(); err != nil {
		t.Fatal(err)
	}
	if got := c.mutedUntil.Load(); got != 0 {
		t.Fatalf("muted until %d after the throttle ended, want 0", got)
	}
	// Muted again, from the new now; a cancelled connection stops waiting.
	c.mute(time.Hour)
	if c.mutedUntil.Load() != now.Add(time.Hour).UnixNano() {
		t.Fatal("mute after a cleared throttle did not take")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.ctx = ctx
	if err := c.waitMuted(); err == nil {
		t.Fatal("waitMuted on a closed connection returned nil")
	}
}
