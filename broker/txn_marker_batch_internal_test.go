package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/txn"
)

// The batcher sends the markers queued for a broker in one request while
// the previous one is in flight: the first marker for broker 2 goes
// alone, the six that queue behind it (five transactions' markers) go in
// the second request, broker 3's marker goes at once on its own, and a
// marker whose caller gave up is not sent. Each caller gets its own
// marker's outcome. Once closed, the batcher takes no more.
func TestMarkerBatcher(t *testing.T) {
	release := make(chan struct{})
	first := make(chan struct{})
	var mu sync.Mutex
	var sent []string // one entry per request: "node:partitions"
	send := func(ctx context.Context, node int32, ms []txn.Marker) []error {
		mu.Lock()
		var parts []int
		for _, m := range ms {
			parts = append(parts, int(m.Partition))
		}
		slices.Sort(parts) // the order they queued in is the scheduler's
		desc := fmt.Sprint(node, ": ", parts)
		n := len(sent)
		sent = append(sent, desc)
		mu.Unlock()
		if node == 2 && n == 0 {
			close(first)
			<-release // the first request to broker 2 is slow
		}
		errs := make([]error, len(ms))
		for i, m := range ms {
			if m.Partition == 13 {
				errs[i] = errors.New("refused")
			}
		}
		return errs
	}
	mb := newMarkerBatcher(send)
	marker := func(pid int64, partition int32) txn.Marker {
		return txn.Marker{TopicPartition: txn.TopicPartition{Topic: "t", Partition: partition}, ProducerID: pid, Commit: true}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results := make(chan string, 10)
	write := func(ctx context.Context, node int32, pid int64, partition int32) {
		err := mb.write(ctx, node, marker(pid, partition))
		results <- fmt.Sprint(partition, " ", err)
	}
	go write(ctx, 2, 1, 0)
	<-first
	for i, p := range []int32{10, 11, 12, 13, 14, 15} {
		go write(ctx, 2, int64(2+i/2), p)
	}
	gaveUp, giveUp := context.WithCancel(ctx)
	giveUp()
	go write(gaveUp, 2, 9, 99)
	queued := func() int {
		mb.mu.Lock()
		defer mb.mu.Unlock()
		return len(mb.queues[2])
	}
	for deadline := time.Now().Add(10 * time.Second); queued() < 7; {
		if time.Now().After(deadline) {
			t.Fatalf("%d markers queued behind the first, want 7", queued())
		}
		time.Sleep(time.Millisecond)
	}
	go write(ctx, 3, 20, 30)
	got := map[string]bool{}
	// Broker 3's marker does not wait for broker 2's request.
	for !got["30 <nil>"] {
		r := <-results
		if r != "30 <nil>" && r != "99 context canceled" {
			t.Fatalf("result %q before broker 2's first request ended", r)
		}
		got[r] = true
	}
	close(release)
	for len(got) < 9 {
		got[<-results] = true
	}
	for _, want := range []string{"0 <nil>", "10 <nil>", "11 <nil>", "12 <nil>", "13 refused", "14 <nil>", "15 <nil>", "30 <nil>", "99 context canceled"} {
		if !got[want] {
			t.Errorf("no result %q in %v", want, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 3 || sent[0] != "2: [0]" || !((sent[1] == "3: [30]" && sent[2] == "2: [10 11 12 13 14 15]") || (sent[2] == "3: [30]" && sent[1] == "2: [10 11 12 13 14 15]")) {
		t.Fatalf("requests %q, want [2: 0] then [2: 10 11 12 13 14 15] and [3: 30]", sent)
	}
	mb.close()
	if err := mb.write(ctx, 2, marker(1, 0)); !errors.Is(err, errPeerClosed) {
		t.Fatalf("write after close: %v", err)
	}
}
