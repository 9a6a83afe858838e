package broker

import "github.com/prometheus/client_golang/prometheus"

// producePhaseHistograms time the parts of a Produce's stay in the broker
// other than its acknowledgement (runnel_broker_produce_ack_wait_seconds
// has that): with the request duration alone, a produce that took 5 ms
// could have waited for memory, for a processor to append it, or behind
// the connection's earlier requests, whose responses go first. Only
// Produce requests are timed this way; they read the clock a few times
// each and carry the bulk of the bytes.
type producePhaseHistograms struct {
	vec                           *prometheus.HistogramVec
	read, append, queued, respond prometheus.Observer
}

func newProducePhaseHistograms() producePhaseHistograms {
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "runnel_broker_produce_phase_seconds",
		Help: "Where Produce requests spent their time in the broker, by phase: read (waiting for the request memory budget and reading the frame), " +
			"append (validating and appending the batches), queued (behind the connection's earlier requests, answered in order), " +
			"respond (encoding and writing the response). The wait for the acknowledgement is runnel_broker_produce_ack_wait_seconds.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18),
	}, []string{"phase"})
	// Resolved once: the produce path observes without a label lookup.
	return producePhaseHistograms{vec: vec,
		read: vec.WithLabelValues("read"), append: vec.WithLabelValues("append"),
		queued: vec.WithLabelValues("queued"), respond: vec.WithLabelValues("respond")}
}

func (h producePhaseHistograms) observe(t produceTimes) {
	h.read.Observe(t.read.Seconds())
	h.append.Observe(t.append.Seconds())
	h.queued.Observe(t.queued.Seconds())
	h.respond.Observe(t.respond.Seconds())
}
