package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// The group scenario with other clients' group consumers: three members
// share a fixed record set, one leaves halfway, and every record is
// consumed exactly once across the group, because each member commits
// what it consumed before giving its partitions up.

// ledger counts which records a group consumed, by value.
type ledger struct {
	mu    sync.Mutex
	count map[string]int
	by    map[string][]string
}

func newLedger() *ledger { return &ledger{count: make(map[string]int), by: make(map[string][]string)} }

func (l *ledger) add(member string, value []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count[string(value)]++
	l.by[string(value)] = append(l.by[string(value)], member)
}

func (l *ledger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.count)
}

// peerMember starts one group member of a client library that records
// what it consumes in the ledger; it returns a function that stops the
// member and makes it leave the group.
type peerMember func(t *testing.T, addr, group, topic, name string, l *ledger) (stop func())

// With settle, the second half is produced only once the group has
// rebalanced after the departure: a client with no revoke hook commits
// records delivered as its generation ends only in the next generation,
// after its new fetchers have read the committed offsets, so it can
// deliver them twice (at-least-once, by the client's design).
func runPeerGroupScenario(t *testing.T, start peerMember, settle bool) {
	b := testutil.StartBroker(t, groupBrokerConfig())
	adm := newAdmin(t, b.Addr())
	const topic, parts, half = "peers", 6, 150
	createTopic(t, adm, topic, parts, nil)
	const group = "peers"
	l := newLedger()
	produceN(t, b.Addr(), topic, parts, 0, half)

	var stops []func()
	for i := range 3 {
		stops = append(stops, start(t, b.Addr(), group, topic, fmt.Sprintf("m%d", i), l))
	}
	waitDistinct(t, l, half)
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		d := describe(t, adm, group)
		return d.State == "Stable" && len(d.Members) == 3, fmt.Sprintf("group %s with %d members", d.State, len(d.Members))
	})
	stops[0]() // m0 leaves
	twoMembers := func() {
		testutil.Eventually(t, 30*time.Second, func() (bool, string) {
			d := describe(t, adm, group)
			return d.State == "Stable" && len(d.Members) == 2, fmt.Sprintf("group %s with %d members", d.State, len(d.Members))
		})
	}
	if settle {
		twoMembers()
	}
	produceN(t, b.Addr(), topic, parts, half, half)
	waitDistinct(t, l, 2*half)
	twoMembers()
	stops[1]()
	stops[2]()

	l.mu.Lock()
	for v, n := range l.count {
		if n != 1 {
			t.Errorf("record %s consumed %d times, by %v", v, n, l.by[v])
		}
	}
	l.mu.Unlock()
	for i := range 2 * half {
		if l.count[strconv.Itoa(i)] == 0 {
			t.Errorf("record %d never consumed", i)
		}
	}
	// Everything consumed was committed: 50 records per partition.
	offs, err := adm.FetchOffsets(testContext(t), group)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < parts; p++ {
		if o, ok := offs.Lookup(topic, p); !ok || o.At != 2*half/parts {
			t.Errorf("committed offset of %s[%d] = %+v, want %d", topic, p, o, 2*half/parts)
		}
	}
}

func waitDistinct(t *testing.T, l *ledger, n int) {
	t.Helper()
	testutil.Eventually(t, 60*time.Second, func() (bool, string) {
		got := l.distinct()
		return got >= n, fmt.Sprintf("%d of %d records consumed", got, n)
	})
}

func TestGroupSarama(t *testing.T) {
	runPeerGroupScenario(t, func(t *testing.T, addr, group, topic, name string, l *ledger) func() {
		cfg := sarama.NewConfig()
		cfg.Version = sarama.V3_0_0_0 // OffsetFetch v8 (multi-group), JoinGroup v7
		cfg.ClientID = name
		cfg.Consumer.Return.Errors = true
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
		cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
		cfg.Consumer.Group.Session.Timeout = 6 * time.Second
		cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
		cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
		cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
		cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
		if err != nil {
			t.Fatalf("sarama consumer group: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, saramaHandler{name: name, l: l}); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
					t.Errorf("%s: consume: %v", name, err)
					return
				}
			}
		}()
		go func() {
			for err := range cg.Errors() {
				t.Logf("%s: %v", name, err)
			}
		}()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				<-done
				if err := cg.Close(); err != nil {
					t.Errorf("%s: close: %v", name, err)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}, false)
}

// saramaHandler marks every message and commits before its claims end
// (a rebalance or close), as a careful sarama user does.
type saramaHandler struct {
	name string
	l    *ledger
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error { return nil }

func (saramaHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	s.Commit()
	return nil
}

func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		h.l.add(h.name, msg.Value)
		s.MarkMessage(msg, "")
	}
	return nil
}

// kafka-go's Reader speaks FindCoordinator v0, JoinGroup v1/v2, SyncGroup
// v0, Heartbeat v0, LeaveGroup v0, OffsetCommit v2 and OffsetFetch v1. It
// commits each record synchronously but has no revoke hook, so the second
// half is produced once the group has settled (see runPeerGroupScenario).
func TestGroupKafkaGo(t *testing.T) {
	runPeerGroupScenario(t, func(t *testing.T, addr, group, topic, name string, l *ledger) func() {
		rd := kafka.NewReader(kafka.ReaderConfig{
			Brokers:           []string{addr},
			GroupID:           group,
			Topic:             topic,
			MinBytes:          1,
			MaxBytes:          1 << 20,
			MaxWait:           100 * time.Millisecond,
			HeartbeatInterval: 200 * time.Millisecond,
			SessionTimeout:    6 * time.Second,
			RebalanceTimeout:  10 * time.Second,
			JoinGroupBackoff:  100 * time.Millisecond,
			StartOffset:       kafka.FirstOffset,
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				m, err := rd.FetchMessage(ctx)
				if err != nil {
					return
				}
				l.add(name, m.Value)
				if err := rd.CommitMessages(ctx, m); err != nil && ctx.Err() == nil {
					t.Logf("%s: commit: %v", name, err)
				}
			}
		}()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				<-done
				if err := rd.Close(); err != nil {
					t.Errorf("%s: close: %v", name, err)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}, true)
}
