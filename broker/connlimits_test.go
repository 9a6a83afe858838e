package broker_test

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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

// max.connection.creation.rate holds the connections a broker serves to
// its rate: at 10 a second with a burst of one, the 11th connection of a
// quick succession is served a second after the first at the earliest.
func TestMaxConnectionCreationRate(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{ClientLimits: broker.ClientLimitsConfig{
		MaxConnectionCreationRate: 10, QuotaWindowNum: 1, QuotaWindowSize: 100 * time.Millisecond,
	}})
	start := time.Now()
	for i := range 11 {
		if !apiVersions(t, dialSASL(t, b.Addr()), 30*time.Second) {
			t.Fatalf("connection %d refused", i+1)
		}
	}
	if took := time.Since(start); took < 950*time.Millisecond {
		t.Fatalf("11 connections served in %v at max.connection.creation.rate=10", took)
	}
}

// An address past its connection_creation_rate quota (here the default
// IP entity's) has its connection closed unanswered; the address's first
// connection, and the connections made before the quota, are served.
func TestIPConnectionCreationRate(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{ClientLimits: broker.ClientLimitsConfig{QuotaWindowNum: 1, QuotaWindowSize: time.Second}})
	adm := kadm.NewClient(newClient(t, b.Addr()))
	ctx := testContext(t)
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: quotaEntity("ip", "<default>"), Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 0.2}}},
	})
	if err != nil || res[0].Err != nil {
		t.Fatalf("AlterClientQuotas: %v %v", err, res)
	}
	first := dialSASL(t, b.Addr())
	if !apiVersions(t, first, 30*time.Second) {
		t.Fatal("the address's first connection under its rate was refused")
	}
	over := dialSASL(t, b.Addr())
	over.send(kmsg.NewPtrApiVersionsRequest())
	// Closed within 5 s (1/0.2), when the address is back within its
	// rate: unanswered, not timed out.
	over.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var one [1]byte
	if _, err := over.nc.Read(one[:]); err == nil {
		t.Fatal("a connection past connection_creation_rate was answered")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("a connection past connection_creation_rate was not closed: %v", err)
	}
	if _, err := adm.ListBrokers(ctx); err != nil {
		t.Fatalf("the connection made before the quota: %v", err)
	}
}

// socket.request.max.bytes: a frame that announces more closes the
// connection before its body is read; one within it is answered.
func TestSocketRequestMaxBytes(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{SocketRequestMaxBytes: 1024})
	within := dialRaw(t, b.Addr())
	within.send(frame(kmsg.NewPtrApiVersionsRequest(), 1))
	within.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(within.nc, size[:]); err != nil {
		t.Fatalf("a request within socket.request.max.bytes: %v", err)
	}
	over := dialRaw(t, b.Addr())
	over.send(binary.BigEndian.AppendUint32(nil, 1025))
	if !closedByBroker(over, 30*time.Second) {
		t.Fatal("a 1025-byte frame at socket.request.max.bytes=1024 left the connection open")
	}
}

// With several listeners the inter-broker one (here the first) is exempt
// from max.connection.creation.rate, so that the other brokers are never
// held up by clients; the others are held to it.
func TestConnectionCreationRateExemptsInterBroker(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{
		Security: broker.SecurityConfig{Listeners: "PLAINTEXT://127.0.0.1:0,CLIENTS://127.0.0.1:0", ProtocolMap: "CLIENTS:PLAINTEXT"},
		ClientLimits: broker.ClientLimitsConfig{
			MaxConnectionCreationRate: 1, QuotaWindowNum: 1, QuotaWindowSize: 100 * time.Millisecond,
		},
	})
	served := func(listener string, n int) time.Duration {
		start := time.Now()
		for i := range n {
			if !apiVersions(t, dialSASL(t, b.ListenerAddr(listener)), 30*time.Second) {
				t.Fatalf("%s: connection %d refused", listener, i+1)
			}
		}
		return time.Since(start)
	}
	// Held to 1/s, 10 connections would take 9 s.
	if took := served("PLAINTEXT", 10); took > 6*time.Second {
		t.Fatalf("10 connections to the inter-broker listener took %v", took)
	}
	if took := served("CLIENTS", 3); took < 1900*time.Millisecond {
		t.Fatalf("3 connections to a client listener at 1/s took %v", took)
	}
}
