package faultinject_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/history"
)

// A leader that comes back from a crash with less of its log than its
// followers hold — the tail it had not yet written to disk when it was
// killed, which they had already fetched — must not lead on at the epoch
// it led at. Followers truncate by epochs: records it writes at the old
// epoch over offsets they hold would leave their copies different from
// its own, silently, or with a follower stuck appending a batch that
// does not follow its log end (the RF-3 campaign in CI: "batch at
// 422839, log end 422840", for minutes).
//
// The leader is SIGKILLed and its last batch cut from its segment,
// standing in for the tail it had not written; it restarts well inside
// its session timeout, so the controller never fences it. Registering
// with a new incarnation moves its partitions to a new leader epoch: the
// followers cut their logs to its end, take what it writes next, and the
// three copies agree.
func TestClusterLeaderBackWithShorterLog(t *testing.T) {
	// A session timeout the restart cannot outlast: the broker must not
	// be fenced, which would move its leadership for other reasons.
	c := startFICluster(t, "--broker-session-timeout", "60s")
	const topic, before = "short", 5
	c.createRF3(topic, 1)
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(c.seeds()...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// The leader forgets the cut batch's sequence number.
		kgo.DisableIdempotentWrite(),
	}, quickRecovery...)...)
	if err != nil {
		c.fatalf("%v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := range before { // one batch each
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "before-%d", i)}).FirstErr(); err != nil {
			c.fatalf("produce: %v", err)
		}
	}
	leader, epoch := c.leaderAndEpoch(ctx, topic)
	for node := 1; node <= 3; node++ {
		c.waitLogEnd(ctx, node, topic, before)
	}

	if err := c.procs[leader-1].Kill(); err != nil {
		c.fatalf("%v", err)
	}
	cutLastBatch(t, filepath.Join(c.dirs[leader-1], "logs", topic+"-0"))
	c.restart(leader)

	// The restarted broker leads again, at a new epoch.
	for {
		l, e := c.leaderAndEpoch(ctx, topic)
		if l == leader && e > epoch {
			break
		}
		if l != leader && l > 0 {
			c.fatalf("broker %d leads %s after broker %d restarted inside its session timeout", l, topic, leader)
		}
		if ctx.Err() != nil {
			c.fatalf("%s: leader %d at epoch %d after broker %d restarted, want it at an epoch above %d", topic, l, e, leader, epoch)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		c.fatalf("produce after the restart: %v", err)
	}
	c.waitISR(ctx, topic, 3)
	for node := 1; node <= 3; node++ {
		c.waitLogEnd(ctx, node, topic, before)
	}
	c.checkReplicas(ctx, topic, 1)
}

// leaderAndEpoch is topic/0's leader and leader epoch as metadata has
// them; -1, -1 when it has none.
func (c *fiCluster) leaderAndEpoch(ctx context.Context, topic string) (int, int32) {
	c.t.Helper()
	md, err := c.admin().Metadata(ctx, topic)
	if err != nil {
		return -1, -1
	}
	p, ok := md.Topics[topic].Partitions[0]
	if !ok || p.Err != nil {
		return -1, -1
	}
	return int(p.Leader), p.LeaderEpoch
}

// waitLogEnd waits until broker node's copy of topic/0 ends at end.
func (c *fiCluster) waitLogEnd(ctx context.Context, node int, topic string, end int64) {
	c.t.Helper()
	var last string
	for {
		r, _, err := history.ReadReplica(ctx, c.kafka[node-1].Addr(), int32(node), topic, 0)
		if err == nil && r.LogEnd == end {
			return
		}
		last = fmt.Sprintf("ends at %d (%v)", r.LogEnd, err)
		if ctx.Err() != nil {
			c.fatalf("broker %d's copy of %s/0 %s, want it to end at %d", node, topic, last, end)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cutLastBatch removes the last record batch from the newest segment of
// the partition directory dir, as if it had never reached the disk.
func cutLastBatch(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			logs = append(logs, e.Name())
		}
	}
	if len(logs) == 0 {
		t.Fatalf("no segment in %s", dir)
	}
	slices.Sort(logs) // zero-padded base offsets
	path := filepath.Join(dir, logs[len(logs)-1])
	starts, _ := segmentBatches(t, path)
	if len(starts) == 0 {
		t.Fatalf("no batch in %s", path)
	}
	if err := os.Truncate(path, int64(starts[len(starts)-1])); err != nil {
		t.Fatal(err)
	}
}

// segmentBatches returns where each record batch of a segment file
// starts, and where the last ends. Direct writes may leave zeros after
// it: up to a block, or megabytes ahead of the appends where group
// commits go through the commit ring.
func segmentBatches(t *testing.T, path string) (starts []int, end int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Batches: base offset (8 bytes), length (4), then length bytes.
	for end+12 <= len(b) {
		n := int(int32(binary.BigEndian.Uint32(b[end+8:])))
		if n <= 0 || end+12+n > len(b) {
			break
		}
		starts = append(starts, end)
		end += 12 + n
	}
	return starts, end
}
