package broker

import (
	"runtime/debug"
	"sync"
	"time"
)

// What the broker tells the operator at start: its version, node id,
// listeners and data dir in one line once clients can connect, and, when
// opening the partition logs takes longer than a second (recovery after a
// crash scans every unflushed segment), their progress every second and a
// summary. Torn tails truncated by recovery are logged by the log itself,
// one warning per segment.

// recoveryReportInterval is how often log recovery progress is logged
// once it has taken that long. A variable for tests only.
var recoveryReportInterval = time.Second

// Version is the broker's version: the module version it was built as, or
// the VCS revision of a development build, or "devel".
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// openLogs opens the partition logs the metadata assigns to this node,
// reporting progress while it takes more than recoveryReportInterval.
func (b *Broker) openLogs() error {
	total := 0
	for _, t := range b.meta.Cluster().Topics {
		for _, mp := range t.Partitions {
			if containsID(mp.Replicas, b.cfg.NodeID) {
				total++
			}
		}
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(recoveryReportInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				b.logger.Info("recovering partition logs", "partitions", b.parts.opened.Load(), "of", total,
					"bytes", b.parts.openedBytes.Load(), "elapsed", time.Since(start).Round(time.Millisecond))
			}
		}
	}()
	err := b.parts.reconcile()
	close(done)
	wg.Wait()
	if took := time.Since(start); took >= recoveryReportInterval {
		b.logger.Info("recovered partition logs", "partitions", b.parts.opened.Load(), "bytes", b.parts.openedBytes.Load(),
			"took", took.Round(time.Millisecond))
	}
	return err
}
