package runnel

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// changelogEnds waits out a changelog its broker does not know yet (as
// one asked while a topic's creation spreads through a cluster) and
// returns its end once it does; a context that ends first ends the wait.
func TestChangelogEndsWaitsForTheTopic(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	r := &runner{adm: kadm.NewClient(cl), log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := r.changelogEnds(short, 0, []string{"late-changelog"}); err == nil {
		t.Fatal("the end of a topic that does not exist")
	}

	created := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := r.adm.CreateTopic(ctx, 1, 1, nil, "late-changelog")
		if err == nil {
			err = cl.ProduceSync(ctx, &kgo.Record{Topic: "late-changelog", Value: []byte("x")}, &kgo.Record{Topic: "late-changelog", Value: []byte("y")}).FirstErr()
		}
		created <- err
	}()
	ends, err := r.changelogEnds(ctx, 0, []string{"late-changelog"})
	if err != nil {
		t.Fatalf("changelogEnds: %v", err)
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if e, ok := ends["late-changelog"]; !ok || e < 0 || e > 2 {
		t.Fatalf("ends %v: want late-changelog's end, 0 to 2", ends)
	}
}
