package runnel_test

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestAppExactlyOnceOverSASLSSL: word count, exactly-once, against a broker
// whose app listener is SASL_SSL with SCRAM-SHA-512 and client
// certificates required, and the authorizer on, as a user granted only
// what an application needs (grantWordCountACLs), gives the reference
// counts; the same app with a wrong password does not start. The test's
// own clients use the broker's PLAINTEXT listener, whose User:ANONYMOUS
// is a super user here.
func TestAppExactlyOnceOverSASLSSL(t *testing.T) {
	ca := testutil.NewCA(t, "test-ca")
	certFile, keyFile := ca.Issue(t, "broker", pkix.Name{CommonName: "broker"})
	appCert, appKey := ca.Issue(t, "app", pkix.Name{CommonName: "wc"})
	b := testutil.StartBroker(t, broker.Config{
		GroupInitialRebalanceDelay: 10 * time.Millisecond,
		OffsetsTopicPartitions:     3, TransactionStateTopicPartitions: 3,
		Security: broker.SecurityConfig{
			Listeners:  "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
			TLS:        broker.TLSConfig{CertFile: certFile, KeyFile: keyFile, CAFile: ca.CertFile, ClientAuth: "required"},
			SASL:       broker.SASLConfig{Users: map[string]string{"wc": "wc-secret"}, Mechanisms: []string{broker.MechanismScramSHA512}},
			Authorizer: broker.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:ANONYMOUS"}},
		},
	})
	plain, secure := b.ListenerAddr("PLAINTEXT"), b.ListenerAddr("SASL_SSL")
	createTopics(t, plain, 3, "lines", "word-counts")
	grantWordCountACLs(t, plain)

	t.Run("wrong password", func(t *testing.T) {
		app, err := runnel.NewApp(buildTopology(t, wordCount), runnel.ApplicationID("wc-bad"), runnel.Brokers(secure),
			runnel.StateDir(t.TempDir()), runnel.TLS(ca.ClientTLS(t, appCert, appKey)),
			runnel.SASL(scram.Auth{User: "wc", Pass: "wrong"}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = app.Start(ctx)
		app.Close()
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("Start: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
	})

	app := startWordCountWith(t, secure, t.TempDir(), runnel.ProcessingGuarantee(runnel.ExactlyOnce),
		runnel.TLS(ca.ClientTLS(t, appCert, appKey)),
		runnel.SASL(scram.Auth{User: "wc", Pass: "wc-secret"}.AsSha512Mechanism()))
	lines := wordCountLines(16, 300)
	produceLines(t, newTestClient(t, plain), 0, lines)
	// WaitIdle reads the cluster with a client of its own: over the
	// application's TLS and SASL too.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
	waitCounts(t, plain, countWords(lines))
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
}

// TLS and SASL are refused with the embedded broker, which is plaintext.
func TestAppSecurityNeedsBrokers(t *testing.T) {
	_, err := runnel.NewApp(buildTopology(t, wordCount), runnel.ApplicationID("wc"),
		runnel.SASL(scram.Auth{User: "u", Pass: "p"}.AsSha256Mechanism()))
	if err == nil {
		t.Fatal("NewApp accepted SASL with the embedded broker")
	}
}
