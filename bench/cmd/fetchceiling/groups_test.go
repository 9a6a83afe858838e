package main

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startServer serves on a loopback port until the test ends.
func startServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := newServer(ln.Addr().(*net.TCPAddr), "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// owner tracks the partitions a group member owns, through kgo's
// assignment callbacks.
type owner struct {
	mu    sync.Mutex
	parts map[int32]bool
}

func (o *owner) opts(topic string) []kgo.Opt {
	change := func(own bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			o.mu.Lock()
			defer o.mu.Unlock()
			for _, p := range m[topic] {
				if own {
					o.parts[p] = true
				} else {
					delete(o.parts, p)
				}
			}
		}
	}
	return []kgo.Opt{kgo.OnPartitionsAssigned(change(true)), kgo.OnPartitionsRevoked(change(false)), kgo.OnPartitionsLost(change(false))}
}

func (o *owner) owned() []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ps []int32
	for p := range o.parts {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// TestGroupSpreadsPartitions runs two franz-go group consumers (the
// default cooperative-sticky balancer) against the coordinator: they
// must come to own disjoint partitions covering the topic, and when one
// leaves the other must own them all.
func TestGroupSpreadsPartitions(t *testing.T) {
	const topic, parts = "t", 24
	addr := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	if _, err := kadm.NewClient(admCl).CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}

	owners := []*owner{{parts: map[int32]bool{}}, {parts: map[int32]bool{}}}
	var clients []*kgo.Client
	for _, o := range owners {
		cl, err := kgo.NewClient(append(o.opts(topic), kgo.SeedBrokers(addr), kgo.ConsumerGroup("g"), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.HeartbeatInterval(100*time.Millisecond))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		clients = append(clients, cl)
		go func() {
			for !cl.PollFetches(ctx).IsClientClosed() && ctx.Err() == nil {
			}
		}()
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			if ctx.Err() != nil {
				t.Fatalf("%s: not by the deadline; owned %v and %v", what, owners[0].owned(), owners[1].owned())
			}
			time.Sleep(10 * time.Millisecond) // polling callbacks' state: nothing to wait on
		}
	}
	waitFor("partitions spread over both members", func() bool {
		a, b := owners[0].owned(), owners[1].owned()
		all := slices.Concat(a, b)
		slices.Sort(all)
		return len(a) > 0 && len(b) > 0 && len(slices.Compact(all)) == parts && len(all) == parts
	})

	clients[0].Close() // leaves the group
	waitFor("the other member owning every partition", func() bool { return len(owners[1].owned()) == parts })
}

// TestOffsets commits offsets from outside a group (kadm: generation -1)
// and reads them back; a partition never committed reads -1, and a
// commit as a member the group does not have is refused.
func TestOffsets(t *testing.T) {
	addr := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	var offs kadm.Offsets
	offs.AddOffset("t", 0, 42, -1)
	offs.AddOffset("t", 3, 7, -1)
	resp, err := adm.CommitOffsets(ctx, "h", offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := adm.FetchOffsets(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32]int64{0: 42, 3: 7} {
		if o, ok := got.Lookup("t", p); !ok || o.At != want || o.Err != nil {
			t.Errorf("partition %d: %+v, want offset %d", p, o, want)
		}
	}
	if o, ok := got.Lookup("t", 1); ok {
		t.Errorf("partition 1 never committed, fetched %+v", o)
	}

	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = "h", 1, "member-99"
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset = 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	cresp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := cresp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Errorf("commit as an unknown member: error %d, want UNKNOWN_MEMBER_ID", code)
	}
	if got, _ := adm.FetchOffsets(ctx, "h"); got["t"][0].At != 42 {
		t.Errorf("after the refused commit partition 0 is at %d, want 42", got["t"][0].At)
	}
}
