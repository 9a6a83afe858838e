package broker

import (
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// A follower's long poll is woken by the leader's append itself, not by
// the leader's fsync after it, so that followers write and fsync a batch
// while the leader does. The leader's fsync never happens here (its high
// watermark loop is stopped), and the high watermark must stay put: it
// counts the leader's own log only up to what is durable.
func TestFollowerLongPollWokenByAppend(t *testing.T) {
	l, err := log.Open(t.TempDir(), log.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := newPartition("wake", [16]byte{1}, 0, l, 0, true, 0, nil)
	// Stop the high watermark loop: nothing this leader appends becomes
	// durable in this test.
	close(p.stop)
	p.wg.Wait()
	mp := meta.Partition{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}
	if err := p.role(mp, 1, 2, time.Minute, time.Now()); err != nil {
		t.Fatal(err)
	}

	wake := make(chan struct{}, 1)
	p.watchLEO(wake)
	defer p.unwatchLEO(wake)
	if _, err := p.append(MakeTestBatch(-1, 0, 0, false, "to replicate")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	default:
		t.Fatal("the follower's long poll was not woken by the append")
	}
	if hw := p.highWatermark(); hw != 0 {
		t.Fatalf("high watermark %d before the leader's fsync, want 0", hw)
	}
	// Followers at the new log end do not move it either.
	now := time.Now()
	p.followerFetched(2, 1, now)
	p.followerFetched(3, 1, now)
	if hw := p.highWatermark(); hw != 0 {
		t.Fatalf("high watermark %d with the followers caught up but the leader not durable, want 0", hw)
	}
	// Once the leader's log is durable, it moves.
	p.localDurable(1)
	if hw := p.highWatermark(); hw != 1 {
		t.Fatalf("high watermark %d once durable everywhere, want 1", hw)
	}
}
