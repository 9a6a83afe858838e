package runnel

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/runnel-dev/runnel/topology"
)

// Worker replacement (UncaughtError(ReplaceWorker)) backs off from
// replaceBackoffMin to replaceBackoffMax; a worker that ran healthyRun
// before failing starts the count of failures in a row afresh. Variables
// for tests.
var (
	replaceBackoffMin = 100 * time.Millisecond
	replaceBackoffMax = 10 * time.Second
	healthyRun        = time.Minute
)

// runWorker runs worker r until ctx is done or it fails. Under
// ReplaceWorker a failed worker (closed by its own run, its transaction
// aborted) is replaced by a new one from newWorker, after a backoff, up to
// MaxWorkerReplacements times in a row.
func (a *App) runWorker(ctx context.Context, r *runner, newWorker func() (*runner, error)) error {
	backoff, failures := replaceBackoffMin, 0
	w := r.worker // r is nil while a replacement cannot be made
	for {
		started := time.Now()
		err := runRecovered(ctx, r)
		if err == nil || ctx.Err() != nil || a.opts.UncaughtErrorPolicy != ReplaceWorker {
			return err
		}
		if time.Since(started) >= healthyRun {
			backoff, failures = replaceBackoffMin, 0
		}
		for {
			failures++
			if failures > MaxWorkerReplacements {
				return fmt.Errorf("stream: %d worker replacements in a row failed: %w", MaxWorkerReplacements, err)
			}
			a.opts.Logger.Error("stream: worker failed; replacing it", "err", err, "backoff", backoff, "failures_in_a_row", failures)
			a.workerSettling(w)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, replaceBackoffMax)
			if r, err = newWorker(); err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
		}
		a.metrics.replacements.Add(1)
		a.metrics.prom.replacements.Inc()
	}
}

// runRecovered runs r, turning a panic that escapes it into an error: a
// bug must not crash the process. The runner's own deferred close runs
// while the panic unwinds.
func runRecovered(ctx context.Context, r *runner) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("stream: %w: %v\n%s", topology.ErrPanic, p, debug.Stack())
		}
	}()
	return r.run(ctx)
}
