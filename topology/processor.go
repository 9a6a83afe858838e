package topology

import (
	"fmt"
	"time"
)

// Processor is a node of the processor graph. The task that owns it calls Init
// once, then Process for each record it receives from a parent, then Close.
// All calls come from one goroutine; a processor needs no locking.
//
// Process forwards zero or more records to its children through the Context
// given to Init. An error returned by Process fails the task.
type Processor[KIn, VIn, KOut, VOut any] interface {
	Init(ctx Context[KOut, VOut]) error
	Process(r Record[KIn, VIn]) error
	Close() error
}

// ProcessorFunc makes a stateless Processor from a function; Init and Close do
// nothing.
type ProcessorFunc[KIn, VIn, KOut, VOut any] func(ctx Context[KOut, VOut], r Record[KIn, VIn]) error

// Supplier returns a supplier of processors that call f.
func (f ProcessorFunc[KIn, VIn, KOut, VOut]) Supplier() func() Processor[KIn, VIn, KOut, VOut] {
	return func() Processor[KIn, VIn, KOut, VOut] { return &funcProcessor[KIn, VIn, KOut, VOut]{f: f} }
}

type funcProcessor[KIn, VIn, KOut, VOut any] struct {
	f   ProcessorFunc[KIn, VIn, KOut, VOut]
	ctx Context[KOut, VOut]
}

func (p *funcProcessor[KIn, VIn, KOut, VOut]) Init(ctx Context[KOut, VOut]) error {
	p.ctx = ctx
	return nil
}
func (p *funcProcessor[KIn, VIn, KOut, VOut]) Process(r Record[KIn, VIn]) error { return p.f(p.ctx, r) }
func (p *funcProcessor[KIn, VIn, KOut, VOut]) Close() error                     { return nil }

// PunctuationType says which clock drives a scheduled punctuation.
type PunctuationType int

const (
	// StreamTime punctuations fire as the task's stream time (the largest
	// record timestamp it has seen) passes their schedule. They never fire
	// while no records arrive.
	StreamTime PunctuationType = iota
	// WallClockTime punctuations fire as the driver advances wall-clock time.
	WallClockTime
)

func (t PunctuationType) String() string {
	if t == WallClockTime {
		return "wall-clock-time"
	}
	return "stream-time"
}

// Punctuator is called when a scheduled punctuation fires, with the time of
// the clock that drives it (milliseconds since the Unix epoch).
type Punctuator func(timestamp int64) error

// Cancellable cancels a scheduled punctuation.
type Cancellable interface{ Cancel() }

// DropReason says why a record was dropped instead of processed.
type DropReason string

// Reasons records are dropped, as counted by Task.Dropped.
const (
	DropLate             DropReason = "late"              // past a window's grace period
	DropInvalidTimestamp DropReason = "invalid-timestamp" // negative extracted timestamp
	DropNullKey          DropReason = "null-key"          // a null key where a key is needed
	DropExpired          DropReason = "expired"           // outside a store's retention
)

// Context is a processor's view of its task. It is valid from Init until
// Close, and only on the goroutine driving the task.
type Context[K, V any] interface {
	// Forward sends r to every child of the processor, depth first: when it
	// returns, the children have processed r. A child's error fails the task;
	// Task.Process reports it, and later forwards in the same call do nothing.
	Forward(r Record[K, V])
	// ForwardTo sends r to the named child only.
	ForwardTo(child string, r Record[K, V])
	// Metadata describes the input record being processed; ok is false
	// during punctuation and for records a punctuation forwards.
	Metadata() (m RecordMetadata, ok bool)
	// TaskID is the task running the processor.
	TaskID() TaskID
	// ApplicationID is the application id internal topics are prefixed with.
	ApplicationID() string
	// StreamTime is the task's stream time: the largest timestamp of the
	// records it has read, or -1 before the first.
	StreamTime() int64
	// WallClockTime is the wall-clock time as last advanced by the driver.
	WallClockTime() int64
	// Schedule calls fn every interval of the given clock until cancelled.
	Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) Cancellable
	// Store returns the named state store, which must be connected to this
	// processor, or nil. Its type depends on the store's kind: see StoreSpec.
	Store(name string) any
	// Drop counts a record the processor chose not to process (see Task.Dropped).
	Drop(reason DropReason)
}

// rawProcessor is the untyped form every node runs as.
type rawProcessor = Processor[any, any, any, any]

// rawContext is the untyped form of every node's context.
type rawContext = Context[any, any]

// asType converts an untyped key or value back to T. nil (a null) becomes the
// zero T.
func asType[T any](v any, what string) (T, error) {
	if v == nil {
		var zero T
		return zero, nil
	}
	t, ok := v.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("topology: %s has type %T, processor expects %T", what, v, zero)
	}
	return t, nil
}

// typedProcessor runs a typed processor as a raw one. Between typed nodes
// of matching types records also travel typed (see typedIn): boxing a key
// and a value into a Record[any, any] costs two allocations per record and
// node, which were the largest part of what a stateless pipeline allocated.
type typedProcessor[KIn, VIn, KOut, VOut any] struct {
	p Processor[KIn, VIn, KOut, VOut]
}

func adapt[KIn, VIn, KOut, VOut any](p Processor[KIn, VIn, KOut, VOut]) rawProcessor {
	if raw, ok := any(p).(rawProcessor); ok {
		return raw
	}
	return typedProcessor[KIn, VIn, KOut, VOut]{p: p}
}

func (t typedProcessor[KIn, VIn, KOut, VOut]) Init(ctx rawContext) error {
	tc := typedContext[KOut, VOut]{rawContext: ctx}
	if nc, ok := ctx.(*nodeContext); ok {
		tc.fwd = newForwarder[KOut, VOut](nc.in)
	}
	return t.p.Init(tc)
}

func (t typedProcessor[KIn, VIn, KOut, VOut]) Process(r Record[any, any]) error {
	k, err := asType[KIn](r.Key, "key")
	if err != nil {
		return err
	}
	v, err := asType[VIn](r.Value, "value")
	if err != nil {
		return err
	}
	return t.p.Process(Record[KIn, VIn]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
}

func (t typedProcessor[KIn, VIn, KOut, VOut]) Close() error { return t.p.Close() }

// typedIn implements typedNode: the processor at in takes a Record[KIn,
// VIn] as it is.
func (t typedProcessor[KIn, VIn, KOut, VOut]) typedIn(in *nodeInst) any {
	return func(r Record[KIn, VIn]) {
		if in.stopped() {
			return
		}
		if err := t.p.Process(r); err != nil {
			in.processorFailed(err)
		}
	}
}

// typedNode is a node's processor or sink that can take records of its
// input types unboxed: typedIn returns, for its instance in, a
// func(Record[K, V]) for those types.
type typedNode interface {
	typedIn(in *nodeInst) any
}

// forwarder sends a node's Record[K, V] output to its children: unboxed
// to those that take a Record[K, V] (nodeInst.typed), boxed into a
// Record[any, any] to the others, exactly as Forward did before.
type forwarder[K, V any] struct {
	children []func(Record[K, V])
	byName   map[string]func(Record[K, V])
}

func newForwarder[K, V any](in *nodeInst) *forwarder[K, V] {
	f := &forwarder[K, V]{byName: make(map[string]func(Record[K, V]), len(in.children))}
	for _, c := range in.children {
		send := receiver[K, V](c)
		f.children = append(f.children, send)
		f.byName[c.n.name] = send
	}
	return f
}

// receiver returns how c takes a Record[K, V].
func receiver[K, V any](c *nodeInst) func(Record[K, V]) {
	if send, ok := c.typed.(func(Record[K, V])); ok {
		return send
	}
	return func(r Record[K, V]) { c.process(untyped(r)) }
}

func (f *forwarder[K, V]) forward(r Record[K, V]) {
	for _, send := range f.children {
		send(r)
	}
}

type typedContext[K, V any] struct {
	rawContext
	fwd *forwarder[K, V] // nil: through rawContext, boxed
}

func (c typedContext[K, V]) Forward(r Record[K, V]) {
	if c.fwd != nil {
		c.fwd.forward(r)
		return
	}
	c.rawContext.Forward(untyped(r))
}

func (c typedContext[K, V]) ForwardTo(child string, r Record[K, V]) {
	if c.fwd != nil {
		if send, ok := c.fwd.byName[child]; ok {
			send(r)
			return
		}
	}
	c.rawContext.ForwardTo(child, untyped(r))
}

// ForwardNullValue forwards r's key, timestamp and headers with a null
// value, which a Record[K, V] cannot hold unless V is an interface type:
// a sink writes a tombstone, a raw (any) child sees nil, and a typed child
// the zero V, as when a null comes out of a raw processor. A typed
// processor whose output can be a deletion (a table's update turned into
// a stream) forwards the rest unboxed with Forward. ctx is the context
// the processor's Init got; in any other, the record is forwarded with the
// zero V.
func ForwardNullValue[K, V any](ctx Context[K, V], r Record[K, V]) {
	null := Record[any, any]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers}
	switch c := any(ctx).(type) {
	case typedContext[K, V]:
		c.rawContext.Forward(null)
	case rawContext:
		c.Forward(null)
	default:
		var zero V
		r.Value = zero
		ctx.Forward(r)
	}
}

func untyped[K, V any](r Record[K, V]) Record[any, any] {
	return Record[any, any]{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers}
}
