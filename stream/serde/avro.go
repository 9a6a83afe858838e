package serde

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/internal/avroschema"
)

// Avro in Confluent's wire format: a record's bytes are a magic byte 0,
// the schema's registry id as 4 big-endian bytes, then the Avro binary
// encoding of the value. A serializer registers its schema with a schema
// registry (Confluent's, or a Runnel broker's --registry-listen) on its
// first write and keeps the id; a deserializer looks up the writer's
// schema by the id in the bytes, once per id, and resolves it to its own
// schema by Avro's rules (fields added with defaults, removed, promoted),
// so a reader reads data written with an older or newer schema of the
// subject.

// ErrAvroFormat is returned for bytes that are not Confluent's Avro wire
// format: too short, or a magic byte other than 0.
var ErrAvroFormat = errors.New("serde: avro: not Confluent's wire format")

// AvroRegistry is what an Avro serde asks of a schema registry.
// franz-go's *sr.Client is one; LazyRegistry makes one when first used.
type AvroRegistry interface {
	CreateSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error)
	LookupSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error)
	SchemaByID(ctx context.Context, id int) (sr.Schema, error)
}

// LazyRegistry is a registry client made by connect on first use, and
// made again after connect failed. It serves an application whose
// registry address is known only once it runs: an App on its embedded
// broker, whose RegistryURL is set by Start, after the topology (and its
// serdes) was built:
//
//	var app *runnel.App
//	reg := serde.LazyRegistry(func() (*sr.Client, error) { return sr.NewClient(sr.URLs(app.RegistryURL())) })
func LazyRegistry(connect func() (*sr.Client, error)) AvroRegistry {
	return &lazyRegistry{connect: connect}
}

type lazyRegistry struct {
	connect func() (*sr.Client, error)
	mu      sync.Mutex // guards cl
	cl      *sr.Client
}

func (l *lazyRegistry) client() (*sr.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cl != nil {
		return l.cl, nil
	}
	cl, err := l.connect()
	if err != nil {
		return nil, fmt.Errorf("serde: avro: registry client: %w", err)
	}
	l.cl = cl
	return cl, nil
}

func (l *lazyRegistry) CreateSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error) {
	cl, err := l.client()
	if err != nil {
		return sr.SubjectSchema{}, err
	}
	return cl.CreateSchema(ctx, subject, s)
}

func (l *lazyRegistry) LookupSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error) {
	cl, err := l.client()
	if err != nil {
		return sr.SubjectSchema{}, err
	}
	return cl.LookupSchema(ctx, subject, s)
}

func (l *lazyRegistry) SchemaByID(ctx context.Context, id int) (sr.Schema, error) {
	cl, err := l.client()
	if err != nil {
		return sr.Schema{}, err
	}
	return cl.SchemaByID(ctx, id)
}

// AvroOption configures an Avro serde.
type AvroOption func(*avroConfig)

type avroConfig struct {
	subject      string
	autoRegister bool
	timeout      time.Duration
}

// AvroSubject is the subject the schema is registered (or looked up)
// under on the first write. With Confluent's default TopicNameStrategy it
// is "<topic>-value" (or "-key"). Required to serialize.
func AvroSubject(subject string) AvroOption {
	return func(c *avroConfig) { c.subject = subject }
}

// AvroAutoRegister says whether the first write registers the schema
// (default true, Confluent's auto.register.schemas) or only looks it up,
// failing when the subject does not have it.
func AvroAutoRegister(on bool) AvroOption {
	return func(c *avroConfig) { c.autoRegister = on }
}

// AvroRegistryTimeout bounds each call to the registry. Default 30s.
func AvroRegistryTimeout(d time.Duration) AvroOption {
	return func(c *avroConfig) { c.timeout = d }
}

// AvroGeneric returns a serde of Avro records as maps (goavro's native
// form: field name to value; a union value is nil or a one-entry map from
// the branch's type name to its value), with schema, an Avro record
// schema, as the reader and writer schema. cl is a registry client, such
// as sr.NewClient(sr.URLs(url)), or LazyRegistry's.
func AvroGeneric(cl AvroRegistry, schema string, opts ...AvroOption) (Serde[map[string]any], error) {
	return newAvro(cl, schema, opts)
}

// Avro returns a serde of T as Avro records: to and from convert between
// T and the record's map (see AvroGeneric) and the map goes over the wire
// as AvroGeneric's does.
func Avro[T any](cl AvroRegistry, schema string, to func(T) (map[string]any, error), from func(map[string]any) (T, error), opts ...AvroOption) (Serde[T], error) {
	g, err := newAvro(cl, schema, opts)
	if err != nil {
		return nil, err
	}
	if to == nil || from == nil {
		return nil, errors.New("serde: avro: the conversion functions are required")
	}
	return Func(func(v T) ([]byte, error) {
		m, err := to(v)
		if err != nil {
			return nil, fmt.Errorf("serde: avro: %w", err)
		}
		return g.Serialize(m)
	}, func(b []byte) (T, error) {
		m, err := g.Deserialize(b)
		if err != nil {
			var zero T
			return zero, err
		}
		return from(m)
	}), nil
}

type avroSerde struct {
	cfg    avroConfig
	cl     AvroRegistry
	schema string
	parsed *avroschema.Parsed

	mu sync.RWMutex // guards the following
	// id is the registry id of schema under the subject; 0 until the
	// first write found it.
	id int
	// writers caches, by id, what reading that id's data needs.
	writers map[uint32]*avroWriter
}

// avroWriter reads data written with one writer schema.
type avroWriter struct {
	codec *goavro.Codec
	// proj resolves to the reader's schema; nil when the writer's schema
	// is the reader's.
	proj *avroschema.Projector
}

func newAvro(cl AvroRegistry, schema string, opts []AvroOption) (*avroSerde, error) {
	cfg := avroConfig{autoRegister: true, timeout: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cl == nil {
		return nil, errors.New("serde: avro: a registry client is required")
	}
	p, err := avroschema.ParseChecked(schema, nil)
	if err != nil {
		return nil, fmt.Errorf("serde: %w", err)
	}
	if p.Root.Kind != avroschema.Record {
		return nil, fmt.Errorf("serde: avro: the schema is a %s, not a record", p.Root.Kind)
	}
	return &avroSerde{cfg: cfg, cl: cl, schema: schema, parsed: p, writers: map[uint32]*avroWriter{}}, nil
}

func (a *avroSerde) String() string { return "Avro" }

// schemaID returns the id of the serde's schema, registering or looking
// it up on first use.
func (a *avroSerde) schemaID() (int, error) {
	a.mu.RLock()
	id := a.id
	a.mu.RUnlock()
	if id != 0 {
		return id, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.id != 0 {
		return a.id, nil
	}
	if a.cfg.subject == "" {
		return 0, errors.New("serde: avro: no subject to register the schema under (AvroSubject)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.timeout)
	defer cancel()
	s := sr.Schema{Schema: a.schema, Type: sr.TypeAvro}
	var ss sr.SubjectSchema
	var err error
	if a.cfg.autoRegister {
		ss, err = a.cl.CreateSchema(ctx, a.cfg.subject, s)
	} else {
		ss, err = a.cl.LookupSchema(ctx, a.cfg.subject, s)
	}
	if err != nil {
		return 0, fmt.Errorf("serde: avro: schema of subject %s: %w", a.cfg.subject, err)
	}
	a.id = ss.ID
	a.writers[uint32(ss.ID)] = &avroWriter{codec: a.parsed.Codec}
	return a.id, nil
}

func (a *avroSerde) Serialize(v map[string]any) ([]byte, error) {
	id, err := a.schemaID()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 5, 64)
	binary.BigEndian.PutUint32(buf[1:], uint32(id))
	out, err := a.parsed.Codec.BinaryFromNative(buf, v)
	if err != nil {
		return nil, fmt.Errorf("serde: avro: %w", err)
	}
	return out, nil
}

func (a *avroSerde) Deserialize(b []byte) (map[string]any, error) {
	if len(b) < 5 || b[0] != 0 {
		return nil, ErrAvroFormat
	}
	w, err := a.writer(binary.BigEndian.Uint32(b[1:5]))
	if err != nil {
		return nil, err
	}
	native, rest, err := w.codec.NativeFromBinary(b[5:])
	if err != nil {
		return nil, fmt.Errorf("serde: avro: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("serde: avro: %d bytes after the value", len(rest))
	}
	if w.proj != nil {
		if native, err = w.proj.Project(native); err != nil {
			return nil, fmt.Errorf("serde: %w", err)
		}
	}
	m, ok := native.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("serde: avro: decoded a %T, not a record", native)
	}
	return m, nil
}

// writer returns how to read data of a writer id, asking the registry
// the first time.
func (a *avroSerde) writer(id uint32) (*avroWriter, error) {
	a.mu.RLock()
	w := a.writers[id]
	a.mu.RUnlock()
	if w != nil {
		return w, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := a.writers[id]; w != nil {
		return w, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.timeout)
	defer cancel()
	s, err := a.cl.SchemaByID(ctx, int(id))
	if err != nil {
		return nil, fmt.Errorf("serde: avro: writer schema %d: %w", id, err)
	}
	if s.Type != sr.TypeAvro {
		return nil, fmt.Errorf("serde: avro: writer schema %d is %s", id, s.Type)
	}
	if len(s.References) > 0 {
		return nil, fmt.Errorf("serde: avro: writer schema %d has references, which this serde does not resolve yet", id)
	}
	wp, err := avroschema.ParseChecked(s.Schema, nil)
	if err != nil {
		return nil, fmt.Errorf("serde: avro: writer schema %d: %w", id, err)
	}
	w = &avroWriter{codec: wp.Codec}
	if wp.Normal != a.parsed.Normal {
		if w.proj, err = avroschema.NewProjector(a.parsed.Root, wp.Root); err != nil {
			return nil, fmt.Errorf("serde: avro: writer schema %d: %w", id, err)
		}
	}
	a.writers[id] = w
	return w, nil
}
