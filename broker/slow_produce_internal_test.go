package broker

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// A slow Produce is logged with where its time went, once per
// connection every slowProduceLogEvery; a quick one is not.
func TestSlowProduceLogged(t *testing.T) {
	var out bytes.Buffer
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &conn{b: &Broker{logger: slog.New(slog.NewTextHandler(&out, nil))}, nc: a}
	now := time.Now()
	quick := &request{key: 0, received: now.Add(-10 * time.Millisecond), handled: now.Add(-9 * time.Millisecond)}
	c.checkSlowProduce(timeProduce(quick, now.Add(-8*time.Millisecond), now.Add(-time.Millisecond), now), now)
	if out.Len() != 0 {
		t.Fatalf("a 10 ms produce was logged: %s", out.String())
	}
	// 3 s in all: 2 s waiting for the acknowledgement, 0.5 s for the
	// budget.
	slow := &request{key: 0, budgetWait: 500 * time.Millisecond, received: now.Add(-2500 * time.Millisecond), handled: now.Add(-2400 * time.Millisecond)}
	c.checkSlowProduce(timeProduce(slow, now.Add(-2100*time.Millisecond), now.Add(-100*time.Millisecond), now), now)
	line := out.String()
	for _, want := range []string{"slow produce", "budget_and_read=500ms", "append=100ms", "queued=300ms", "ack_wait=2s", "write=100ms"} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %q", line, want)
		}
	}
	if !strings.Contains(line, "total=3") {
		t.Errorf("log %q lacks the total of about 3s", line)
	}
	out.Reset()
	c.checkSlowProduce(timeProduce(slow, now.Add(-2100*time.Millisecond), now.Add(-100*time.Millisecond), now), now)
	if out.Len() != 0 {
		t.Fatalf("logged twice within %v: %s", slowProduceLogEvery, out.String())
	}
}
