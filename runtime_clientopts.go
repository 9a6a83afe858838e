package runnel

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The runtime's clients find a moved partition leader or coordinator as
// soon as Kafka's Java clients would. franz-go's defaults are slower
// there: it refreshes metadata at most every 5 s (metadata.min.age), so a
// client whose first refresh after a broker died came before the
// controller fenced that broker (broker.session.timeout.ms) keeps the dead
// leader for up to 5 s more, and it backs off retries from 250 ms to
// 2.5 s. Java refreshes metadata on a failed request after its retry
// backoff, retry.backoff.ms (100 ms) growing to retry.backoff.max.ms
// (1 s). With franz-go's defaults an exactly-once App on a test cluster
// (session timeout 1 s) took 5-7.3 s to commit again after a broker was
// killed, against 2.4-4.2 s with these options (the broker's fencing and
// the new leader's first acks=all answer are most of the rest).

// clientRecoveryOpts are the options for it.
func clientRecoveryOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryBackoffFn(retryBackoff),
	}
}

// retryBackoff is Java's retry backoff for the tries-th retry: 100 ms
// doubling to at most 1 s, with ±20% jitter so that clients retrying
// together spread out.
func retryBackoff(tries int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < tries && d < time.Second; i++ {
		d *= 2
	}
	d = min(d, time.Second)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// clientLogger passes a Kafka client's warnings and errors to the
// application's logger: a request a broker keeps failing, a group the
// client cannot join, a transaction it cannot end. Without them a stall
// inside the client (an End waiting out its whole timeout while a
// coordinator moves) leaves nothing in the logs but its end. The
// client's info and debug logs (every metadata refresh, every join) stay
// out.
type clientLogger struct{ l *slog.Logger }

func (c clientLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (c clientLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var lv slog.Level
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	default:
		return
	}
	c.l.Log(context.Background(), lv, "kafka client: "+msg, keyvals...)
}

// backoff spaces the tries of a call that a changing cluster (a moving
// leader or coordinator, a broker down) fails: 50 ms doubling to 1 s.
type backoff struct{ d time.Duration }

// wait sleeps the next interval, reporting false if ctx ends first.
func (b *backoff) wait(ctx context.Context) bool {
	b.d = min(max(2*b.d, 50*time.Millisecond), time.Second)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
