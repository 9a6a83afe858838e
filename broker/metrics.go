package broker

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/log"
)

// metrics are the broker's Prometheus instruments. Per-partition gauges are
// read at scrape time by partitionCollector rather than kept up to date on
// every append.
type metrics struct {
	requests         *prometheus.CounterVec
	requestLatency   *prometheus.HistogramVec
	bytesIn          *prometheus.CounterVec
	bytesOut         *prometheus.CounterVec
	recordsIn        *prometheus.CounterVec
	recordsOut       *prometheus.CounterVec
	produceErrors    *prometheus.CounterVec
	connections      prometheus.Gauge
	badRequests      prometheus.Counter
	bytesInRequests  prometheus.Counter
	partitionsOpened prometheus.Counter
	segmentsDeleted  prometheus.Counter
	isrChanges       isrChangeCounters // replication_metrics.go
	ackWait          ackWaitHistograms // replication_metrics.go
	producePhases    producePhaseHistograms
	// logFlush times a partition's group commit (one WaitFlushed of its
	// high-watermark loop: the fdatasyncs of its dirty segments), as
	// Kafka's LogFlushRateAndTimeMs does.
	logFlush prometheus.Histogram

	// apiNames caches label values so the hot path does not format.
	apiNames map[int16]string
}

func newMetrics() *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_broker_requests_total", Help: "Requests served, by API.",
		}, []string{"api"}),
		requestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "runnel_broker_request_duration_seconds",
			Help:    "Time from a request's arrival to its response being ready, by API.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18),
		}, []string{"api"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_broker_topic_bytes_in_total", Help: "Record batch bytes appended, by topic.",
		}, []string{"topic"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_broker_topic_bytes_out_total", Help: "Record batch bytes fetched by consumers, by topic.",
		}, []string{"topic"}),
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_broker_topic_records_in_total", Help: "Records appended, by topic.",
		}, []string{"topic"}),
		recordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_broker_topic_records_out_total", Help: "Records fetched by consumers (counted per batch header), by topic.",
		}, []string{"topic"}),
		produceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_broker_produce_errors_total", Help: "Partition produce failures, by Kafka error.",
		}, []string{"error"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "runnel_broker_connections", Help: "Open client connections.",
		}),
		badRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runnel_broker_malformed_requests_total", Help: "Requests that could not be decoded; each closed its connection.",
		}),
		bytesInRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runnel_broker_request_bytes_total", Help: "Bytes of request frames received.",
		}),
		partitionsOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runnel_broker_partitions_opened_total", Help: "Partition logs opened.",
		}),
		segmentsDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runnel_broker_retention_segments_deleted_total", Help: "Segments deleted by retention.",
		}),
		isrChanges:    newISRChangeCounters(),
		ackWait:       newAckWaitHistograms(),
		producePhases: newProducePhaseHistograms(),
		logFlush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "runnel_broker_log_flush_seconds",
			Help:    "Time a partition's group commit took: the fdatasync of its appended bytes that acknowledgements wait for.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		apiNames: make(map[int16]string),
	}
	for k := range handlers {
		name := kmsg.NameForKey(k)
		m.apiNames[k] = name
		// Every series a dashboard plots exists from the start, at
		// zero, rather than appearing with the first request.
		m.requests.WithLabelValues(name)
		m.requestLatency.WithLabelValues(name)
	}
	return m
}

// addTopic makes the topic's series exist, at zero until it has traffic.
func (m *metrics) addTopic(topic string) {
	for _, v := range []*prometheus.CounterVec{m.bytesIn, m.bytesOut, m.recordsIn, m.recordsOut} {
		v.WithLabelValues(topic)
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.requests, m.requestLatency, m.bytesIn, m.bytesOut, m.recordsIn, m.recordsOut,
		m.produceErrors, m.connections, m.badRequests, m.bytesInRequests, m.partitionsOpened, m.segmentsDeleted,
		m.isrChanges.shrinks, m.isrChanges.expands, m.ackWait.vec, m.producePhases.vec, m.logFlush,
	}
}

func (m *metrics) observeRequest(key int16, d time.Duration) {
	name, ok := m.apiNames[key]
	if !ok {
		name = strconv.Itoa(int(key))
	}
	m.requests.WithLabelValues(name).Inc()
	m.requestLatency.WithLabelValues(name).Observe(d.Seconds())
}

// partitionCollector reports per-partition log state at scrape time.
type partitionCollector struct{ b *Broker }

var (
	descLogSize = prometheus.NewDesc("runnel_broker_log_size_bytes",
		"Bytes of segment files in a partition's log.", []string{"topic", "partition"}, nil)
	descLogEnd = prometheus.NewDesc("runnel_broker_log_end_offset",
		"A partition's log end offset.", []string{"topic", "partition"}, nil)
	descLogStart = prometheus.NewDesc("runnel_broker_log_start_offset",
		"A partition's log start offset.", []string{"topic", "partition"}, nil)
	descHW = prometheus.NewDesc("runnel_broker_high_watermark",
		"A partition's high watermark.", []string{"topic", "partition"}, nil)
	descCacheDropped = prometheus.NewDesc("runnel_broker_log_cache_dropped_bytes_total",
		"Bytes of a partition's log dropped from the page cache once every reader had fetched them (log.cache.drop.behind.enable).", []string{"topic", "partition"}, nil)
	descTailCacheBytes = prometheus.NewDesc("runnel_broker_direct_writes_cache_bytes",
		"Memory of the direct writes' cache (log.direct.writes.cache.bytes): allocated, and holding records (cached).", []string{"state"}, nil)
	descTailCacheRead = prometheus.NewDesc("runnel_broker_direct_writes_cache_read_bytes_total",
		"Bytes fetched from partitions with a direct writes' cache: found there (hit), or read from the log's files (miss).", []string{"result"}, nil)
	descCommitRing = prometheus.NewDesc("runnel_broker_log_commit_ring_writes_total",
		"Writes of appended records submitted through the commit ring, one io_uring for every partition: group commits (synchronized writes), and for topics with flush.messages above 1 the writes their acknowledgements wait for; none where io_uring is missing or refused, whose writes are made with pwritev2.", nil, nil)
	descDirectReads = prometheus.NewDesc("runnel_broker_direct_reads_total",
		"Fetches of log regions neither cache held, read from the files with O_DIRECT rather than through the page cache.", nil, nil)
	descDirectReadBytes = prometheus.NewDesc("runnel_broker_direct_read_bytes_total",
		"Bytes read from the log's files with O_DIRECT for fetches (whole blocks).", nil, nil)
)

func (c *partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLogSize
	ch <- descLogEnd
	ch <- descLogStart
	ch <- descHW
	ch <- descCacheDropped
	ch <- descTailCacheBytes
	ch <- descTailCacheRead
	ch <- descCommitRing
	ch <- descDirectReads
	ch <- descDirectReadBytes
}

func (c *partitionCollector) Collect(ch chan<- prometheus.Metric) {
	var tc log.TailCacheStats
	if c.b.tailCache != nil {
		tc = c.b.tailCache.Stats()
	}
	ch <- prometheus.MustNewConstMetric(descTailCacheBytes, prometheus.GaugeValue, float64(tc.Allocated), "allocated")
	ch <- prometheus.MustNewConstMetric(descTailCacheBytes, prometheus.GaugeValue, float64(tc.Cached), "cached")
	ch <- prometheus.MustNewConstMetric(descTailCacheRead, prometheus.CounterValue, float64(tc.HitBytes), "hit")
	ch <- prometheus.MustNewConstMetric(descTailCacheRead, prometheus.CounterValue, float64(tc.MissBytes), "miss")
	ch <- prometheus.MustNewConstMetric(descCommitRing, prometheus.CounterValue, float64(tc.RingWrites))
	var dr log.DirectReadStats
	if c.b.directReads != nil {
		dr = c.b.directReads.Stats()
	}
	ch <- prometheus.MustNewConstMetric(descDirectReads, prometheus.CounterValue, float64(dr.Reads))
	ch <- prometheus.MustNewConstMetric(descDirectReadBytes, prometheus.CounterValue, float64(dr.Bytes))
	for _, p := range c.b.parts.all() {
		part := strconv.Itoa(int(p.index))
		ch <- prometheus.MustNewConstMetric(descLogSize, prometheus.GaugeValue, float64(p.log.Size()), p.topic, part)
		ch <- prometheus.MustNewConstMetric(descLogEnd, prometheus.GaugeValue, float64(p.log.EndOffset()), p.topic, part)
		ch <- prometheus.MustNewConstMetric(descLogStart, prometheus.GaugeValue, float64(p.log.StartOffset()), p.topic, part)
		ch <- prometheus.MustNewConstMetric(descHW, prometheus.GaugeValue, float64(p.highWatermark()), p.topic, part)
		ch <- prometheus.MustNewConstMetric(descCacheDropped, prometheus.CounterValue, float64(p.log.CacheDropped()), p.topic, part)
	}
}
