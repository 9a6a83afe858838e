package broker_test

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Three consumers in a group on a 6-partition topic consume
// each partition with exactly one member; on a topic with fewer partitions
// than members, the member beyond the partition count sits idle. Run with
// the range and the round-robin assignor.
func TestGroupOneOwnerPerPartition(t *testing.T) {
	for _, bal := range []struct {
		name string
		b    kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"roundrobin", kgo.RoundRobinBalancer()},
		{"sticky", kgo.StickyBalancer()},
	} {
		t.Run(bal.name, func(t *testing.T) {
			b := testutil.StartBroker(t, groupBrokerConfig())
			adm := newAdmin(t, b.Addr())

			const topic, parts = "owners", 6
			createTopic(t, adm, topic, parts, nil)
			group := "owners-" + bal.name
			var ms []*groupConsumer
			for i := range 3 {
				ms = append(ms, startConsumer(t, b.Addr(), group, topic, fmt.Sprintf("m%d", i), kgo.Balancers(bal.b)))
			}
			a := waitBalanced(t, adm, group, topic, parts, ms...)
			for name, ps := range a {
				if len(ps) != 2 {
					t.Errorf("%s assigned %v, want two partitions", name, ps)
				}
			}
			const n = 600
			produceN(t, b.Addr(), topic, parts, 0, n)
			checkOneOwner(t, ms, a, n)

			// Four members on three partitions: one sits idle.
			const small, smallParts = "owners-small", 3
			createTopic(t, adm, small, smallParts, nil)
			sgroup := group + "-small"
			var ss []*groupConsumer
			for i := range 4 {
				ss = append(ss, startConsumer(t, b.Addr(), sgroup, small, fmt.Sprintf("s%d", i), kgo.Balancers(bal.b)))
			}
			sa := waitBalanced(t, adm, sgroup, small, smallParts, ss...)
			idle := 0
			for _, ps := range sa {
				switch len(ps) {
				case 0:
					idle++
				case 1:
				default:
					t.Errorf("a member holds %v of %d partitions shared by 4 members", ps, smallParts)
				}
			}
			if idle != 1 {
				t.Fatalf("%d idle members, want 1: %v", idle, sa)
			}
			produceN(t, b.Addr(), small, smallParts, 0, 300)
			checkOneOwner(t, ss, sa, 300)
		})
	}
}

// checkOneOwner waits for n records in all and checks that each was
// consumed once, by the member assigned its partition.
func checkOneOwner(t *testing.T, ms []*groupConsumer, a map[string][]int32, n int) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		total := 0
		for _, m := range ms {
			if err := m.firstErr(); err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
			recs, _ := m.snapshot()
			total += len(recs)
		}
		return total >= n, fmt.Sprintf("%d of %d records consumed", total, n)
	})
	seen := make(map[string]string)
	for _, m := range ms {
		recs, _ := m.snapshot()
		for _, r := range recs {
			if !slices.Contains(a[m.name], r.Partition) {
				t.Errorf("%s consumed %s[%d] assigned to another member", m.name, r.Topic, r.Partition)
			}
			if prev, dup := seen[string(r.Value)]; dup {
				t.Errorf("record %s consumed by %s and %s", r.Value, prev, m.name)
			}
			seen[string(r.Value)] = m.name
		}
	}
	for i := range n {
		if _, ok := seen[strconv.Itoa(i)]; !ok {
			t.Errorf("record %d never consumed", i)
		}
	}
}

// With the cooperative-sticky assignor, a member joining a
// group of three revokes only the partitions that move to it; the others
// are never revoked and keep being consumed through the rebalance, which
// takes two join rounds.
func TestGroupCooperativeRebalanceRevokesOnlyMoved(t *testing.T) {
	b := testutil.StartBroker(t, groupBrokerConfig())
	adm := newAdmin(t, b.Addr())
	const topic, parts = "coop", 6
	createTopic(t, adm, topic, parts, nil)
	const group = "coop"
	coop := kgo.Balancers(kgo.CooperativeStickyBalancer())
	var ms []*groupConsumer
	for i := range 3 {
		ms = append(ms, startConsumer(t, b.Addr(), group, topic, fmt.Sprintf("m%d", i), coop))
	}
	before := waitBalanced(t, adm, group, topic, parts, ms...)

	// Produce continuously so every partition has data flowing while
	// the group rebalances.
	stop := make(chan struct{})
	produced := make(chan int)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
		if err != nil {
			panic(err)
		}
		defer cl.Close()
		i := 0
		for {
			select {
			case <-stop:
				produced <- i
				return
			default:
			}
			var recs []*kgo.Record
			for range parts {
				recs = append(recs, &kgo.Record{Partition: int32(i % parts), Value: []byte(strconv.Itoa(i))})
				i++
			}
			if err := cl.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
			}
		}
	}()
	// Let records flow to the three first.
	testutil.Eventually(t, 10*time.Second, func() (bool, string) {
		for _, m := range ms {
			if recs, _ := m.snapshot(); len(recs) < 50 {
				return false, m.name + " consuming"
			}
		}
		return true, ""
	})

	joinStart := time.Now()
	newcomer := startConsumer(t, b.Addr(), group, topic, "m3", coop)
	after := waitBalanced(t, adm, group, topic, parts, append(ms, newcomer)...)
	_, nevents := newcomer.snapshot()
	joinEnd := nevents[len(nevents)-1].at
	close(stop)
	total := <-produced

	moved := make(map[int32]bool)
	for _, p := range after["m3"] {
		moved[p] = true
	}
	if len(moved) == 0 {
		t.Fatalf("the new member got nothing: %v", after)
	}
	inWindow := 0
	for _, m := range ms {
		_, events := m.snapshot()
		for _, e := range events {
			if !e.revoked || e.at.Before(joinStart) {
				continue
			}
			for _, p := range e.partitions {
				if !moved[p] {
					t.Errorf("%s: partition %d revoked though it stayed (before %v, after %v)", m.name, p, before, after)
				}
			}
		}
		// Unmoved partitions: the owner kept them and consumed them
		// while the rebalance was in progress.
		for _, p := range before[m.name] {
			if !moved[p] {
				if !slices.Contains(after[m.name], p) {
					t.Errorf("%s lost unmoved partition %d", m.name, p)
				}
			}
		}
		m.mu.Lock()
		for i, r := range m.records {
			if !moved[r.Partition] && m.at[i].After(joinStart) && m.at[i].Before(joinEnd) {
				inWindow++
			}
		}
		m.mu.Unlock()
	}
	t.Logf("rebalance took %v; %d records of unmoved partitions consumed during it; moved %v", joinEnd.Sub(joinStart), inWindow, after["m3"])
	if inWindow == 0 {
		t.Errorf("no record of an unmoved partition was consumed while the group rebalanced")
	}

	// Every record produced is consumed, none twice: the revoked
	// partitions were committed on revoke and resumed from there.
	seen := make(map[string]string)
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		clear(seen)
		for _, m := range append(ms, newcomer) {
			recs, _ := m.snapshot()
			for _, r := range recs {
				if prev, dup := seen[string(r.Value)]; dup {
					t.Fatalf("record %s consumed by %s and %s", r.Value, prev, m.name)
				}
				seen[string(r.Value)] = m.name
			}
		}
		return len(seen) == total, fmt.Sprintf("%d of %d consumed", len(seen), total)
	})
}

// Static members (group.instance.id) restarted within the
// session timeout get their partitions back and the others do not
// rebalance: their generation stays and no callback fires — including
// when the restarted member is the leader.
func TestGroupStaticMemberRestartKeepsAssignment(t *testing.T) {
	b := testutil.StartBroker(t, groupBrokerConfig())
	adm := newAdmin(t, b.Addr())
	const topic, parts = "static", 6
	createTopic(t, adm, topic, parts, nil)
	const group = "static"
	opts := func(i int) []kgo.Opt {
		return []kgo.Opt{
			kgo.InstanceID(fmt.Sprintf("instance-%d", i)),
			kgo.SessionTimeout(10 * time.Second),
			kgo.Balancers(kgo.RangeBalancer()),
		}
	}
	ms := make([]*groupConsumer, 3)
	for i := range ms {
		ms[i] = startConsumer(t, b.Addr(), group, topic, fmt.Sprintf("m%d", i), opts(i)...)
	}
	before := waitBalanced(t, adm, group, topic, parts, ms...)

	for i := range ms {
		_, gen := ms[(i+1)%3].cl.GroupMetadata()
		_, others1 := ms[(i+1)%3].snapshot()
		_, others2 := ms[(i+2)%3].snapshot()
		ms[i].close()
		ms[i] = startConsumer(t, b.Addr(), group, topic, fmt.Sprintf("m%d", i), opts(i)...)
		testutil.Eventually(t, 10*time.Second, func() (bool, string) {
			return slices.Equal(ms[i].owns(), before[ms[i].name]), fmt.Sprintf("restarted %s owns %v, had %v", ms[i].name, ms[i].owns(), before[ms[i].name])
		})
		after := waitBalanced(t, adm, group, topic, parts, ms...)
		for name, ps := range before {
			if !slices.Equal(after[name], ps) {
				t.Errorf("after restarting m%d: %s has %v, had %v", i, name, after[name], ps)
			}
		}
		for _, j := range []int{(i + 1) % 3, (i + 2) % 3} {
			if _, g := ms[j].cl.GroupMetadata(); g != gen {
				t.Errorf("after restarting m%d: m%d generation %d, was %d", i, j, g, gen)
			}
		}
		if _, e := ms[(i+1)%3].snapshot(); len(e) != len(others1) {
			t.Errorf("after restarting m%d: m%d saw callbacks %v", i, (i+1)%3, e[len(others1):])
		}
		if _, e := ms[(i+2)%3].snapshot(); len(e) != len(others2) {
			t.Errorf("after restarting m%d: m%d saw callbacks %v", i, (i+2)%3, e[len(others2):])
		}
	}

	// Records produced now reach the restarted members.
	produceN(t, b.Addr(), topic, parts, 0, 60)
	testutil.Eventually(t, 10*time.Second, func() (bool, string) {
		n := 0
		for _, m := range ms {
			recs, _ := m.snapshot()
			n += len(recs)
		}
		return n >= 60, fmt.Sprintf("%d of 60 consumed", n)
	})
}

// Committed offsets survive a broker restart, and the lag
// the metrics endpoint reports per partition (high watermark minus
// committed offset) is right before and after.
func TestGroupOffsetsAndLagSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := groupBrokerConfig()
	cfg.DataDir = dir
	b := testutil.StartBroker(t, cfg)
	adm := newAdmin(t, b.Addr())
	const topic, parts = "lag", 3
	createTopic(t, adm, topic, parts, nil)
	produceN(t, b.Addr(), topic, parts, 0, 300) // 100 per partition

	// A consumer group reads everything and commits.
	const group = "lag"
	c := startConsumer(t, b.Addr(), group, topic, "c0", kgo.DisableAutoCommit())
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		recs, _ := c.snapshot()
		return len(recs) == 300, fmt.Sprintf("%d of 300 consumed", len(recs))
	})
	if err := c.cl.CommitUncommittedOffsets(testContext(t)); err != nil {
		t.Fatal(err)
	}
	c.close()
	// A group that only commits: p0 at 10, p1 at 55, p2 at 100.
	const simple = "lag-simple"
	commits := kadm.Offsets{}
	for p, o := range []int64{10, 55, 100} {
		commits.AddOffset(topic, int32(p), o, -1)
	}
	if err := adm.CommitAllOffsets(testContext(t), simple, commits); err != nil {
		t.Fatal(err)
	}
	produceN(t, b.Addr(), topic, parts, 300, 30) // 10 more each: 110 per partition

	want := map[string]map[string]float64{
		group:  {"lag/0": 10, "lag/1": 10, "lag/2": 10},
		simple: {"lag/0": 100, "lag/1": 55, "lag/2": 10},
	}
	checkLag := func(b *broker.Broker, when string) {
		t.Helper()
		for g, w := range want {
			testutil.Eventually(t, 10*time.Second, func() (bool, string) {
				got := scrapeGroupLag(t, b.MetricsAddr(), g)
				return maps.Equal(got, w), fmt.Sprintf("%s: lag of %s %v, want %v", when, g, got, w)
			})
			// The same through the Kafka APIs a CLI uses.
			lags, err := newAdmin(t, b.Addr()).Lag(testContext(t), g)
			if err != nil {
				t.Fatal(err)
			}
			gl := lags[g]
			if err := gl.Error(); err != nil {
				t.Fatalf("%s: kadm lag of %s: %v", when, g, err)
			}
			sorted := lags[g].Lag.Sorted()
			if len(sorted) != len(w) {
				t.Errorf("%s: kadm lag of %s has %d partitions, want %d", when, g, len(sorted), len(w))
			}
			for _, l := range sorted {
				if k := fmt.Sprintf("%s/%d", l.Topic, l.Partition); float64(l.Lag) != w[k] {
					t.Errorf("%s: kadm lag of %s %s = %d, want %v", when, g, k, l.Lag, w[k])
				}
			}
		}
	}
	checkLag(b, "before restart")

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := testutil.StartBroker(t, cfg)
	ctx := testContext(t)
	if err := b2.WaitGroupsLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	checkLag(b2, "after restart")

	// The group resumes where it committed: exactly the 30 new records.
	c2 := startConsumer(t, b2.Addr(), group, topic, "c1", kgo.DisableAutoCommit())
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		recs, _ := c2.snapshot()
		return len(recs) >= 30, fmt.Sprintf("%d of 30 consumed after restart", len(recs))
	})
	recs, _ := c2.snapshot()
	for _, r := range recs {
		if n, _ := strconv.Atoi(string(r.Value)); n < 300 {
			t.Errorf("after restart the group re-consumed record %d", n)
		}
	}
	if len(recs) != 30 {
		t.Errorf("consumed %d records after restart, want 30", len(recs))
	}
}
