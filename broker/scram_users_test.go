package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/freeport"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// scramPing authenticates as user with password by SCRAM-SHA-256 (or
// -512) at addr and returns the error of one request.
func scramPing(t *testing.T, addr, user, password string, sha512 bool) error {
	t.Helper()
	mech := scram.Auth{User: user, Pass: password}.AsSha256Mechanism()
	if sha512 {
		mech = scram.Auth{User: user, Pass: password}.AsSha512Mechanism()
	}
	return pingErr(t, addr, kgo.SASL(mech))
}

func alterSCRAM(t *testing.T, adm *kadm.Client, del []kadm.DeleteSCRAM, upsert []kadm.UpsertSCRAM) {
	t.Helper()
	res, err := adm.AlterUserSCRAMs(testContext(t), del, upsert)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("alter scram users: %v", err)
	}
}

// A SCRAM user created with AlterUserScramCredentials authenticates;
// after a password change only the new password does; once deleted it
// cannot; and what the metadata holds survives a restart.
func TestScramUsersLifecycle(t *testing.T) {
	dir := t.TempDir()
	cfg := broker.Config{
		DataDir:                         dir,
		GroupInitialRebalanceDelay:      -1,
		OffsetsTopicPartitions:          1,
		TransactionStateTopicPartitions: 1,
		Security: broker.SecurityConfig{
			Listeners: "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
			// No configured users: every SCRAM user is in the metadata.
			SASL: broker.SASLConfig{Mechanisms: []string{broker.MechanismScramSHA256, broker.MechanismScramSHA512}},
		},
	}
	b, err := broker.Start(testContext(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(newClient(t, b.ListenerAddr("PLAINTEXT")))
	sasl := b.ListenerAddr("SASL_PLAINTEXT")
	ctx := testContext(t)

	if err := scramPing(t, sasl, "carol", "first", false); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("unknown user: %v", err)
	}
	alterSCRAM(t, adm, nil, []kadm.UpsertSCRAM{
		{User: "carol", Mechanism: kadm.ScramSha256, Password: "first"},
		{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "first-512"},
		{User: "dave", Mechanism: kadm.ScramSha256, Password: "dave-pw"},
	})
	if err := scramPing(t, sasl, "carol", "first", false); err != nil {
		t.Fatalf("new user, SHA-256: %v", err)
	}
	if err := scramPing(t, sasl, "carol", "first-512", true); err != nil {
		t.Fatalf("new user, SHA-512: %v", err)
	}
	described, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := described["carol"]; len(described) != 2 || len(c.CredInfos) != 2 || c.CredInfos[1].Mechanism != kadm.ScramSha512 || c.CredInfos[1].Iterations != 8192 {
		t.Fatalf("described: %+v", described)
	}

	// A new password: the old one no longer authenticates.
	alterSCRAM(t, adm, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha256, Password: "second"}})
	if err := scramPing(t, sasl, "carol", "first", false); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("old password after the change: %v", err)
	}
	if err := scramPing(t, sasl, "carol", "second", false); err != nil {
		t.Fatalf("new password: %v", err)
	}

	// Deleted: refused, and described as not found.
	alterSCRAM(t, adm, []kadm.DeleteSCRAM{{User: "dave", Mechanism: kadm.ScramSha256}}, nil)
	if err := scramPing(t, sasl, "dave", "dave-pw", false); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("deleted user: %v", err)
	}
	described, err = adm.DescribeUserSCRAMs(ctx, "dave")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(described["dave"].Err, kerr.ResourceNotFound) {
		t.Fatalf("describe a deleted user: %+v", described["dave"])
	}

	// Restart on the same data dir: carol's credentials are still there.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = testutil.StartBroker(t, cfg)
	sasl = b.ListenerAddr("SASL_PLAINTEXT")
	if err := scramPing(t, sasl, "carol", "second", false); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if err := scramPing(t, sasl, "carol", "first-512", true); err != nil {
		t.Fatalf("after a restart, SHA-512: %v", err)
	}
	if err := scramPing(t, sasl, "dave", "dave-pw", false); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("deleted user after a restart: %v", err)
	}
}

// AlterUserScramCredentials answers each user with Kafka's error, and a
// user with an error keeps its credentials as they were while the others
// change.
func TestScramUsersErrors(t *testing.T) {
	b := secureBroker(t, testutil.NewCA(t, "test-ca"), nil)
	cl := newClient(t, b.ListenerAddr("PLAINTEXT"))
	ctx := testContext(t)
	up := func(name string, mech int8, iterations int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = name, mech, iterations, []byte("salt"), make([]byte, 32)
		return u
	}
	del := func(name string, mech int8) kmsg.AlterUserSCRAMCredentialsRequestDeletion {
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = name, mech
		return d
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
		up("ok", 1, 4096),
		up("few", 1, 4095),
		up("many", 2, 16385),
		up("mech", 3, 4096),
		up("", 1, 4096),
		up("twice", 1, 4096), up("twice", 1, 4096),
		up("mixed", 1, 4096), // refused with its deletion below
	}
	req.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{del("nobody", 1), del("mixed", 2)}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]error{
		"ok": nil, "few": kerr.UnacceptableCredential, "many": kerr.UnacceptableCredential, "mech": kerr.UnsupportedSaslMechanism,
		"": kerr.UnacceptableCredential, "twice": kerr.DuplicateResource, "nobody": kerr.ResourceNotFound, "mixed": kerr.ResourceNotFound,
	}
	if len(resp.Results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(resp.Results), len(want), resp.Results)
	}
	for _, r := range resp.Results {
		if got := kerr.ErrorForCode(r.ErrorCode); got != want[r.User] {
			t.Errorf("user %q: %v, want %v", r.User, got, want[r.User])
		}
	}
	dreq := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(dresp.Results) != 1 || dresp.Results[0].User != "ok" {
		t.Fatalf("users after the alteration: %+v", dresp.Results)
	}
	for _, name := range []string{"ok", "ok"} {
		u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		u.Name = name
		dreq.Users = append(dreq.Users, u)
	}
	if dresp, err = dreq.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if len(dresp.Results) != 1 || dresp.Results[0].ErrorCode != kerr.DuplicateResource.Code {
		t.Fatalf("a user described twice: %+v", dresp.Results)
	}
}

// On a three-broker cluster a SCRAM user created through one broker
// authenticates at every other: the credential is in the replicated
// metadata. In-process brokers, the first the whole controller quorum.
func TestScramUsersCluster(t *testing.T) {
	addrs, err := freeport.Addrs(6)
	if err != nil {
		t.Fatal(err)
	}
	brokers := make([]*broker.Broker, 3)
	startCtx, cancel := context.WithTimeout(testContext(t), 90*time.Second)
	defer cancel()
	errs := make(chan error, 3)
	for i := range 3 {
		id := int32(i + 1)
		cfg := broker.Config{
			NodeID: id, DataDir: t.TempDir(), ControllerListen: addrs[3+i], ControllerQuorum: "1@" + addrs[3],
			BrokerSessionTimeout: 3 * time.Second, BrokerHeartbeatInterval: 300 * time.Millisecond,
			OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1, GroupInitialRebalanceDelay: -1,
			Security: broker.SecurityConfig{
				Listeners: fmt.Sprintf("PLAINTEXT://%s,SASL_PLAINTEXT://127.0.0.1:0", addrs[i]),
				SASL:      broker.SASLConfig{Mechanisms: []string{broker.MechanismScramSHA512}},
			},
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", id),
		}
		go func() {
			b, err := broker.Start(startCtx, cfg)
			brokers[i] = b
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, b := range brokers {
			if b != nil {
				b.Close()
			}
		}
	}()
	// Created through broker 2, which does not lead the quorum: it
	// forwards the change to the controller.
	adm := kadm.NewClient(newClient(t, brokers[1].ListenerAddr("PLAINTEXT")))
	alterSCRAM(t, adm, nil, []kadm.UpsertSCRAM{{User: "erin", Mechanism: kadm.ScramSha512, Password: "erin-pw"}})
	for i, b := range brokers {
		// Every broker applies the change; poll until it has.
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := scramPing(t, b.ListenerAddr("SASL_PLAINTEXT"), "erin", "erin-pw", true)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker %d: %v", i+1, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := scramPing(t, b.ListenerAddr("SASL_PLAINTEXT"), "erin", "wrong", true); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("broker %d, wrong password: %v", i+1, err)
		}
	}
}
