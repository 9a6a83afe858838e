package broker

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink safe for the broker's goroutines.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStartupTellsTheOperator restarts a broker whose log recovery is
// reported as slow (the report interval shortened to a microsecond): it
// logs the progress of recovery and a summary, and one start line with
// its version, node, listener and data dir.
func TestStartupTellsTheOperator(t *testing.T) {
	old := recoveryReportInterval
	recoveryReportInterval = time.Microsecond
	defer func() { recoveryReportInterval = old }()

	dir := t.TempDir()
	start := func(logs *lockedBuffer) *Broker {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := Start(ctx, Config{DataDir: dir, Listen: "127.0.0.1:0", NodeID: 7,
			OffsetsTopicPartitions: 2, TransactionStateTopicPartitions: 2,
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := start(&lockedBuffer{})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	var logs lockedBuffer
	b = start(&logs)
	defer b.Close()
	out := logs.String()
	for _, want := range []string{
		`msg="recovered partition logs" partitions=4 bytes=`,
		`msg="broker started" version=`,
		" node=7 listener=" + b.ln.Addr().String() + " ",
		" data_dir=" + dir + " metrics=off partitions=4",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("start-up log lacks %q:\n%s", want, out)
		}
	}
}
