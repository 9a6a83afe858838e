package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/broker"
)

// startRegistryCluster starts three in-process brokers in one cluster,
// each serving the schema registry, and returns a registry client of
// each, the brokers (a test may close one and set it to nil) and their
// Kafka addresses.
func startRegistryCluster(t *testing.T) ([]*sr.Client, []*broker.Broker, []string) {
	t.Helper()
	ports := reservePorts(t, 6)
	var q []string
	for i := range 3 {
		q = append(q, fmt.Sprintf("%d@%s", i+1, ports[2*i+1]))
	}
	brokers := make([]*broker.Broker, 3)
	errs := make(chan error, 3)
	for i := range 3 {
		cfg := broker.Config{
			NodeID: int32(i + 1), DataDir: t.TempDir(), Listen: ports[2*i], RegistryListen: "127.0.0.1:0",
			ControllerQuorum: strings.Join(q, ","), BrokerSessionTimeout: testSessionTimeout,
			BrokerHeartbeatInterval: testHeartbeat, ReplicaLagTimeMax: testReplicaLag,
			OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1,
		}
		go func() {
			var err error
			brokers[i], err = broker.Start(context.Background(), cfg)
			errs <- err
		}()
	}
	t.Cleanup(func() {
		for _, b := range brokers {
			if b != nil {
				b.Close()
			}
		}
	})
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var cls []*sr.Client
	for _, b := range brokers {
		cl, err := sr.NewClient(sr.URLs("http://" + b.RegistryAddr()))
		if err != nil {
			t.Fatal(err)
		}
		cls = append(cls, cl)
	}
	return cls, brokers, []string{ports[0], ports[2], ports[4]}
}

// TestRegistryClusterConcurrentWrites registers schemas at the same time
// through the registries of three brokers of one cluster: the writes
// that reach a broker not leading _schemas are forwarded to the one that
// does, so every registration succeeds, no id is handed out twice, the
// same schema under several subjects keeps one id, and every broker
// serves every schema under the same id and version.
func TestRegistryClusterConcurrentWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	cls, _, _ := startRegistryCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const perBroker = 8
	schemaText := func(n int) string {
		return fmt.Sprintf(`{"type":"record","name":"R%d","fields":[{"name":"f","type":"long"}]}`, n)
	}
	type reg struct {
		subject string
		schema  int // which schemaText
		id      int
		version int
	}
	var (
		mu   sync.Mutex
		regs []reg
		wg   sync.WaitGroup
		errs = make(chan error, 3*perBroker*2)
	)
	for b, cl := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perBroker {
				// Each broker registers its own schemas, and one schema
				// shared by all three under a subject of each: the same
				// schema must get one id whichever broker it came through.
				for _, r := range []reg{
					{subject: fmt.Sprintf("b%d-s%d-value", b, i), schema: b*perBroker + i},
					{subject: fmt.Sprintf("shared%d-by%d-value", i, b), schema: 1000 + i},
				} {
					ss, err := cl.CreateSchema(ctx, r.subject, sr.Schema{Schema: schemaText(r.schema)})
					if err != nil {
						errs <- fmt.Errorf("broker %d: register %s: %w", b+1, r.subject, err)
						return
					}
					r.id, r.version = ss.ID, ss.Version
					mu.Lock()
					regs = append(regs, r)
					mu.Unlock()
					// Read our own write from the broker it went through.
					if _, err := cl.SchemaByID(ctx, ss.ID); err != nil {
						errs <- fmt.Errorf("broker %d: schema %d right after registering it: %w", b+1, ss.ID, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	idOf := map[int]int{}     // schema -> id
	schemaOf := map[int]int{} // id -> schema
	for _, r := range regs {
		if id, ok := idOf[r.schema]; ok && id != r.id {
			t.Errorf("schema %d got ids %d and %d", r.schema, id, r.id)
		}
		if s, ok := schemaOf[r.id]; ok && s != r.schema {
			t.Errorf("id %d given to schemas %d and %d", r.id, s, r.schema)
		}
		idOf[r.schema], schemaOf[r.id] = r.id, r.schema
		if r.version != 1 {
			t.Errorf("%s: version %d, want 1", r.subject, r.version)
		}
	}
	if want := 3*perBroker + perBroker; len(idOf) != want {
		t.Errorf("%d distinct schemas got ids, want %d", len(idOf), want)
	}

	// Every broker serves every registration, under the same id.
	for b, cl := range cls {
		deadline := time.Now().Add(30 * time.Second)
		for _, r := range regs {
			for {
				ss, err := cl.SchemaByVersion(ctx, r.subject, 1)
				if err == nil {
					if ss.ID != r.id || ss.Schema.Schema != schemaText(r.schema) {
						t.Errorf("broker %d: %s version 1 is id %d %s, want id %d", b+1, r.subject, ss.ID, ss.Schema.Schema, r.id)
					}
					break
				}
				var re *sr.ResponseError
				if !errors.As(err, &re) || time.Now().After(deadline) {
					t.Fatalf("broker %d: %s: %v", b+1, r.subject, err)
				}
				time.Sleep(20 * time.Millisecond) // poll until the broker's reader has it
			}
		}
	}

	// Ids are stable: registering again through another broker answers
	// the id already given.
	for _, r := range regs[:6] {
		for b, cl := range cls {
			ss, err := cl.CreateSchema(ctx, r.subject, sr.Schema{Schema: schemaText(r.schema)})
			if err != nil || ss.ID != r.id || ss.Version != 1 {
				t.Errorf("broker %d: re-register %s: id %d version %d, %v; want id %d version 1", b+1, r.subject, ss.ID, ss.Version, err, r.id)
			}
		}
	}
}

// TestRegistryClusterLeaderMoves stops the broker leading _schemas: the
// registries of the other two forward writes to the new leader's, new
// schemas get new ids, and what was registered before is still served.
func TestRegistryClusterLeaderMoves(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	cls, brokers, seeds := startRegistryCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	schemaText := func(n int) string {
		return fmt.Sprintf(`{"type":"record","name":"M%d","fields":[{"name":"f","type":"long"}]}`, n)
	}
	before, err := cls[0].CreateSchema(ctx, "before-value", sr.Schema{Schema: schemaText(0)})
	if err != nil {
		t.Fatal(err)
	}
	kcl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer kcl.Close()
	adm := kadm.NewClient(kcl)
	old, _, _ := waitPartitionState(t, adm, "_schemas", "a leader and 3 in-sync replicas", func(l int32, isr []int32) bool {
		return l > 0 && len(isr) == 3
	})
	brokers[old-1].Close()
	brokers[old-1] = nil
	waitPartitionState(t, adm, "_schemas", "a new leader", func(l int32, _ []int32) bool { return l > 0 && l != old })

	ids := map[int]string{before.ID: "before-value"}
	var live []*sr.Client
	for i, cl := range cls {
		if int32(i+1) != old {
			live = append(live, cl)
		}
	}
	for i, cl := range live {
		subject := fmt.Sprintf("after%d-value", i)
		// The registries learn of the new leader from metadata; until
		// then a write may fail (50003/50004) and is retried, as a
		// client of Confluent's registry would.
		deadline := time.Now().Add(30 * time.Second)
		var ss sr.SubjectSchema
		for {
			if ss, err = cl.CreateSchema(ctx, subject, sr.Schema{Schema: schemaText(i + 1)}); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("register %s after the leader stopped: %v", subject, err)
			}
			time.Sleep(50 * time.Millisecond) // poll until the new leader serves
		}
		if other, ok := ids[ss.ID]; ok {
			t.Fatalf("id %d given to %s and %s", ss.ID, other, subject)
		}
		ids[ss.ID] = subject
	}
	for i, cl := range live {
		for id, subject := range ids {
			deadline := time.Now().Add(30 * time.Second)
			for {
				ss, err := cl.SchemaByVersion(ctx, subject, 1)
				if err == nil {
					if ss.ID != id {
						t.Fatalf("live registry %d: %s is id %d, want %d", i, subject, ss.ID, id)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("live registry %d: %s: %v", i, subject, err)
				}
				time.Sleep(20 * time.Millisecond) // poll until its reader has it
			}
		}
	}
}
