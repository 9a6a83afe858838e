package broker_test

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// secureBroker starts a broker with a PLAINTEXT, an SSL, a SASL_PLAINTEXT
// and a SASL_SSL listener, its certificate from ca, and the users alice
// and bob.
func secureBroker(t *testing.T, ca *testutil.CA, configure func(*broker.Config)) *broker.Broker {
	t.Helper()
	certFile, keyFile := ca.Issue(t, "broker", pkix.Name{CommonName: "broker"})
	cfg := broker.Config{
		GroupInitialRebalanceDelay:      -1,
		OffsetsTopicPartitions:          1,
		TransactionStateTopicPartitions: 1,
		Security: broker.SecurityConfig{
			Listeners: "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
			TLS:       broker.TLSConfig{CertFile: certFile, KeyFile: keyFile, CAFile: ca.CertFile},
			SASL: broker.SASLConfig{
				Users: map[string]string{"alice": "alice-secret", "bob": "bob-secret"},
			},
		},
	}
	if configure != nil {
		configure(&cfg)
	}
	return testutil.StartBroker(t, cfg)
}

// roundTrip produces a record to a new topic and reads it back with cl.
func roundTrip(t *testing.T, cl *kgo.Client, topic string) {
	t.Helper()
	ctx := testContext(t)
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.AddConsumeTopics(topic)
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no record before the deadline")
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			if string(recs[0].Value) != "v" {
				t.Fatalf("read %q", recs[0].Value)
			}
			return
		}
	}
}

// pingErr returns the error of one request on a new client.
func pingErr(t *testing.T, addr string, opts ...kgo.Opt) error {
	t.Helper()
	cl := newClient(t, addr, append([]kgo.Opt{kgo.RequestRetries(0), kgo.RetryTimeout(time.Second)}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := cl.Ping(ctx)
	cl.Close()
	return err
}

// waitConns waits until the broker holds n connections.
func waitConns(t *testing.T, b *broker.Broker, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for b.NumConns() != n {
		if time.Now().After(deadline) {
			t.Fatalf("broker holds %d connections, want %d", b.NumConns(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Each listener serves its own protocol, and tells its clients its own
// address: a TLS client that bootstraps on the SSL listener is sent to
// the SSL listener for everything after.
func TestListenersTLSAndSASL(t *testing.T) {
	ca := testutil.NewCA(t, "test-ca")
	b := secureBroker(t, ca, nil)
	tlsCfg := ca.ClientTLS(t, "", "")
	cases := []struct {
		name     string
		listener string
		opts     []kgo.Opt
	}{
		{"plaintext", "PLAINTEXT", nil},
		{"tls", "SSL", []kgo.Opt{kgo.DialTLSConfig(tlsCfg)}},
		{"sasl plain", "SASL_PLAINTEXT", []kgo.Opt{kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism())}},
		{"sasl_ssl scram-sha-256", "SASL_SSL", []kgo.Opt{kgo.DialTLSConfig(tlsCfg), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism())}},
		{"sasl_ssl scram-sha-512", "SASL_SSL", []kgo.Opt{kgo.DialTLSConfig(tlsCfg), kgo.SASL(scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism())}},
		{"sasl_ssl plain", "SASL_SSL", []kgo.Opt{kgo.DialTLSConfig(tlsCfg), kgo.SASL(plain.Auth{User: "bob", Pass: "bob-secret"}.AsMechanism())}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := b.ListenerAddr(tc.listener)
			if addr == "" {
				t.Fatalf("no %s listener", tc.listener)
			}
			cl := newClient(t, addr, tc.opts...)
			roundTrip(t, cl, "t"+string(rune('a'+i)))
			// The client was told this listener's address for the broker.
			md, err := kmsg.NewPtrMetadataRequest().RequestWith(testContext(t), cl)
			if err != nil {
				t.Fatal(err)
			}
			if got := net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(int(md.Brokers[0].Port))); got != addr {
				t.Fatalf("metadata advertises %s to a client of %s at %s", got, tc.listener, addr)
			}
		})
	}
}

// Wrong credentials, a certificate from another CA, an expired one, no
// certificate where one is required, and plaintext on a TLS port are each
// refused with the error a Kafka client expects, and leave no connection
// behind.
func TestSecurityRefusals(t *testing.T) {
	ca := testutil.NewCA(t, "test-ca")
	other := testutil.NewCA(t, "other-ca")
	b := secureBroker(t, ca, func(c *broker.Config) { c.Security.TLS.ClientAuth = "required" })
	goodCert, goodKey := ca.Issue(t, "client", pkix.Name{CommonName: "app", Organization: []string{"Example"}})
	badCert, badKey := other.Issue(t, "client", pkix.Name{CommonName: "intruder"})
	oldCert, oldKey := ca.IssueExpired(t, "expired-client", pkix.Name{CommonName: "old"})
	// A client sends a certificate only if it chains to a CA the server
	// names, unless it insists: this one does.
	insist := ca.ClientTLS(t, "", "")
	intruder := other.ClientTLS(t, badCert, badKey).Certificates[0]
	insist.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &intruder, nil }

	t.Run("mtls", func(t *testing.T) {
		cl := newClient(t, b.ListenerAddr("SSL"), kgo.DialTLSConfig(ca.ClientTLS(t, goodCert, goodKey)))
		if err := cl.Ping(testContext(t)); err != nil {
			t.Fatal(err)
		}
		if got := b.Principals(); !slices.Contains(got, "User:CN=app,O=Example") {
			t.Fatalf("principals %v, want User:CN=app,O=Example among them", got)
		}
		cl.Close()
		waitConns(t, b, 0)
	})
	refusals := []struct {
		name     string
		listener string
		opts     []kgo.Opt
		want     error  // nil: any error
		says     string // what the error says
	}{
		{"wrong password plain", "SASL_PLAINTEXT", []kgo.Opt{kgo.SASL(plain.Auth{User: "alice", Pass: "nope"}.AsMechanism())}, kerr.SaslAuthenticationFailed, "invalid username or password"},
		{"unknown user plain", "SASL_PLAINTEXT", []kgo.Opt{kgo.SASL(plain.Auth{User: "mallory", Pass: "x"}.AsMechanism())}, kerr.SaslAuthenticationFailed, "invalid username or password"},
		{"wrong password scram-sha-256", "SASL_SSL", []kgo.Opt{kgo.DialTLSConfig(ca.ClientTLS(t, goodCert, goodKey)), kgo.SASL(scram.Auth{User: "alice", Pass: "nope"}.AsSha256Mechanism())}, kerr.SaslAuthenticationFailed, "SCRAM-SHA-256: invalid username or password"},
		{"wrong password scram-sha-512", "SASL_SSL", []kgo.Opt{kgo.DialTLSConfig(ca.ClientTLS(t, goodCert, goodKey)), kgo.SASL(scram.Auth{User: "bob", Pass: "nope"}.AsSha512Mechanism())}, kerr.SaslAuthenticationFailed, "SCRAM-SHA-512: invalid username or password"},
		{"no sasl on a sasl listener", "SASL_PLAINTEXT", nil, nil, "SASL"},
		{"certificate from another CA", "SSL", []kgo.Opt{kgo.DialTLSConfig(insist)}, nil, "tls: unknown certificate authority"},
		{"expired client certificate", "SSL", []kgo.Opt{kgo.DialTLSConfig(ca.ClientTLS(t, oldCert, oldKey))}, nil, "tls: expired certificate"},
		{"no client certificate", "SSL", []kgo.Opt{kgo.DialTLSConfig(ca.ClientTLS(t, "", ""))}, nil, "tls: certificate required"},
		{"plaintext client on a TLS port", "SSL", nil, nil, "TLS"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			err := pingErr(t, b.ListenerAddr(tc.listener), tc.opts...)
			if err == nil {
				t.Fatal("request succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want it to say %q", err, tc.says)
			}
			waitConns(t, b, 0)
		})
	}
}

// saslConn is a connection that speaks the Kafka protocol by hand, for
// what a well-behaved client never sends.
type saslConn struct {
	t    *testing.T
	nc   net.Conn
	corr int32
}

func dialSASL(t *testing.T, addr string) *saslConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &saslConn{t: t, nc: nc}
}

// send writes req as one request frame.
func (r *saslConn) send(req kmsg.Request) {
	r.t.Helper()
	r.corr++
	buf := []byte{0, 0, 0, 0}
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, uint32(r.corr))
	buf = binary.BigEndian.AppendUint16(buf, 1)
	buf = append(buf, 'x')
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if _, err := r.nc.Write(buf); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads the response to the last request into resp; it returns
// io.EOF (or another read error) when the broker closed the connection.
func (r *saslConn) recv(resp kmsg.Response) error {
	r.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.nc, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.nc, body); err != nil {
		return err
	}
	body = body[4:] // correlation id
	if resp.IsFlexible() && resp.Key() != 18 {
		body = body[1:] // no tags in our responses' headers
	}
	return resp.ReadFrom(body)
}

// closed reports whether the broker closed the connection.
func (r *saslConn) closed() bool {
	r.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b [1]byte
	_, err := r.nc.Read(b[:])
	return err != nil
}

func (r *saslConn) handshake(mechanism string) *kmsg.SASLHandshakeResponse {
	r.t.Helper()
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Version = 1
	req.Mechanism = mechanism
	r.send(req)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	if err := r.recv(resp); err != nil {
		r.t.Fatal(err)
	}
	return resp
}

func (r *saslConn) authenticate(msg string) *kmsg.SASLAuthenticateResponse {
	r.t.Helper()
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.Version = 2
	req.SASLAuthBytes = []byte(msg)
	r.send(req)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if err := r.recv(resp); err != nil {
		r.t.Fatal(err)
	}
	return resp
}

func (r *saslConn) metadata() error {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	r.send(req)
	return r.recv(req.ResponseKind())
}

// A SASL connection serves only ApiVersions and the SASL requests until
// it authenticates; a SaslAuthenticate without a handshake is
// ILLEGAL_SASL_STATE; a client that stops mid-exchange is disconnected at
// the authentication timeout.
func TestSASLStates(t *testing.T) {
	ca := testutil.NewCA(t, "test-ca")
	b := secureBroker(t, ca, func(c *broker.Config) { c.Security.SASL.AuthenticationTimeout = 300 * time.Millisecond })
	addr := b.ListenerAddr("SASL_PLAINTEXT")

	t.Run("request before authentication", func(t *testing.T) {
		r := dialSASL(t, addr)
		req := kmsg.NewPtrApiVersionsRequest()
		r.send(req)
		if err := r.recv(req.ResponseKind()); err != nil {
			t.Fatalf("ApiVersions before authentication: %v", err)
		}
		if err := r.metadata(); err == nil {
			t.Fatal("Metadata answered before authentication")
		}
		waitConns(t, b, 0)
	})
	t.Run("authenticate without handshake", func(t *testing.T) {
		r := dialSASL(t, addr)
		resp := r.authenticate("\x00alice\x00alice-secret")
		if err := kerr.ErrorForCode(resp.ErrorCode); !errors.Is(err, kerr.IllegalSaslState) {
			t.Fatalf("got %v, want ILLEGAL_SASL_STATE", err)
		}
		if !r.closed() {
			t.Fatal("connection open after ILLEGAL_SASL_STATE")
		}
	})
	t.Run("unsupported mechanism", func(t *testing.T) {
		r := dialSASL(t, addr)
		resp := r.handshake("GSSAPI")
		if err := kerr.ErrorForCode(resp.ErrorCode); !errors.Is(err, kerr.UnsupportedSaslMechanism) {
			t.Fatalf("got %v, want UNSUPPORTED_SASL_MECHANISM", err)
		}
		if !slices.Contains(resp.SupportedMechanisms, "SCRAM-SHA-512") {
			t.Fatalf("supported mechanisms %v", resp.SupportedMechanisms)
		}
	})
	t.Run("client stops mid-handshake", func(t *testing.T) {
		r := dialSASL(t, addr)
		if resp := r.handshake("SCRAM-SHA-256"); resp.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(resp.ErrorCode))
		}
		if resp := r.authenticate("n,,n=alice,r=abcdefgh"); resp.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(resp.ErrorCode))
		}
		// ... and sends nothing more.
		if !r.closed() {
			t.Fatal("connection open after the authentication timeout")
		}
		waitConns(t, b, 0)
	})
	t.Run("plain over raw requests", func(t *testing.T) {
		r := dialSASL(t, addr)
		if resp := r.handshake("PLAIN"); resp.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(resp.ErrorCode))
		}
		if resp := r.authenticate("\x00alice\x00alice-secret"); resp.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(resp.ErrorCode))
		}
		// Authenticated: past the authentication timeout, still served.
		time.Sleep(400 * time.Millisecond) // the timeout must not apply any more
		if err := r.metadata(); err != nil {
			t.Fatalf("Metadata after authentication: %v", err)
		}
	})
}

// KIP-368: the session lasts connections.max.reauth.ms by the broker's
// clock; a request after its end closes the connection, and a
// re-authentication before it extends the session.
func TestSASLReauthentication(t *testing.T) {
	ca := testutil.NewCA(t, "test-ca")
	clk := newClock()
	b := secureBroker(t, ca, func(c *broker.Config) {
		c.Now = clk.Now
		c.Security.SASL.ConnectionsMaxReauth = time.Hour
	})
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	login := func(r *saslConn, user string) *kmsg.SASLAuthenticateResponse {
		if resp := r.handshake("PLAIN"); resp.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(resp.ErrorCode))
		}
		return r.authenticate("\x00" + user + "\x00" + user + "-secret")
	}

	r := dialSASL(t, addr)
	resp := login(r, "alice")
	if resp.ErrorCode != 0 || resp.SessionLifetimeMillis != time.Hour.Milliseconds() {
		t.Fatalf("error %v, session lifetime %dms, want none and 1h", kerr.ErrorForCode(resp.ErrorCode), resp.SessionLifetimeMillis)
	}
	clk.Advance(50 * time.Minute)
	if err := r.metadata(); err != nil {
		t.Fatalf("Metadata within the session: %v", err)
	}
	if resp := login(r, "alice"); resp.ErrorCode != 0 {
		t.Fatalf("re-authentication: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	clk.Advance(50 * time.Minute) // past the first session, within the second
	if err := r.metadata(); err != nil {
		t.Fatalf("Metadata after re-authentication: %v", err)
	}
	// Re-authenticating as someone else is refused.
	if resp := login(r, "bob"); !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.SaslAuthenticationFailed) {
		t.Fatalf("re-authentication as another user: %v", kerr.ErrorForCode(resp.ErrorCode))
	}

	r2 := dialSASL(t, addr)
	login(r2, "alice")
	clk.Advance(time.Hour)
	if err := r2.metadata(); err == nil {
		t.Fatal("Metadata answered after the session ended")
	}
}

// A certificate replaced on disk is served to the next TLS connections
// without a restart.
func TestTLSCertificateReload(t *testing.T) {
	ca := testutil.NewCA(t, "test-ca")
	b := secureBroker(t, ca, nil)
	addr := b.ListenerAddr("SSL")
	served := func() string {
		c, err := tls.Dial("tcp", addr, ca.ClientTLS(t, "", ""))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "broker" {
		t.Fatalf("served %q", got)
	}
	// Issue writes the key, then the certificate, each by rename.
	ca.Issue(t, "broker", pkix.Name{CommonName: "broker-renewed"})
	if got := served(); got != "broker-renewed" {
		t.Fatalf("after the files changed, served %q", got)
	}
	// A half-written pair keeps the previous one.
	certFile := filepath.Join(filepath.Dir(ca.CertFile), "broker.pem")
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != "broker-renewed" {
		t.Fatalf("with a broken file, served %q", got)
	}
}

// Bad security settings are reported, all at once.
func TestSecurityConfigValidate(t *testing.T) {
	cfg := broker.Config{DataDir: t.TempDir(), Security: broker.SecurityConfig{
		Listeners: "SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
		TLS:       broker.TLSConfig{ClientAuth: "sometimes"},
		SASL:      broker.SASLConfig{Mechanisms: []string{"GSSAPI"}},
	}}
	cfg.EnsureDefaults()
	err := cfg.Validate()
	for _, want := range []string{"certificate and key", "ssl.client.auth", "GSSAPI"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to mention %q", err, want)
		}
	}
	for _, bad := range []string{"FOO://127.0.0.1:0", "PLAINTEXT:/x", "PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0"} {
		c := broker.Config{DataDir: t.TempDir(), Security: broker.SecurityConfig{Listeners: bad}}
		c.EnsureDefaults()
		if c.Validate() == nil {
			t.Errorf("listeners %q accepted", bad)
		}
	}
}

// A SASL user without a password stops the start rather than let anyone
// in under that name.
func TestSASLEmptyPasswordRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Security: broker.SecurityConfig{
		Listeners: "SASL_PLAINTEXT://127.0.0.1:0",
		SASL:      broker.SASLConfig{Users: map[string]string{"alice": ""}},
	}})
	if err == nil {
		b.Close()
		t.Fatal("started with an empty password")
	}
	if !strings.Contains(err.Error(), "empty password") {
		t.Fatalf("Start: %v", err)
	}
}

// A broker whose certificate has expired is refused by its clients, over
// SSL and SASL_SSL alike.
func TestExpiredBrokerCertificate(t *testing.T) {
	ca := testutil.NewCA(t, "test-ca")
	certFile, keyFile := ca.IssueExpired(t, "old-broker", pkix.Name{CommonName: "broker"})
	b := secureBroker(t, ca, func(c *broker.Config) {
		c.Security.TLS.CertFile, c.Security.TLS.KeyFile = certFile, keyFile
	})
	for _, l := range []string{"SSL", "SASL_SSL"} {
		opts := []kgo.Opt{kgo.DialTLSConfig(ca.ClientTLS(t, "", ""))}
		if l == "SASL_SSL" {
			opts = append(opts, kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()))
		}
		err := pingErr(t, b.ListenerAddr(l), opts...)
		if err == nil || !strings.Contains(err.Error(), "certificate has expired") {
			t.Fatalf("%s: got %v, want the client to refuse the expired certificate", l, err)
		}
	}
	waitConns(t, b, 0)
}
