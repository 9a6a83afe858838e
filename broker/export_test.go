package broker

import (
	"errors"

	dto "github.com/prometheus/client_model/go"
)

// This file gives the package's tests ways to run background work now,
// rather than wait for its check interval. They are not part of the
// public API: a user sets the interval in Config instead.

// DirectWritesCacheReads is what fetches found in the direct writes'
// cache and read from files instead, in bytes (zero without a cache).
func (b *Broker) DirectWritesCacheReads() (hit, miss int64) {
	if b.tailCache == nil {
		return 0, 0
	}
	st := b.tailCache.Stats()
	return st.HitBytes, st.MissBytes
}

// DirectReads is how many fetched regions were read with O_DIRECT, and
// their bytes read (zero with DisableDirectWrites).
func (b *Broker) DirectReads() (reads, bytes int64) {
	if b.directReads == nil {
		return 0, 0
	}
	st := b.directReads.Stats()
	return st.Reads, st.Bytes
}

// CleanLogs cleans every compacted partition that is due, now and
// unthrottled, by the broker's clock.
func (b *Broker) CleanLogs() error {
	c := b.cleaner.Load()
	if c == nil {
		return errors.New("broker: cleaner not running")
	}
	return c.CleanAll(b.cfg.Now())
}

// EnforceRetention runs one retention pass over every local partition:
// segments past retention are deleted, and the state of producers idle
// for producer.id.expiration.ms is forgotten.
func (b *Broker) EnforceRetention() { b.parts.enforceRetention(b.cfg.Now()) }

// ExpireGroupOffsets runs one offset expiry pass.
func (b *Broker) ExpireGroupOffsets() { b.groups.ExpireOffsets() }

// AbortTimedOutTransactions runs one pass of the transaction timeout
// check.
func (b *Broker) AbortTimedOutTransactions() { b.txns.AbortTimedOut() }

// ExpireTransactionalIDs runs one pass of transactional id expiry
// (transactional.id.expiration.ms): ids idle that long with no
// transaction open are forgotten, and tombstoned in __transaction_state.
func (b *Broker) ExpireTransactionalIDs() { b.txns.ExpireIDs() }

// Test hooks on the limits (limits.go, budget.go, conn.go).

// RequestBytesInUse is the part of queued.max.request.bytes taken by
// requests read but not yet answered.
func (b *Broker) RequestBytesInUse() int64 { return b.requestBytes.inUse() }

// FetchResponseBytesInUse is the part of queued.max.response.bytes held
// by Fetch responses read but not yet written, and FetchResponseBytesPeak
// the most it has been.
func (b *Broker) FetchResponseBytesInUse() int64 { return b.fetchBytes.inUse() }

// FetchResponseBytesPeak: see FetchResponseBytesInUse.
func (b *Broker) FetchResponseBytesPeak() int64 { return b.fetchBytes.maxInUse() }

// OpenConnections is the number of client connections being served.
func (b *Broker) OpenConnections() int {
	b.connsMu.Lock()
	defer b.connsMu.Unlock()
	return len(b.conns)
}

// FetchedBytes is the record bytes Fetch has read for topic.
func (b *Broker) FetchedBytes(topic string) float64 {
	var m dto.Metric
	if err := b.metrics.bytesOut.WithLabelValues(topic).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
