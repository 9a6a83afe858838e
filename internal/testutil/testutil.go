// Package testutil holds what Runnel's own tests share: starting a broker
// in process, polling for a condition with a deadline, reading a topic
// back to its end, and running the test binary again as a child process
// that a test can kill. Users testing their applications use the public
// broker/brokertest instead.
package testutil

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
)

// StartBroker runs a broker in process with cfg, on a free loopback port
// in a temporary directory unless cfg says otherwise, waits until its
// group coordinator has loaded, and closes it when the test ends (a
// close error fails the test).
func StartBroker(t testing.TB, cfg broker.Config) *broker.Broker {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	// Generous: a busy 2-core machine recovers and starts slowly.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	if err := b.WaitGroupsLoaded(ctx); err != nil {
		t.Fatalf("load groups: %v", err)
	}
	return b
}

// Eventually polls cond every 10ms until it reports done, and fails the
// test after timeout with cond's last word on what it is waiting for.
func Eventually(t testing.TB, timeout time.Duration, cond func() (done bool, waiting string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, what := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting: %s", timeout, what)
		}
		<-tick.C
	}
}

// EventuallyNil is Eventually for a check that returns nil once what it
// waits for holds, and an error that says why not otherwise.
func EventuallyNil(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	Eventually(t, timeout, func() (bool, string) {
		err := check()
		return err == nil, fmt.Sprintf("%s: %v", what, err)
	})
}

// ReadTopic reads every partition of topic from its start to its end
// offset when called — its last stable offset when committed is set,
// reading read_committed — and returns the records (no control records)
// ordered by partition, then offset.
func ReadTopic(t testing.TB, addr, topic string, committed bool) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	list := kadm.NewClient(adm).ListEndOffsets
	if committed {
		list = kadm.NewClient(adm).ListCommittedOffsets
	}
	ends, err := list(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	starts, err := kadm.NewClient(adm).ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list start offsets of %s: %v", topic, err)
	}
	start := map[int32]kgo.Offset{}
	end := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s[%d]: %v", o.Topic, o.Partition, o.Err)
		}
		if s, _ := starts.Lookup(o.Topic, o.Partition); o.Offset > s.Offset {
			start[o.Partition] = kgo.NewOffset().AtStart()
			end[o.Partition] = o.Offset
		}
	})
	if len(start) == 0 {
		return nil
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		// Control records move the position past a marker at the end.
		kgo.KeepControlRecords()}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(end) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: deadline with partitions %v still short of their end", topic, end)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			e, ok := end[r.Partition]
			if !ok || r.Offset >= e {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset+1 >= e {
				delete(end, r.Partition)
			}
		})
	}
	slices.SortStableFunc(out, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return out
}
