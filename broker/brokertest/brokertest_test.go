package brokertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/broker/brokertest"
)

// A record produced to the test broker is consumed back by a consumer
// group, and a second broker on the same data directory still has it.
func TestStart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Run("first", func(t *testing.T) {
		seeds := brokertest.Start(t, brokertest.DataDir(dir))
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "greetings"); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "greetings", Value: []byte("hello")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	})
	// The first broker is closed when its subtest ends.
	seeds := brokertest.Start(t, brokertest.DataDir(dir), brokertest.Configure(func(c *broker.Config) {
		c.GroupMinSessionTimeout = time.Second
	}))
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("greetings"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "hello" {
		t.Fatalf("read %v", recs)
	}
}
