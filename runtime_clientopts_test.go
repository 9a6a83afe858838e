package runnel

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// retryBackoff follows Java's: 100 ms doubling to 1 s, within ±20%.
func TestRetryBackoff(t *testing.T) {
	for _, c := range []struct {
		tries int
		base  time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {30, time.Second}} {
		for range 100 {
			d := retryBackoff(c.tries)
			if lo, hi := c.base*8/10, c.base*12/10; d < lo || d > hi {
				t.Fatalf("retryBackoff(%d) = %v, want %v..%v", c.tries, d, lo, hi)
			}
		}
	}
}

// The clients' warnings and errors reach the application's logger at the
// same level, marked as the client's; their info and debug logs do not.
func TestClientLogger(t *testing.T) {
	var buf bytes.Buffer
	l := clientLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if l.Level() != kgo.LogLevelWarn {
		t.Fatalf("level %v, want warn", l.Level())
	}
	l.Log(kgo.LogLevelWarn, "unable to end transaction", "err", "NOT_COORDINATOR")
	l.Log(kgo.LogLevelError, "fatal", "broker", 2)
	l.Log(kgo.LogLevelInfo, "metadata refresh")
	l.Log(kgo.LogLevelDebug, "fetched")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines logged, want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{`level=WARN msg="kafka client: unable to end transaction" err=NOT_COORDINATOR`, `level=ERROR msg="kafka client: fatal" broker=2`} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q lacks %q", i, lines[i], want)
		}
	}
}
