package broker

import dto "github.com/prometheus/client_model/go"

// Test hooks on the limits (limits.go, budget.go, conn.go).

// RequestBytesInUse is the part of queued.max.request.bytes taken by
// requests read but not yet answered.
func (b *Broker) RequestBytesInUse() int64 { return b.requestBytes.inUse() }

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
