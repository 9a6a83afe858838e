package runnel

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/runnel-dev/runnel/broker"
)

// This file is the only one of package runnel that imports the broker: an
// App given no bootstrap servers runs Runnel's broker in-process.

// embedded is an in-process broker owned by an App.
type embedded struct {
	b   *broker.Broker
	dir string
}

// startEmbedded starts a broker on a free loopback port with its data under
// dir/broker, and, unless noRegistry, its schema registry on another. Its
// group and transaction topics are small, and groups rebalance without the
// initial delay: the application is its only client.
func startEmbedded(ctx context.Context, dir string, noRegistry bool) (*embedded, error) {
	dir = filepath.Join(dir, "broker")
	cfg := broker.Config{
		DataDir:                         dir,
		Listen:                          "127.0.0.1:0",
		RegistryListen:                  "127.0.0.1:0",
		GroupInitialRebalanceDelay:      -1,
		OffsetsTopicPartitions:          1,
		TransactionStateTopicPartitions: 1,
	}
	if noRegistry {
		cfg.RegistryListen = ""
	}
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("stream: start embedded broker: %w", err)
	}
	if err := b.WaitGroupsLoaded(ctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("stream: start embedded broker: %w", err)
	}
	return &embedded{b: b, dir: dir}, nil
}

func (e *embedded) addr() string { return e.b.Addr() }

// registryURL is the base URL of the embedded broker's schema registry, or
// "" when it serves none.
func (e *embedded) registryURL() string {
	if a := e.b.RegistryAddr(); a != "" {
		return "http://" + a
	}
	return ""
}

func (e *embedded) close() error { return e.b.Close() }
