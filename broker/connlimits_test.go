package broker_test

import (
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// apiVersions sends an ApiVersions on r and reports whether it was
// answered within wait (false when the broker closed the connection or
// did not answer in time).
func apiVersions(t *testing.T, r *saslConn, wait time.Duration) bool {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	r.send(req)
	r.nc.SetReadDeadline(time.Now().Add(wait))
	var size [4]byte
	_, err := r.nc.Read(size[:1])
	return err == nil
}

// max.connections.per.ip closes a connection past the address's limit as
// soon as it is accepted; an override replaces the limit for its address;
// a closed connection makes room.
func TestMaxConnectionsPerIP(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perIP     int
		overrides map[string]int
		limit     int
	}{
		{"per ip", 2, nil, 2},
		{"override", 1, map[string]int{"127.0.0.1": 3}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testutil.StartBroker(t, broker.Config{ClientLimits: broker.ClientLimitsConfig{
				MaxConnectionsPerIP: tc.perIP, MaxConnectionsPerIPOverrides: tc.overrides,
			}})
			var conns []*saslConn
			for i := range tc.limit {
				c := dialSASL(t, b.Addr())
				if !apiVersions(t, c, 30*time.Second) {
					t.Fatalf("connection %d of %d refused", i+1, tc.limit)
				}
				conns = append(conns, c)
			}
			over := dialSASL(t, b.Addr())
			over.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			var one [1]byte
			_, err := over.nc.Read(one[:])
			if ne, ok := err.(net.Error); err == nil || (ok && ne.Timeout()) {
				t.Fatalf("a connection past the limit was not closed: %v", err)
			}
			conns[0].nc.Close()
			waitConns(t, b, tc.limit-1)
			if !apiVersions(t, dialSASL(t, b.Addr()), 30*time.Second) {
				t.Fatal("no room after a connection closed")
			}
		})
	}
}

// At max.connections a new connection is not served until another closes,
// then it is.
func TestMaxConnections(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{ClientLimits: broker.ClientLimitsConfig{MaxConnections: 2}})
	first, second := dialSASL(t, b.Addr()), dialSASL(t, b.Addr())
	for _, c := range []*saslConn{first, second} {
		if !apiVersions(t, c, 30*time.Second) {
			t.Fatal("a connection under the limit was not served")
		}
	}
	third := dialSASL(t, b.Addr())
	// Not served while two are open: a broken limit would answer at
	// once, so half a second is plenty to see it.
	if apiVersions(t, third, 500*time.Millisecond) {
		t.Fatal("a connection past max.connections was served")
	}
	if n := b.NumConns(); n != 2 {
		t.Fatalf("broker holds %d connections, want 2", n)
	}
	first.nc.Close()
	// The waiting connection is served now; its request was read from
	// the socket once it was.
	third.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [1]byte
	if _, err := third.nc.Read(size[:]); err != nil {
		t.Fatalf("the waiting connection was not served once another closed: %v", err)
	}
}
