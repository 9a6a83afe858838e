package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// A slow acks=all wait is logged with what held the high watermark: the
// follower that has not fetched past it, how long ago it last fetched;
// and at most once per partition every slowAckLogEvery.
func TestSlowAckState(t *testing.T) {
	l, err := log.Open(t.TempDir(), log.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := newPartition("slow", [16]byte{1}, 0, l, 0, true, 0, nil)
	close(p.stop) // no high watermark loop: the test moves it
	p.wg.Wait()
	t0 := time.Unix(1000, 0)
	mp := meta.Partition{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}
	if err := p.role(mp, 1, 2, time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := p.append(MakeTestBatch(-1, 0, 0, false, "a", "b")); err != nil {
		t.Fatal(err)
	}
	p.localDurable(2)
	p.followerFetched(2, 2, t0.Add(time.Second))
	p.followerFetched(3, 0, t0)

	now := t0.Add(3 * time.Second)
	attrs, ok := p.slowAckState(now)
	if !ok {
		t.Fatal("nothing to log for the first slow wait")
	}
	got := fmt.Sprint(attrs...)
	for _, want := range []string{"hw0", "durable_end2", "leader_leo2", "2: leo 2, last fetch 2s ago", "3: leo 0, last fetch 3s ago"} {
		if !strings.Contains(got, want) {
			t.Errorf("log attributes %q lack %q", got, want)
		}
	}
	if _, ok := p.slowAckState(now.Add(slowAckLogEvery / 2)); ok {
		t.Error("logged twice within slowAckLogEvery")
	}
	if _, ok := p.slowAckState(now.Add(slowAckLogEvery)); !ok {
		t.Error("not logged again after slowAckLogEvery")
	}
}
