package meta

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Dir: dir, NodeID: 1})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestStorePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	cl := s.Cluster()
	if cl.ClusterID == "" || cl.ControllerID != 1 {
		t.Fatalf("cluster id %q controller %d", cl.ClusterID, cl.ControllerID)
	}
	if err := s.RegisterBroker(ctx(t), Broker{ID: 1, Host: "127.0.0.1", Port: 9092}); err != nil {
		t.Fatal(err)
	}
	top, err := s.CreateTopic(ctx(t), TopicSpec{Name: "orders", NumPartitions: 3, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Partitions) != 3 || top.Partitions[2].Leader != 1 || top.Partitions[2].Index != 2 {
		t.Fatalf("topic %+v", top)
	}
	if err := s.CreatePartitions(ctx(t), "orders", 5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(ctx(t), TopicSpec{Name: "gone", NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic(ctx(t), "gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTopicConfigs(ctx(t), "orders", map[string]string{"retention.ms": "2000"}); err != nil {
		t.Fatal(err)
	}
	id := cl.ClusterID
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	defer s.Close()
	cl = s.Cluster()
	if cl.ClusterID != id {
		t.Fatalf("cluster id changed: %q -> %q", id, cl.ClusterID)
	}
	o := cl.Topics["orders"]
	if o == nil || len(o.Partitions) != 5 || o.Configs["retention.ms"] != "2000" || cl.TopicsByID[o.ID] != o {
		t.Fatalf("orders after restart: %+v", o)
	}
	if cl.Topics["gone"] != nil {
		t.Fatal("deleted topic came back")
	}
	if b := cl.Brokers[1]; b.Port != 9092 {
		t.Fatalf("broker after restart: %+v", b)
	}
}

func TestStoreSnapshotRestore(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.RegisterBroker(ctx(t), Broker{ID: 1, Host: "h", Port: 1}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		if _, err := s.CreateTopic(ctx(t), TopicSpec{Name: n, NumPartitions: 2, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(ctx(t), TopicSpec{Name: "d", NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, dir)
	defer s.Close()
	if got := len(s.Cluster().Topics); got != 4 {
		t.Fatalf("%d topics after snapshot restore, want 4", got)
	}
}

func TestStoreErrors(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	if err := s.RegisterBroker(ctx(t), Broker{ID: 1, Host: "h", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(ctx(t), TopicSpec{Name: "t", NumPartitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"exists", second(s.CreateTopic(ctx(t), TopicSpec{Name: "t", NumPartitions: 1, ReplicationFactor: 1})), ErrTopicExists},
		{"bad name", second(s.CreateTopic(ctx(t), TopicSpec{Name: "a/b", NumPartitions: 1, ReplicationFactor: 1})), ErrInvalidTopic},
		{"long name", second(s.CreateTopic(ctx(t), TopicSpec{Name: strings.Repeat("x", 250), NumPartitions: 1, ReplicationFactor: 1})), ErrInvalidTopic},
		{"zero partitions", second(s.CreateTopic(ctx(t), TopicSpec{Name: "z", NumPartitions: 0, ReplicationFactor: 1})), ErrInvalidPartitions},
		{"rf too big", second(s.CreateTopic(ctx(t), TopicSpec{Name: "r", NumPartitions: 1, ReplicationFactor: 3})), ErrInvalidReplicationFactor},
		{"unknown replica", second(s.CreateTopic(ctx(t), TopicSpec{Name: "m", Assignments: [][]int32{{7}}})), ErrInvalidReplicationFactor},
		{"shrink", s.CreatePartitions(ctx(t), "t", 1), ErrInvalidPartitions},
		{"same count", s.CreatePartitions(ctx(t), "t", 2), ErrInvalidPartitions},
		{"grow unknown", s.CreatePartitions(ctx(t), "nope", 3), ErrUnknownTopic},
		{"delete unknown", s.DeleteTopic(ctx(t), "nope"), ErrUnknownTopic},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestStoreWatch(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	ch, stop := s.Watch()
	defer stop()
	if err := s.RegisterBroker(ctx(t), Broker{ID: 1, Host: "h", Port: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no watch notification after a change")
	}
}

func TestValidateTopicName(t *testing.T) {
	for name, ok := range map[string]bool{
		"orders": true, "a.b_c-D9": true, strings.Repeat("x", 249): true,
		"": false, ".": false, "..": false, "a b": false, "ü": false, strings.Repeat("x", 250): false,
	} {
		if err := ValidateTopicName(name); (err == nil) != ok {
			t.Errorf("ValidateTopicName(%q) = %v", name, err)
		}
	}
}

// UpdateTopicConfigs and UpdateBrokerConfigs are compare-and-set: a change
// that lands between the read and the write makes the edit run again on
// the newer configs, so neither change is lost. Both survive a restart.
func TestStoreUpdateConfigs(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.RegisterBroker(ctx(t), Broker{ID: 1, Host: "h", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(ctx(t), TopicSpec{Name: "t", NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err := s.UpdateTopicConfigs(ctx(t), "t", func(cur map[string]string) (map[string]string, error) {
		calls++
		if calls == 1 {
			// Another writer gets in first.
			if err := s.SetTopicConfigs(ctx(t), "t", map[string]string{"retention.ms": "1"}); err != nil {
				t.Fatal(err)
			}
		}
		cur["segment.ms"] = "2"
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Cluster().Topics["t"].Configs; calls != 2 || len(got) != 2 || got["retention.ms"] != "1" || got["segment.ms"] != "2" {
		t.Fatalf("after a conflicting update: %v (%d calls); want both changes", got, calls)
	}
	refused := errors.New("refused")
	if err := s.UpdateTopicConfigs(ctx(t), "t", func(map[string]string) (map[string]string, error) { return nil, refused }); !errors.Is(err, refused) {
		t.Fatalf("edit error: %v", err)
	}
	if err := s.UpdateTopicConfigs(ctx(t), "nope", func(c map[string]string) (map[string]string, error) { return c, nil }); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("unknown topic: %v", err)
	}
	for _, res := range []string{"", "1"} {
		err := s.UpdateBrokerConfigs(ctx(t), res, func(cur map[string]string) (map[string]string, error) {
			cur["log.retention.ms"] = "100" + res
			return cur, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	defer s.Close()
	cl := s.Cluster()
	if got := cl.Topics["t"].Configs; len(got) != 2 || got["segment.ms"] != "2" {
		t.Fatalf("topic configs after restart: %v", got)
	}
	if cl.BrokerConfigs[""]["log.retention.ms"] != "100" || cl.BrokerConfigs["1"]["log.retention.ms"] != "1001" {
		t.Fatalf("broker configs after restart: %v", cl.BrokerConfigs)
	}
	// Emptying a resource's configs removes it.
	if err := s.UpdateBrokerConfigs(ctx(t), "1", func(map[string]string) (map[string]string, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Cluster().BrokerConfigs["1"]; ok {
		t.Fatalf("broker 1's configs still there after emptying: %v", s.Cluster().BrokerConfigs)
	}
}

// Producer id blocks never overlap, also across a restart.
func TestStoreAllocateProducerIDs(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	a, err := s.AllocateProducerIDs(ctx(t), 1000)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AllocateProducerIDs(ctx(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	if a != 0 || b != 1000 {
		t.Fatalf("blocks at %d and %d, want 0 and 1000", a, b)
	}
	if _, err := s.AllocateProducerIDs(ctx(t), 0); err == nil {
		t.Fatal("allocated an empty block")
	}
	s.Close()
	s = openStore(t, dir)
	c, err := s.AllocateProducerIDs(ctx(t), 5)
	if err != nil || c != 1010 {
		t.Fatalf("block after restart at %d (%v), want 1010", c, err)
	}
}
