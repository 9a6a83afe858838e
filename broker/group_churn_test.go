package broker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// commitTracker checks, across every member of a group, that a partition's
// successfully committed offset never goes backwards.
type commitTracker struct {
	t    *testing.T
	mu   sync.Mutex
	last map[int32]int64
	n    int
}

func (ct *commitTracker) record(member string, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err != nil || resp == nil {
		return
	}
	want := make(map[int32]int64)
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			want[rp.Partition] = rp.Offset
		}
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				continue
			}
			off := want[rp.Partition]
			if prev, ok := ct.last[rp.Partition]; ok && off < prev {
				ct.t.Errorf("%s committed %d to partition %d after %d was committed", member, off, rp.Partition, prev)
			}
			ct.last[rp.Partition] = off
			ct.n++
		}
	}
}

// Members join and leave at random (seeded) for a while under a steady
// produce load. Within a generation no record is consumed twice, no
// successful commit moves a partition's offset backwards, and at the end
// a final member consumes the rest: every record is consumed.
func TestGroupChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("churn runs for seconds")
	}
	seed := uint64(time.Now().UnixNano())
	if s := testingSeed(); s != 0 {
		seed = s
	}
	t.Logf("seed %d (set RUNNEL_CHURN_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	b := testutil.StartBroker(t, groupBrokerConfig())
	adm := newAdmin(t, b.Addr())
	const topic, parts, group = "churn", 6, "churn"
	createTopic(t, adm, topic, parts, nil)
	ct := &commitTracker{t: t, last: make(map[int32]int64)}

	// The load: batches of one record per partition, values numbered.
	ctx, cancel := context.WithCancel(testContext(t))
	var produced int
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		for ctx.Err() == nil {
			var recs []*kgo.Record
			for p := range parts {
				recs = append(recs, &kgo.Record{Partition: int32(p), Value: []byte(strconv.Itoa(produced + p))})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				if ctx.Err() == nil {
					t.Errorf("produce: %v", err)
				}
				return
			}
			produced += parts
			time.Sleep(2 * time.Millisecond) // pace the load, not a wait
		}
	}()

	type consumed struct {
		member string
		gen    int32 // -1 when the generation changed around the poll
	}
	var (
		mu   sync.Mutex
		seen = make(map[string][]consumed)
	)
	n := 0
	startMember := func() *churnMember {
		name := fmt.Sprintf("m%d", n)
		n++
		m := &churnMember{done: make(chan struct{})}
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(b.Addr()),
			kgo.ClientID(name),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic),
			kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.FetchMaxWait(100*time.Millisecond),
			kgo.AutoCommitInterval(300*time.Millisecond),
			kgo.AutoCommitCallback(func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				ct.record(name, req, resp, err)
			}),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
				cl.CommitOffsetsSync(ctx, cl.UncommittedOffsets(), func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
					ct.record(name, req, resp, err)
				})
			}),
		)
		if err != nil {
			t.Fatal(err)
		}
		m.cl = cl
		pctx, pcancel := context.WithCancel(context.Background())
		m.cancel = pcancel
		// A member still running when the test fails is closed before
		// the broker is, so its goroutine never reports after the end.
		t.Cleanup(m.close)
		go func() {
			defer close(m.done)
			for {
				_, before := cl.GroupMetadata()
				fs := cl.PollFetches(pctx)
				_, after := cl.GroupMetadata()
				gen := after
				if before != after {
					gen = -1
				}
				// Records returned here count as consumed for the client:
				// the commit on leaving covers them. They are recorded
				// even when the poll raced the member's close, or the
				// test would lose them itself.
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					seen[string(r.Value)] = append(seen[string(r.Value)], consumed{name, gen})
				})
				mu.Unlock()
				if pctx.Err() != nil || fs.IsClientClosed() {
					return
				}
				fs.EachError(func(topic string, p int32, err error) {
					if !errors.Is(err, context.Canceled) && !errors.Is(err, kerr.RebalanceInProgress) {
						t.Errorf("%s: fetch %s[%d]: %v", name, topic, p, err)
					}
				})
			}
		}()
		return m
	}

	var members []*churnMember
	members = append(members, startMember())
	end := time.Now().Add(12 * time.Second)
	joins, leaves := 1, 0
	for time.Now().Before(end) {
		// Wait a random while: this paces the churn; nothing waits on it.
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
		if len(members) < 2 || (len(members) < 5 && rng.IntN(2) == 0) {
			members = append(members, startMember())
			joins++
		} else {
			i := rng.IntN(len(members))
			members[i].close()
			members = append(members[:i], members[i+1:]...)
			leaves++
		}
	}
	cancel()
	<-prodDone
	t.Logf("%d joins, %d leaves, %d records produced, %d commits", joins, leaves, produced, ct.n)

	// The remaining members consume the rest.
	testutil.Eventually(t, 60*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= produced, fmt.Sprintf("%d of %d records consumed", len(seen), produced)
	})
	for _, m := range members {
		m.close()
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for v, cs := range seen {
		if len(cs) > 1 {
			dups++
		}
		gens := make(map[int32]string)
		for _, c := range cs {
			if c.gen < 0 {
				continue
			}
			if prev, ok := gens[c.gen]; ok {
				t.Errorf("record %s consumed twice in generation %d (by %s and %s)", v, c.gen, prev, c.member)
			}
			gens[c.gen] = c.member
		}
	}
	for i := range produced {
		if _, ok := seen[strconv.Itoa(i)]; !ok {
			t.Errorf("record %d never consumed", i)
		}
	}
	t.Logf("%d records consumed more than once across generations", dups)
}

type churnMember struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (m *churnMember) close() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
		m.cl.Close()
	})
}

// testingSeed reads RUNNEL_CHURN_SEED, or returns 0.
func testingSeed() uint64 {
	s, _ := strconv.ParseUint(os.Getenv("RUNNEL_CHURN_SEED"), 10, 64)
	return s
}
