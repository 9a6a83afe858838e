package clustertest_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// DescribeQuorum v2 reports a voter's directory id (KIP-853): the one
// saved in its data dir (meta/directory.id, in Kafka's base64 form), the
// same after a restart. Before, every member reported the zero id.
func TestDescribeQuorumDirectoryIDStable(t *testing.T) {
	dir := t.TempDir()
	describe := func() [16]byte {
		t.Helper()
		b := testutil.StartBroker(t, broker.Config{DataDir: dir})
		defer b.Close()
		cl := newClient(t, b.Addr())
		defer cl.Close()
		p, _, err := describeQuorum(testContext(t), cl, -1)
		if err != nil || len(p.CurrentVoters) != 1 {
			t.Fatalf("describe quorum: %v %+v", err, p)
		}
		return p.CurrentVoters[0].ReplicaDirectoryID
	}
	first := describe()
	if first == [16]byte{} {
		t.Fatal("the voter reports the zero directory id")
	}
	saved, err := os.ReadFile(filepath.Join(dir, "meta", "directory.id"))
	if err != nil {
		t.Fatal(err)
	}
	if got := kafkaUUID(first); strings.TrimSpace(string(saved)) != got {
		t.Fatalf("reported %s, saved %q", got, saved)
	}
	if again := describe(); again != first {
		t.Fatalf("after a restart the directory id is %s, was %s", kafkaUUID(again), kafkaUUID(first))
	}
}

// On a cluster each voter has its own directory id, and every broker
// reports the same ones.
func TestDescribeQuorumDirectoryIDCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-broker test (.ci/run runs it)")
	}
	addrs, _ := startInProcessCluster(t, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var want map[int32][16]byte
	for node := int32(1); node <= 3; node++ {
		var got map[int32][16]byte
		// A voter's id is known once it has registered, which every
		// node does before it serves; poll in case the answer races
		// a controller change.
		testutil.Eventually(t, 30*time.Second, func() (bool, string) {
			p, _, err := describeQuorum(ctx, cl, node)
			if err != nil {
				return false, err.Error()
			}
			got = directoryIDs(p.CurrentVoters)
			return len(got) == 3, "directory ids " + formatIDs(got)
		})
		if want == nil {
			want = got
			seen := map[[16]byte]bool{}
			for _, id := range got {
				seen[id] = true
			}
			if len(seen) != 3 {
				t.Fatalf("voters share directory ids: %s", formatIDs(got))
			}
			continue
		}
		if formatIDs(got) != formatIDs(want) {
			t.Fatalf("broker %d reports %s, broker 1 %s", node, formatIDs(got), formatIDs(want))
		}
	}
}

// directoryIDs maps each member with a non-zero directory id to it.
func directoryIDs(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) map[int32][16]byte {
	out := map[int32][16]byte{}
	for _, r := range rs {
		if r.ReplicaDirectoryID != [16]byte{} {
			out[r.ReplicaID] = r.ReplicaDirectoryID
		}
	}
	return out
}

// formatIDs prints member=directory id pairs in member order.
func formatIDs(m map[int32][16]byte) string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d=%s", id, kafkaUUID(m[id])))
	}
	return strings.Join(parts, " ")
}

// kafkaUUID prints a UUID as Kafka does: URL-safe base64, no padding.
func kafkaUUID(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }
