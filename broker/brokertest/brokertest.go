// Package brokertest starts a real Runnel broker inside a test, so an
// application or a Kafka client can be tested against the Kafka wire
// protocol in one line:
//
//	seeds := brokertest.Start(t)
//	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
//
// The broker listens on a free loopback port, keeps its data in the
// test's temporary directory, and is closed when the test ends. It is
// configured for tests: consumer groups rebalance without Kafka's initial
// delay, and the internal topics have few partitions, so it starts in
// well under a second.
package brokertest

import (
	"testing"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// An Option changes the broker's configuration.
type Option func(*broker.Config)

// DataDir keeps the broker's data in dir rather than in a new temporary
// directory: a second broker started on it after the first is closed
// sees what the first wrote.
func DataDir(dir string) Option { return func(c *broker.Config) { c.DataDir = dir } }

// Configure changes any field of the broker's configuration.
func Configure(f func(*broker.Config)) Option { return Option(f) }

// Start starts a broker for the test, waits until it serves consumer
// groups, and returns the addresses to give a client as seed brokers. The
// broker is closed when the test ends; a failure to start or to close
// fails the test.
func Start(t testing.TB, opts ...Option) []string {
	t.Helper()
	cfg := broker.Config{
		// -1 is no delay; 0 would be Kafka's default of 3s.
		GroupInitialRebalanceDelay:      -1,
		OffsetsTopicPartitions:          3,
		TransactionStateTopicPartitions: 3,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return []string{testutil.StartBroker(t, cfg).Addr()}
}
