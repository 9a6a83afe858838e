package clustertest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/freeport"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Inter-broker and controller security: three in-process brokers whose
// only Kafka listener is secured (SASL_SSL, or SSL with client
// certificates), the controller quorum on mutual TLS, ACLs on with
// allow.everyone.if.no.acl.found=false and the brokers' principal a
// super user. Replication, a leader's loss, the controller port refusing
// strangers, and a broker with wrong credentials kept out.

// syncBuffer is a log destination the test reads while brokers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// secureCluster is three brokers, every one a voter of the quorum.
type secureCluster struct {
	t       *testing.T
	ca      *testutil.CA
	quorum  string
	cfgs    []broker.Config
	brokers []*broker.Broker
	logs    *syncBuffer
}

// startSecureCluster starts three brokers with listener (e.g.
// "SASL_SSL") as their only Kafka listener and the controller listener
// over mutual TLS; configure completes each broker's configuration.
func startSecureCluster(t *testing.T, ca *testutil.CA, listener string, configure func(*broker.Config)) *secureCluster {
	t.Helper()
	addrs, err := freeport.Addrs(6)
	if err != nil {
		t.Fatal(err)
	}
	c := &secureCluster{t: t, ca: ca, logs: &syncBuffer{}}
	var q []string
	for i := range 3 {
		q = append(q, fmt.Sprintf("%d@%s", i+1, addrs[3+i]))
	}
	c.quorum = strings.Join(q, ",")
	for i := range 3 {
		cfg := c.nodeConfig(int32(i+1), listener+"://"+addrs[i], addrs[3+i])
		configure(&cfg)
		c.cfgs = append(c.cfgs, cfg)
	}
	c.brokers = make([]*broker.Broker, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			b, err := broker.Start(ctx, c.cfgs[i])
			c.brokers[i] = b
			errs <- err
		}()
	}
	t.Cleanup(func() {
		for _, b := range c.brokers {
			if b != nil {
				b.Close()
			}
		}
	})
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("start: %v\nlogs:\n%s", err, c.logs)
		}
	}
	return c
}

// nodeConfig is a node's configuration before the listener's security
// settings: the cluster, its timing, its certificate, the authorizer.
func (c *secureCluster) nodeConfig(id int32, listeners, controller string) broker.Config {
	certFile, keyFile := c.ca.Issue(c.t, fmt.Sprintf("broker-%d", id), pkix.Name{CommonName: "broker"})
	return broker.Config{
		NodeID: id, DataDir: c.t.TempDir(), ControllerListen: controller, ControllerQuorum: c.quorum,
		BrokerSessionTimeout: testSessionTimeout, BrokerHeartbeatInterval: testHeartbeat, ReplicaLagTimeMax: testReplicaLag,
		DisableControlledShutdown: true,
		OffsetsTopicPartitions:    1, TransactionStateTopicPartitions: 1, GroupInitialRebalanceDelay: -1,
		Security: broker.SecurityConfig{
			Listeners:     listeners,
			TLS:           broker.TLSConfig{CertFile: certFile, KeyFile: keyFile, CAFile: c.ca.CertFile},
			ControllerTLS: true,
			Authorizer: broker.AuthorizerConfig{
				Enabled:    true,
				SuperUsers: []string{"User:broker", "User:CN=broker", "User:admin", "User:CN=admin"},
			},
		},
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, c.logs), &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", id),
	}
}

// seeds lists the running brokers' addresses.
func (c *secureCluster) seeds() []string {
	var out []string
	for _, b := range c.brokers {
		if b != nil {
			out = append(out, b.Addr())
		}
	}
	return out
}

// client connects to the running brokers with opts (the security).
func (c *secureCluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// stop closes broker id, without a controlled shutdown: its partitions
// move when the controller fences it.
func (c *secureCluster) stop(id int32) {
	c.t.Helper()
	if err := c.brokers[id-1].Close(); err != nil {
		c.t.Errorf("close broker %d: %v", id, err)
	}
	c.brokers[id-1] = nil
}

// replicateAndFailOver creates a topic of three replicas with
// min.insync.replicas=3, so that every acks=all write waits for both
// followers, writes n records, stops the leader and reads every record
// back from the two left.
func (c *secureCluster) replicateAndFailOver(topic string, n int, opts ...kgo.Opt) {
	t := c.t
	t.Helper()
	cl := c.client(append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))...)
	createReplicated(t, cl, topic, "3")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		// Waited for here, not with ProduceSync: a write that cannot
		// replicate is retried by the client past any context, and must
		// fail the test, not hang it.
		done := make(chan error, 1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i)}, func(_ *kgo.Record, err error) { done <- err })
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("produce %d over the secured listener: %v", i, err)
			}
		case <-ctx.Done():
			t.Fatalf("produce %d over the secured listener: not acknowledged in time (do the followers replicate?)\nlogs:\n%s", i, c.logs)
		}
	}
	adm := kadm.NewClient(cl)
	leader, _, _ := waitPartitionState(t, adm, topic, "a full ISR", func(leader int32, isr []int32) bool { return leader > 0 && len(isr) == 3 })
	// Every follower has the records: the ISR held three replicas through
	// every acknowledged write. Now lose the leader.
	c.stop(leader)
	cl.Close()
	rest := c.client(opts...)
	waitPartitionState(t, kadm.NewClient(rest), topic, "a new leader", func(l int32, _ []int32) bool { return l > 0 && l != leader })
	got := consumeSecure(t, c.seeds(), topic, n, opts...)
	for i, v := range got {
		if want := fmt.Sprintf("v%d", i); v != want {
			t.Fatalf("record %d after the leader's loss: %q, want %q", i, v, want)
		}
	}
}

// consumeSecure reads the first n records of a one-partition topic.
func consumeSecure(t *testing.T, seeds []string, topic string, n int, opts ...kgo.Opt) []string {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out[:n]
}

// tlsClient is the client's TLS configuration: the cluster's CA, and a
// certificate of subject CN=cn when cn is not empty.
func tlsClient(t *testing.T, ca *testutil.CA, cn string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	if cn != "" {
		certFile, keyFile := ca.Issue(t, "client-"+cn, pkix.Name{CommonName: cn})
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

// saslSSLBrokers configures SASL_SSL with PLAIN and SCRAM, the users
// broker and admin, and the broker's inter-broker credentials.
func saslSSLBrokers(mechanism string) func(*broker.Config) {
	return func(cfg *broker.Config) {
		cfg.Security.SASL = broker.SASLConfig{Users: map[string]string{"broker": "broker-secret", "admin": "admin-secret"}}
		cfg.Security.InterBroker = broker.InterBrokerConfig{SASLMechanism: mechanism, Username: "broker", Password: "broker-secret"}
	}
}

// A cluster whose brokers speak only SASL_SSL to each other and to
// clients (inter-broker SCRAM-SHA-512) replicates: acks=all writes with
// min.insync.replicas=3 succeed, the records survive the leader's loss.
func TestInterBrokerSASLSSL(t *testing.T) {
	ca := testutil.NewCA(t, "cluster-ca")
	c := startSecureCluster(t, ca, "SASL_SSL", saslSSLBrokers(broker.MechanismScramSHA512))
	admin := []kgo.Opt{kgo.DialTLSConfig(tlsClient(t, ca, "")), kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism())}
	c.transactionAcrossBrokers("sasl-ssl-txn", admin...)
	c.replicateAndFailOver("sasl-ssl-replicated", 50, admin...)
}

// transactionAcrossBrokers commits a transaction that writes to three
// partitions led by three brokers, so the coordinator sends at least two
// of its markers (WriteTxnMarkers) to other brokers over the inter-broker
// listener, and reads every record back read_committed.
func (c *secureCluster) transactionAcrossBrokers(topic string, opts ...kgo.Opt) {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(c.client(opts...))
	resp, err := adm.CreateTopic(ctx, 3, 3, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	// The broker answering may not have applied the creation yet: poll.
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		leaders := map[int32]bool{}
		for _, p := range md.Topics[topic].Partitions {
			if p.Leader >= 0 {
				leaders[p.Leader] = true
			}
		}
		return len(md.Topics[topic].Partitions) == 3 && len(leaders) >= 2,
			fmt.Sprintf("the partitions of %s led by two brokers or more (leaders %v)", topic, leaders)
	})
	tx := c.client(append(opts, kgo.TransactionalID(topic+"-producer"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		if err := tx.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "p%d", p)}).FirstErr(); err != nil {
			t.Fatalf("transactional produce to partition %d: %v", p, err)
		}
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// read_committed reads a partition's records only once its commit
	// marker is written.
	rd := c.client(append(opts, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))...)
	got := map[string]bool{}
	for len(got) < 3 {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read committed %v of the transaction's 3 records", got)
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
}

// The same over SSL with client certificates: the brokers' principal is
// their certificate's subject, User:CN=broker.
func TestInterBrokerMutualTLS(t *testing.T) {
	ca := testutil.NewCA(t, "cluster-ca")
	c := startSecureCluster(t, ca, "SSL", func(cfg *broker.Config) { cfg.Security.TLS.ClientAuth = "required" })
	c.replicateAndFailOver("mtls-replicated", 50, kgo.DialTLSConfig(tlsClient(t, ca, "admin")))
}

// forwardedQuorumCall is a forwarded "quorum" call as the controller
// listener frames it: the connection kind 'f', then a length-prefixed
// JSON request.
func forwardedQuorumCall() []byte {
	body := []byte(`{"kind":"quorum"}`)
	return append(binary.BigEndian.AppendUint32([]byte{'f'}, uint32(len(body))), body...)
}

// askController sends a forwarded call on nc and reads what comes back
// within a few seconds: the answer, or the error that ended the read.
func askController(nc net.Conn) ([]byte, error) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(forwardedQuorumCall()); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(nc, body)
	return body, err
}

// The controller listener answers only peers with a certificate from the
// cluster's CA: a plaintext connection, a TLS one without a certificate
// and one with another CA's certificate are each refused before the
// controller reads a request, and the quorum keeps working. A
// certificate from the CA is answered.
func TestControllerListenerMutualTLS(t *testing.T) {
	ca := testutil.NewCA(t, "cluster-ca")
	c := startSecureCluster(t, ca, "SASL_SSL", saslSSLBrokers(broker.MechanismPlain))
	ctl := c.cfgs[0].ControllerListen

	nc, err := net.Dial("tcp", ctl)
	if err != nil {
		t.Fatal(err)
	}
	if body, err := askController(nc); err == nil {
		t.Fatalf("a plaintext connection to the controller listener was answered: %s", body)
	}

	other := testutil.NewCA(t, "other-ca")
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no certificate", tlsClient(t, ca, "")},
		{"another CA's certificate", func() *tls.Config {
			cfg := tlsClient(t, other, "broker")
			cfg.RootCAs = ca.Pool() // it trusts the server; the server must not trust it
			// Send the certificate although the server asks for its own
			// CA's: the server must verify it and refuse it.
			cert := cfg.Certificates[0]
			cfg.Certificates = nil
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
			return cfg
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := tls.Dial("tcp", ctl, tc.cfg)
			if err != nil {
				return // refused in the handshake (TLS 1.2)
			}
			body, err := askController(nc)
			if err == nil {
				t.Fatalf("answered: %s", body)
			}
			// TLS 1.3: the client's handshake ends first; the server's
			// refusal arrives as an alert on the first read.
			var op *net.OpError
			if !errors.As(err, &op) || op.Op != "remote error" {
				t.Fatalf("refused with %v, want a TLS alert", err)
			}
		})
	}
	if !strings.Contains(c.logs.String(), "failed the TLS handshake") {
		t.Errorf("no refusal logged; logs:\n%s", c.logs)
	}

	// A node's own certificate is answered, so the refusals above are the
	// certificates' doing, not the framing's.
	certFile, keyFile := ca.Issue(t, "peer", pkix.Name{CommonName: "broker"})
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	good, err := tls.Dial("tcp", ctl, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	if body, err := askController(good); err != nil || !bytes.Contains(body, []byte("quorum")) {
		t.Fatalf("a peer's certificate: answer %s, err %v", body, err)
	}

	// The quorum still works: a topic is created and written.
	opts := []kgo.Opt{kgo.DialTLSConfig(tlsClient(t, ca, "")), kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism())}
	cl := c.client(opts...)
	createReplicated(t, cl, "after-refusals", "2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "after-refusals", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce after the refusals: %v", err)
	}
}

// A fourth broker whose inter-broker password is wrong does not join:
// it starts (its controller certificate is good, so it follows the
// metadata), tries its credentials on a running broker, is refused, and
// fails to start with the refusal in its error and in its log. The
// cluster does not list it.
func TestInterBrokerWrongCredentials(t *testing.T) {
	ca := testutil.NewCA(t, "cluster-ca")
	c := startSecureCluster(t, ca, "SASL_SSL", saslSSLBrokers(broker.MechanismPlain))
	addrs, err := freeport.Addrs(2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.nodeConfig(4, "SASL_SSL://"+addrs[0], addrs[1])
	saslSSLBrokers(broker.MechanismPlain)(&cfg)
	cfg.Security.InterBroker.Password = "not-the-password"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, cfg)
	if err == nil {
		b.Close()
		t.Fatal("a broker with wrong inter-broker credentials started")
	}
	if !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") || !strings.Contains(err.Error(), "inter-broker") {
		t.Fatalf("start failed with %v, want the inter-broker SASL refusal", err)
	}
	if !strings.Contains(c.logs.String(), "refuses this broker's inter-broker credentials") {
		t.Errorf("no refusal logged; logs:\n%s", c.logs)
	}
	opts := []kgo.Opt{kgo.DialTLSConfig(tlsClient(t, ca, "")), kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism())}
	md, err := kadm.NewClient(c.client(opts...)).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 {
		t.Fatalf("the cluster lists brokers %v, want 1-3", md.Brokers.NodeIDs())
	}
}

// With two listeners, INTERNAL (SASL_SSL, named the inter-broker
// listener though it is not the first) and EXTERNAL (SSL), the brokers
// replicate over INTERNAL, and a client that came in on EXTERNAL is told
// every broker's EXTERNAL address, as each registered it.
func TestInterBrokerListenerNamed(t *testing.T) {
	ca := testutil.NewCA(t, "cluster-ca")
	addrs, err := freeport.Addrs(3)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	c := startSecureCluster(t, ca, "EXTERNAL", func(cfg *broker.Config) {
		// The helper's listener is EXTERNAL on a fixed port; add INTERNAL.
		cfg.Security.Listeners += ",INTERNAL://" + addrs[next]
		next++
		cfg.Security.ProtocolMap = "EXTERNAL:SSL,INTERNAL:SASL_SSL"
		saslSSLBrokers(broker.MechanismScramSHA256)(cfg)
		cfg.Security.InterBroker.ListenerName = "internal"
	})
	for i, b := range c.brokers {
		if got, want := b.Addr(), b.ListenerAddr("INTERNAL"); got != want {
			t.Fatalf("broker %d registers %s, want its INTERNAL listener %s", i+1, got, want)
		}
	}
	// An admin on INTERNAL creates a replicated topic: the followers
	// fetch over INTERNAL with SCRAM-SHA-256.
	admin := []kgo.Opt{kgo.DialTLSConfig(tlsClient(t, ca, "")), kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism())}
	createReplicated(t, c.client(admin...), "named-listener", "3")

	ext, err := kgo.NewClient(kgo.SeedBrokers(c.brokers[0].ListenerAddr("EXTERNAL")), kgo.DialTLSConfig(tlsClient(t, ca, "")))
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := kadm.NewClient(ext).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 {
		t.Fatalf("brokers %v, want 3", md.Brokers)
	}
	for _, bm := range md.Brokers {
		want := c.brokers[bm.NodeID-1].ListenerAddr("EXTERNAL")
		if got := net.JoinHostPort(bm.Host, fmt.Sprint(bm.Port)); got != want {
			t.Errorf("broker %d told to an EXTERNAL client as %s, want %s", bm.NodeID, got, want)
		}
	}
}

// Validate reports every problem of the inter-broker and controller
// settings at once.
func TestInterBrokerConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		sec  broker.SecurityConfig
		want []string
	}{
		{"unknown listener name", broker.SecurityConfig{
			Listeners:   "PLAINTEXT://127.0.0.1:0",
			InterBroker: broker.InterBrokerConfig{ListenerName: "REPLICATION"},
		}, []string{"inter.broker.listener.name REPLICATION is not among the listeners (PLAINTEXT)"}},
		{"SASL_SSL in a cluster without credentials or CA", broker.SecurityConfig{
			Listeners:   "SASL_SSL://127.0.0.1:0",
			TLS:         broker.TLSConfig{CertFile: "c.pem", KeyFile: "k.pem"},
			SASL:        broker.SASLConfig{Mechanisms: []string{broker.MechanismPlain}},
			InterBroker: broker.InterBrokerConfig{SASLMechanism: broker.MechanismScramSHA512},
		}, []string{"needs a CA file", "SCRAM-SHA-512 is not among sasl.enabled.mechanisms", "needs the broker's SASL username and password"}},
		{"OAUTHBEARER between brokers", broker.SecurityConfig{
			Listeners:   "SASL_PLAINTEXT://127.0.0.1:0",
			InterBroker: broker.InterBrokerConfig{SASLMechanism: "OAUTHBEARER", Username: "b", Password: "p"},
		}, []string{`sasl.mechanism.inter.broker.protocol "OAUTHBEARER"`}},
		{"controller TLS without files", broker.SecurityConfig{ControllerTLS: true},
			[]string{"controller TLS needs the ssl certificate, key and CA files"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := broker.Config{NodeID: 1, ControllerQuorum: "1@127.0.0.1:9093", DataDir: t.TempDir(), Security: tc.sec}
			cfg.EnsureDefaults()
			err := cfg.Validate()
			for _, want := range tc.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Validate: %v; want it to mention %q", err, want)
				}
			}
		})
	}
	ok := broker.Config{NodeID: 1, DataDir: t.TempDir(), ControllerQuorum: "1@127.0.0.1:9093", Security: broker.SecurityConfig{
		Listeners:     "SASL_SSL://127.0.0.1:0",
		TLS:           broker.TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", CAFile: "ca.pem"},
		InterBroker:   broker.InterBrokerConfig{SASLMechanism: "scram-sha-256", Username: "broker", Password: "pw"},
		ControllerTLS: true,
	}}
	ok.EnsureDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("a SASL_SSL cluster with controller TLS: %v", err)
	}
	alone := broker.Config{DataDir: t.TempDir(), Security: broker.SecurityConfig{ControllerTLS: true}}
	alone.EnsureDefaults()
	if err := alone.Validate(); err == nil || !strings.Contains(err.Error(), "controller TLS needs a controller quorum") {
		t.Errorf("controller TLS without a quorum: %v", err)
	}
	// A single broker has no inter-broker traffic: no credentials needed.
	single := broker.Config{DataDir: t.TempDir(), Security: broker.SecurityConfig{Listeners: "SASL_PLAINTEXT://127.0.0.1:0"}}
	single.EnsureDefaults()
	if err := single.Validate(); err != nil {
		t.Errorf("a single SASL_PLAINTEXT broker: %v", err)
	}
}

// The schema registry inside a broker whose only listener is SASL_SSL,
// with ACLs on and nothing allowed by default, reaches _schemas as the
// broker itself (its inter-broker credentials, a super user).
func TestRegistryOnSecuredInterBrokerListener(t *testing.T) {
	ca := testutil.NewCA(t, "cluster-ca")
	certFile, keyFile := ca.Issue(t, "broker", pkix.Name{CommonName: "broker"})
	b := testutil.StartBroker(t, broker.Config{
		RegistryListen: "127.0.0.1:0", OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1, GroupInitialRebalanceDelay: -1,
		Security: broker.SecurityConfig{
			Listeners:   "SASL_SSL://127.0.0.1:0",
			TLS:         broker.TLSConfig{CertFile: certFile, KeyFile: keyFile, CAFile: ca.CertFile},
			SASL:        broker.SASLConfig{Users: map[string]string{"broker": "broker-secret"}},
			InterBroker: broker.InterBrokerConfig{SASLMechanism: broker.MechanismScramSHA512, Username: "broker", Password: "broker-secret"},
			Authorizer:  broker.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:broker"}},
		},
	})
	cl, err := sr.NewClient(sr.URLs("http://" + b.RegistryAddr()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	s, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: `"string"`})
	if err != nil {
		t.Fatalf("register a schema: %v", err)
	}
	got, err := cl.SchemaByID(ctx, s.ID)
	if err != nil || got.Schema != `"string"` {
		t.Fatalf("schema %d: %+v, %v", s.ID, got, err)
	}
}

// With ACLs on, the brokers' principal needs CLUSTER_ACTION, as in
// Kafka: brokers that are not super users and have no ACL cannot
// replicate, and say so in their logs; granting CLUSTER_ACTION on the
// cluster to their principal lets the followers catch up.
func TestInterBrokerNeedsClusterAction(t *testing.T) {
	ca := testutil.NewCA(t, "cluster-ca")
	c := startSecureCluster(t, ca, "SASL_SSL", func(cfg *broker.Config) {
		saslSSLBrokers(broker.MechanismPlain)(cfg)
		cfg.Security.Authorizer.SuperUsers = []string{"User:admin"}
	})
	admin := []kgo.Opt{kgo.DialTLSConfig(tlsClient(t, ca, "")), kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism())}
	cl := c.client(admin...)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "needs-cluster-action"
	resp, err := adm.CreateTopic(ctx, 1, 3, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		return strings.Contains(c.logs.String(), "refuses this broker's replica fetches"), "a follower to log the refusal"
	})
	waitPartitionState(t, adm, topic, "the followers out of the ISR", func(leader int32, isr []int32) bool { return leader > 0 && len(isr) == 1 })

	acl := kadm.NewACLs().Allow("User:broker").AllowHosts().Clusters().Operations(kadm.OpClusterAction).ResourcePatternType(kadm.ACLPatternLiteral)
	results, err := adm.CreateACLs(ctx, acl)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("create ACL: %v", r.Err)
		}
	}
	waitPartitionState(t, adm, topic, "the followers back in the ISR", func(leader int32, isr []int32) bool { return leader > 0 && len(isr) == 3 })
}
