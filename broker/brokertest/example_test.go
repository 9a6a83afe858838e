package brokertest_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker/brokertest"
)

// A test of code that writes to Kafka runs against a real broker.
func ExampleStart() {
	var t *testing.T // in a test, the test's t

	seeds := brokertest.Start(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: []byte("one")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}
