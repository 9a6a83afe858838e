package runnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// HandlerResponse is what an error handler decides to do about a record.
type HandlerResponse int

const (
	// Fail stops processing with the error (Kafka Streams' FAIL).
	Fail HandlerResponse = iota
	// Continue skips the record and goes on (Kafka Streams' CONTINUE).
	Continue
)

func (r HandlerResponse) String() string {
	if r == Continue {
		return "continue"
	}
	return "fail"
}

// ErrorContext tells an error handler where the error happened and lets it
// produce records of its own.
type ErrorContext struct {
	// TaskID is the task the record belongs to; for a record of a global
	// store's topic, SubTopology is -1.
	TaskID topology.TaskID
	// Logger is the application's logger.
	Logger *slog.Logger

	produce func(*kgo.Record)
}

// Produce sends rec through the application's producer. Under exactly-once
// it is part of the transaction that commits the input offsets, so a record a
// handler writes for a skipped input record (a dead letter) is committed
// exactly when the skip is. A rec.Partition of -1 partitions by key. A failed
// produce is handled as any output's (see ProductionErrorHandler). From a
// ProductionHandler, the record is sent before the next commit.
func (c ErrorContext) Produce(rec *kgo.Record) { c.produce(rec) }

// DeserializationHandler decides what happens to an input record a source
// cannot deserialize (Kafka Streams' DeserializationExceptionHandler, set
// with deserialization.exception.handler). rec is the record as fetched; it
// must not be modified. Handlers run on the goroutine processing the
// record: a worker, or for a global store's topic the global updater.
type DeserializationHandler interface {
	HandleDeserializationError(ctx ErrorContext, rec *kgo.Record, err error) HandlerResponse
}

// DeserializationHandlerFunc adapts a function to a DeserializationHandler.
type DeserializationHandlerFunc func(ctx ErrorContext, rec *kgo.Record, err error) HandlerResponse

// HandleDeserializationError calls f.
func (f DeserializationHandlerFunc) HandleDeserializationError(ctx ErrorContext, rec *kgo.Record, err error) HandlerResponse {
	return f(ctx, rec, err)
}

// ProductionHandler decides what happens when the broker rejects an output
// record for what it is: too large for its topic (MESSAGE_TOO_LARGE), or an
// invalid record or timestamp (Kafka Streams' ProductionExceptionHandler,
// set with production.exception.handler). Other failures (fencing, lost
// connectivity past the retries) and failed changelog writes always fail,
// since skipping them would lose state. Handlers run on the producer's
// goroutines: they must be safe for concurrent use and must not block.
type ProductionHandler interface {
	HandleProductionError(ctx ErrorContext, rec *kgo.Record, err error) HandlerResponse
}

// ProductionHandlerFunc adapts a function to a ProductionHandler.
type ProductionHandlerFunc func(ctx ErrorContext, rec *kgo.Record, err error) HandlerResponse

// HandleProductionError calls f.
func (f ProductionHandlerFunc) HandleProductionError(ctx ErrorContext, rec *kgo.Record, err error) HandlerResponse {
	return f(ctx, rec, err)
}

// HandlerTopics is the optional interface of a handler that produces to
// topics of its own (a dead-letter topic): the application creates those
// missing when it starts, as it does its internal topics, with as many
// partitions as its widest source topic.
type HandlerTopics interface {
	HandlerTopics() []string
}

var (
	// LogAndFail stops processing at the first record that cannot be
	// deserialized, with an error naming its topic, partition and offset
	// (Kafka Streams' LogAndFailExceptionHandler). The default.
	LogAndFail DeserializationHandler = DeserializationHandlerFunc(func(ErrorContext, *kgo.Record, error) HandlerResponse { return Fail })
	// LogAndContinue logs a record that cannot be deserialized at Warn,
	// counts it (Metrics.DeserializationErrors,
	// runnel_stream_deserialization_errors_total) and skips it (Kafka
	// Streams' LogAndContinueExceptionHandler).
	LogAndContinue DeserializationHandler = DeserializationHandlerFunc(func(ErrorContext, *kgo.Record, error) HandlerResponse { return Continue })
	// ProductionFail stops processing when an output record is rejected
	// (Kafka Streams' DefaultProductionExceptionHandler). The default.
	ProductionFail ProductionHandler = ProductionHandlerFunc(func(ErrorContext, *kgo.Record, error) HandlerResponse { return Fail })
	// ProductionLogAndContinue logs a rejected output record at Warn,
	// counts it (Metrics.ProductionErrors,
	// runnel_stream_production_errors_total) and goes on without it.
	ProductionLogAndContinue ProductionHandler = ProductionHandlerFunc(func(ErrorContext, *kgo.Record, error) HandlerResponse { return Continue })
)

// Headers a dead-letter record carries besides the original record's, named
// as in Kafka Streams' dead-letter queue (KIP-1034).
const (
	HeaderErrorException = "__streams.errors.exception" // the error's Go type
	HeaderErrorMessage   = "__streams.errors.message"   // the error's text
	HeaderErrorTopic     = "__streams.errors.topic"     // the source record's topic
	HeaderErrorPartition = "__streams.errors.partition" // its partition, in decimal
	HeaderErrorOffset    = "__streams.errors.offset"    // its offset, in decimal
)

// DeadLetterQueue sends a record that cannot be deserialized, as it was
// read (key, value, timestamp and headers), to topic, adding headers with
// the error and the record's source topic, partition and offset (see
// HeaderErrorMessage), and goes on: Kafka Streams' dead-letter queue
// (errors.dead.letter.queue.topic.name, KIP-1034). The application creates
// topic if it is missing. Under exactly-once the dead letter commits in the
// same transaction as the input offset that skips the record.
func DeadLetterQueue(topic string) DeserializationHandler { return deadLetter{topic} }

type deadLetter struct{ topic string }

func (d deadLetter) HandlerTopics() []string { return []string{d.topic} }

func (d deadLetter) HandleDeserializationError(ctx ErrorContext, rec *kgo.Record, err error) HandlerResponse {
	dl := &kgo.Record{Topic: d.topic, Partition: -1, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp}
	dl.Headers = append(dl.Headers, rec.Headers...)
	dl.Headers = append(dl.Headers,
		kgo.RecordHeader{Key: HeaderErrorException, Value: []byte(fmt.Sprintf("%T", errors.Unwrap(err)))},
		kgo.RecordHeader{Key: HeaderErrorMessage, Value: []byte(err.Error())},
		kgo.RecordHeader{Key: HeaderErrorTopic, Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: HeaderErrorPartition, Value: []byte(strconv.Itoa(int(rec.Partition)))},
		kgo.RecordHeader{Key: HeaderErrorOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
	)
	ctx.Produce(dl)
	return Continue
}

// UncaughtErrorPolicy is what the application does when processing fails
// with an error no handler took care of: a processor's error or panic, a
// failed commit, a record a handler refused (Kafka Streams'
// StreamsUncaughtExceptionHandler).
type UncaughtErrorPolicy int

const (
	// ShutdownApplication stops processing; Err (and Run, and Close)
	// return the error and the state becomes Error (SHUTDOWN_APPLICATION,
	// here for this instance only). The default.
	ShutdownApplication UncaughtErrorPolicy = iota
	// ReplaceWorker closes the failed worker, rolling back its uncommitted
	// work (its open transaction is aborted), and starts a new one in its
	// place, which restores state and resumes from the committed offsets
	// (REPLACE_THREAD). Replacements back off exponentially from 100 ms to
	// 10 s, so a persistent failure does not spin; after
	// MaxWorkerReplacements failures in a row the application shuts down
	// with the last error. A worker that ran a minute before failing starts
	// the count (and the backoff) afresh.
	ReplaceWorker
)

func (p UncaughtErrorPolicy) String() string {
	if p == ReplaceWorker {
		return "replace_thread"
	}
	return "shutdown_application"
}

// MaxWorkerReplacements bounds the replacements ReplaceWorker makes for
// failures in a row.
const MaxWorkerReplacements = 10

// handleDeserialization asks the deserialization handler what to do with
// rec, which the task could not deserialize (err). It returns nil to skip
// the record, or the error to stop with.
func (r *runner) handleDeserialization(t *runTask, rec *kgo.Record, err error) error {
	err = fmt.Errorf("stream: task %s: record %s[%d] at offset %d: %w", t.task.ID(), rec.Topic, rec.Partition, rec.Offset, err)
	h := r.app.opts.DeserializationHandler
	if h == nil {
		h = LogAndFail
	}
	if h.HandleDeserializationError(r.errorContext(t), rec, err) != Continue {
		return err
	}
	r.log.Warn("stream: skipping a record that cannot be deserialized", "task", t.task.ID(),
		"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
	r.app.metrics.deserializationError(t.task.ID())
	return nil
}

func (r *runner) errorContext(t *runTask) ErrorContext {
	return ErrorContext{TaskID: t.task.ID(), Logger: r.log, produce: func(rec *kgo.Record) { r.produce(t, rec, false) }}
}

// isRecordError reports whether err rejects a record for what it is, the
// only produce failures a ProductionHandler may skip.
func isRecordError(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.InvalidTimestamp)
}

// produceFailed handles the failure of an output record. It runs in a
// produce callback. A record the production handler lets go is kept, to be
// sent once more on its own before the commit: a broker rejects a batch as
// a whole, so a record may have failed only for sharing a batch with one
// too large.
func (r *runner) produceFailed(t *runTask, rec *kgo.Record, changelog bool, err error) {
	err = fmt.Errorf("stream: produce to %s: %w", rec.Topic, err)
	h := r.app.opts.ProductionHandler
	if !changelog && h != nil && isRecordError(err) && r.askProductionHandler(h, t, rec, err) == Continue {
		r.mu.Lock()
		r.skippedProduce = append(r.skippedProduce, skippedRecord{t, rec, err})
		r.mu.Unlock()
		return
	}
	if isRecordError(err) {
		// Under exactly-once, an abort would only process the record
		// again to the same end.
		err = &rejectedError{err}
	}
	r.mu.Lock()
	if r.produceErr == nil {
		r.produceErr = err
	}
	r.mu.Unlock()
}

// rejectedError is a produce error for a record the broker rejected, which
// the production handler did not skip: processing stops with it.
type rejectedError struct{ error }

func (e *rejectedError) Unwrap() error { return e.error }

// askProductionHandler calls h in a produce callback, where a panic would
// crash the process: a panicking handler fails.
func (r *runner) askProductionHandler(h ProductionHandler, t *runTask, rec *kgo.Record, err error) (resp HandlerResponse) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("stream: production error handler panicked", "task", t.task.ID(), "panic", p)
			resp = Fail
		}
	}()
	// A produce from a callback could block the producer that runs it:
	// the handler's records wait in r.deferred for the commit.
	ctx := ErrorContext{TaskID: t.task.ID(), Logger: r.log, produce: func(rec *kgo.Record) {
		r.mu.Lock()
		r.deferred = append(r.deferred, rec)
		r.mu.Unlock()
	}}
	return h.HandleProductionError(ctx, rec, err)
}

type skippedRecord struct {
	task *runTask
	rec  *kgo.Record
	err  error
}

// resendSkipped sends the records the production handler produced, then
// sends once more, one at a time, the records it let go since the last
// commit: those that fail alone are skipped
// for good (logged and counted), the others had only shared a batch with
// a bad record. The caller has flushed the producer, so each goes in a
// batch of its own.
func (r *runner) resendSkipped(ctx context.Context) error {
	r.mu.Lock()
	skipped, deferred := r.skippedProduce, r.deferred
	r.skippedProduce, r.deferred = nil, nil
	r.mu.Unlock()
	for _, rec := range deferred {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.cl.ProduceSync(pctx, rec).FirstErr()
		cancel()
		if err != nil {
			return fmt.Errorf("stream: produce to %s for the production error handler: %w", rec.Topic, err)
		}
	}
	for _, s := range skipped {
		rec := &kgo.Record{Topic: s.rec.Topic, Partition: s.rec.Partition, Key: s.rec.Key, Value: s.rec.Value,
			Timestamp: s.rec.Timestamp, Headers: s.rec.Headers}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.cl.ProduceSync(pctx, rec).FirstErr()
		cancel()
		switch {
		case err == nil:
		case isRecordError(err):
			r.log.Warn("stream: skipping an output record the broker rejected", "task", s.task.key, "topic", rec.Topic, "err", s.err)
			r.app.metrics.productionError(topology.TaskID{SubTopology: s.task.key.sub, Partition: s.task.key.part})
		default:
			return fmt.Errorf("stream: produce to %s: %w", rec.Topic, err)
		}
	}
	return nil
}

// ensureHandlerTopics creates the topics the error handlers write to that
// are missing (see HandlerTopics), with as many partitions as the widest
// source topic.
func ensureHandlerTopics(ctx context.Context, adm *kadm.Client, o AppOptions, parts topology.Partitions) error {
	var topics []string
	for _, h := range []any{o.DeserializationHandler, o.ProductionHandler} {
		if ht, ok := h.(HandlerTopics); ok {
			topics = append(topics, ht.HandlerTopics()...)
		}
	}
	if len(topics) == 0 {
		return nil
	}
	existing, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("stream: list topics: %w", err)
	}
	n := 1
	for _, p := range parts.Tasks {
		n = max(n, p)
	}
	for _, t := range topics {
		if d, ok := existing[t]; ok && d.Err == nil {
			continue
		}
		if err := createTopic(ctx, adm, t, n, int16(o.ReplicationFactor), nil); err != nil {
			return err
		}
	}
	return nil
}

// updateLag records the lag of a fetched partition for the tasks reading
// it: its end (the high watermark, or the last stable offset under
// exactly-once, which reads committed records only) minus the position
// after the last record fetched. A partition fetched with no records keeps
// the position it had. It returns the end.
func (r *runner) updateLag(p kgo.FetchTopicPartition) (end int64) {
	end = p.HighWatermark
	if r.sess != nil {
		end = p.LastStableOffset
	}
	for _, sub := range r.routes[p.Topic] {
		t, ok := r.tasks[taskKey{sub, p.Partition}]
		if !ok {
			continue
		}
		r.checkReset(t, p)
		if n := len(p.Records); n > 0 {
			t.m.next[p.Topic] = p.Records[n-1].Offset + 1
		}
		if next, ok := t.m.next[p.Topic]; ok {
			t.m.setLag(p.Topic, end-next)
		}
	}
	return end
}
