package runnel_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestAppScaling: a stateful word count over six partitions scales from one
// instance to three and back to one. Tasks move between instances, their
// stores restored from the changelogs, and the output (the last count per
// word, read_committed) still equals the reference counts. It uses only the
// public API, so it holds for any correct task balancer: it waits for the
// group to settle with every member holding a part of all the partitions,
// however many rebalances that takes.
func TestAppScaling(t *testing.T) {
	for _, g := range []runnel.Guarantee{runnel.ExactlyOnce, runnel.AtLeastOnce} {
		t.Run(g.String(), func(t *testing.T) { testAppScaling(t, g) })
	}
}

func testAppScaling(t *testing.T, g runnel.Guarantee) {
	addr := startAppBroker(t)
	createTopics(t, addr, 6, "lines", "word-counts")
	cl := newTestClient(t, addr)
	adm := kadm.NewClient(cl)
	// 6 partitions of lines and 6 of the repartition topic: 12 tasks.
	const partitions = 12
	opts := []runnel.AppOption{runnel.ApplicationID("wc"), runnel.Brokers(addr),
		runnel.ProcessingGuarantee(g), runnel.CommitInterval(100 * time.Millisecond)}
	var all []string
	feed := func(seed uint64, n int) {
		lines := wordCountLines(seed, n)
		produceLines(t, cl, len(all), lines)
		all = append(all, lines...)
		waitCounts(t, addr, countWords(all))
	}

	a := startApp(t, wordCount, opts...)
	feed(1, 300)

	// Two more instances join. Each instance owns a share of the tasks,
	// so each processes some of the next batch.
	var b, c *runnel.App
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b = startApp(t, wordCount, opts...) }()
	go func() { defer wg.Done(); c = startApp(t, wordCount, opts...) }()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitGroupSettled(t, adm, "wc", 3, partitions)
	before := []runnel.Metrics{a.Metrics(), b.Metrics(), c.Metrics()}
	feed(2, 600)
	for i, app := range []*runnel.App{a, b, c} {
		m := app.Metrics()
		t.Logf("instance %d while three ran: %+v", i, m)
		if m.RecordsProcessed == before[i].RecordsProcessed {
			t.Errorf("instance %d processed nothing while three instances ran", i)
		}
	}
	if restored := b.Metrics().RecordsRestored + c.Metrics().RecordsRestored; restored == 0 {
		t.Error("the joining instances restored no state from the changelogs")
	}

	// Two leave; the first takes their tasks back.
	wg.Add(2)
	for _, app := range []*runnel.App{b, c} {
		go func() {
			defer wg.Done()
			if err := app.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}()
	}
	wg.Wait()
	waitGroupSettled(t, adm, "wc", 1, partitions)
	feed(3, 300)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitGroupSettled polls until group is Stable with members members, each
// assigned at least one partition, and partitions partitions assigned in
// all.
func waitGroupSettled(t *testing.T, adm *kadm.Client, group string, members, partitions int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for {
		settled, why := groupSettled(adm, group, members, partitions)
		if settled {
			return
		}
		last = why
		if time.Now().After(deadline) {
			t.Fatalf("group %s did not settle with %d members: %s", group, members, last)
		}
		time.Sleep(20 * time.Millisecond) // polling the broker
	}
}

func groupSettled(adm *kadm.Client, group string, members, partitions int) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return false, err.Error()
	}
	d, ok := gs[group]
	if !ok || d.Err != nil {
		return false, fmt.Sprintf("describe: %v", d.Err)
	}
	if d.State != "Stable" || len(d.Members) != members {
		return false, fmt.Sprintf("state %s with %d members", d.State, len(d.Members))
	}
	total := 0
	for _, m := range d.Members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok {
			return false, "an assignment is not of the consumer protocol"
		}
		n := 0
		for _, tp := range ca.Topics {
			n += len(tp.Partitions)
		}
		if n == 0 {
			return false, fmt.Sprintf("member %s has no partitions", m.MemberID)
		}
		total += n
	}
	if total != partitions {
		return false, fmt.Sprintf("%d of %d partitions assigned", total, partitions)
	}
	return true, ""
}
