package runnel_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestAppExactlyOnceWithACLs: word count, exactly-once, over SASL as a
// user granted only what the README says an application needs (READ on
// its input, WRITE on its output, everything on the topics and
// transactional ids prefixed by its application id, READ on its group)
// gives the reference counts under the authorizer. The test's own
// clients use the PLAINTEXT listener, whose User:ANONYMOUS is a super
// user here.
func TestAppExactlyOnceWithACLs(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{
		GroupInitialRebalanceDelay: 10 * time.Millisecond,
		OffsetsTopicPartitions:     3, TransactionStateTopicPartitions: 3,
		Security: broker.SecurityConfig{
			Listeners:  "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
			SASL:       broker.SASLConfig{Users: map[string]string{"wc": "wc-secret"}},
			Authorizer: broker.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:ANONYMOUS"}},
		},
	})
	plain, secure := b.ListenerAddr("PLAINTEXT"), b.ListenerAddr("SASL_PLAINTEXT")
	createTopics(t, plain, 3, "lines", "word-counts")
	grantWordCountACLs(t, plain)

	app := startWordCountWith(t, secure, t.TempDir(), runnel.ProcessingGuarantee(runnel.ExactlyOnce),
		runnel.SASL(scram.Auth{User: "wc", Pass: "wc-secret"}.AsSha512Mechanism()))
	lines := wordCountLines(16, 300)
	produceLines(t, newTestClient(t, plain), 0, lines)
	waitCounts(t, plain, countWords(lines))
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
}

// grantWordCountACLs grants User:wc, over the broker's listener at plain,
// what the README says the word count application ("wc") needs for
// exactly-once: READ on its input, WRITE on its output, everything on the
// topics and transactional ids prefixed "wc-", READ on its group.
func grantWordCountACLs(t *testing.T, plain string) {
	t.Helper()
	adm := kadm.NewClient(newTestClient(t, plain))
	for _, acl := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:wc").Topics("lines").Operations(kadm.OpRead),
		kadm.NewACLs().Allow("User:wc").Topics("word-counts").Operations(kadm.OpWrite),
		kadm.NewACLs().Allow("User:wc").Topics("wc-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpAll),
		kadm.NewACLs().Allow("User:wc").Groups("wc").Operations(kadm.OpRead),
		kadm.NewACLs().Allow("User:wc").TransactionalIDs("wc-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := adm.CreateACLs(ctx, acl)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create acl: %v", r.Err)
			}
		}
	}
}
