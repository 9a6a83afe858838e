package serde

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
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

// AvroSubjectRegistry is a registry that also serves a subject's
// versions. An Avro serde needs it to read data whose writer schema has
// references (it loads the referenced schemas by subject and version)
// and for AvroUseLatestVersion. *sr.Client and LazyRegistry's are one.
type AvroSubjectRegistry interface {
	AvroRegistry
	SchemaByVersion(ctx context.Context, subject string, version int) (sr.SubjectSchema, error)
}

func (l *lazyRegistry) SchemaByVersion(ctx context.Context, subject string, version int) (sr.SubjectSchema, error) {
	cl, err := l.client()
	if err != nil {
		return sr.SubjectSchema{}, err
	}
	return cl.SchemaByVersion(ctx, subject, version)
}

// SubjectNameStrategy names the subject a serde's schema is registered
// (or looked up) under, from the topic it writes to, whether it is the
// key's serde, and the full name of the record; as Confluent's
// key.subject.name.strategy and value.subject.name.strategy.
type SubjectNameStrategy func(topic string, isKey bool, record string) (string, error)

var (
	// TopicNameStrategy names the subject "<topic>-value" (or "-key"):
	// one schema, and its evolutions, per topic. Confluent's default.
	TopicNameStrategy SubjectNameStrategy = func(topic string, isKey bool, _ string) (string, error) {
		if topic == "" {
			return "", errors.New("TopicNameStrategy needs the topic (AvroTopic)")
		}
		if isKey {
			return topic + "-key", nil
		}
		return topic + "-value", nil
	}
	// RecordNameStrategy names the subject by the record's full name:
	// one schema per record type, whatever topic carries it.
	RecordNameStrategy SubjectNameStrategy = func(_ string, _ bool, record string) (string, error) {
		return record, nil
	}
	// TopicRecordNameStrategy names the subject "<topic>-<record>": a
	// topic carries several record types, each evolving on its own.
	TopicRecordNameStrategy SubjectNameStrategy = func(topic string, _ bool, record string) (string, error) {
		if topic == "" {
			return "", errors.New("TopicRecordNameStrategy needs the topic (AvroTopic)")
		}
		return topic + "-" + record, nil
	}
)

// AvroOption configures an Avro serde.
type AvroOption func(*avroConfig)

type avroConfig struct {
	subject      string
	topic        string
	isKey        bool
	strategy     SubjectNameStrategy
	autoRegister bool
	useLatest    bool
	timeout      time.Duration
	schema       string // Avro[T]: given instead of derived
	namespace    string // Avro[T]: of the derived records
}

// AvroSubject is the subject the schema is registered (or looked up)
// under on the first write, whatever the strategy says.
func AvroSubject(subject string) AvroOption {
	return func(c *avroConfig) { c.subject = subject }
}

// AvroTopic is the topic the serde writes to, which TopicNameStrategy and
// TopicRecordNameStrategy name the subject by.
func AvroTopic(topic string) AvroOption {
	return func(c *avroConfig) { c.topic = topic }
}

// AvroKey makes the serde a key serde: TopicNameStrategy then names the
// subject "<topic>-key". Default: a value serde.
func AvroKey() AvroOption {
	return func(c *avroConfig) { c.isKey = true }
}

// AvroSubjectNameStrategy sets how the subject is named when AvroSubject
// does not give it. Default TopicNameStrategy, as Confluent's
// value.subject.name.strategy (key.subject.name.strategy with AvroKey).
func AvroSubjectNameStrategy(s SubjectNameStrategy) AvroOption {
	return func(c *avroConfig) { c.strategy = s }
}

// AvroAutoRegister says whether the first write registers the schema
// (default true, Confluent's auto.register.schemas) or only looks it up,
// failing when the subject does not have it.
func AvroAutoRegister(on bool) AvroOption {
	return func(c *avroConfig) { c.autoRegister = on }
}

// AvroUseLatestVersion makes the serde write with the latest version of
// its subject rather than its own schema: values are resolved from the
// serde's schema to that one (fields it lacks take their defaults) and
// carry its id. It needs AvroAutoRegister(false), as Confluent's
// use.latest.version applies only with auto.register.schemas=false, and
// a registry that is an AvroSubjectRegistry. Default false.
func AvroUseLatestVersion(on bool) AvroOption {
	return func(c *avroConfig) { c.useLatest = on }
}

// AvroRegistryTimeout bounds each call to the registry. Default 30s.
func AvroRegistryTimeout(d time.Duration) AvroOption {
	return func(c *avroConfig) { c.timeout = d }
}

// AvroSchema gives Avro[T] its schema as text instead of deriving it
// from T; T's fields are matched to the record's by name. AvroGeneric
// takes its schema as an argument and ignores this option.
func AvroSchema(schema string) AvroOption {
	return func(c *avroConfig) { c.schema = schema }
}

// AvroNamespace is the namespace of the records Avro[T] derives from Go
// types. Default none.
func AvroNamespace(ns string) AvroOption {
	return func(c *avroConfig) { c.namespace = ns }
}

// AvroGeneric returns a serde of Avro records as maps (goavro's native
// form: field name to value; a union value is nil or a one-entry map from
// the branch's type name to its value), with schema, an Avro record
// schema, as the reader and writer schema. cl is a registry client, such
// as sr.NewClient(sr.URLs(url)), or LazyRegistry's.
func AvroGeneric(cl AvroRegistry, schema string, opts ...AvroOption) (Serde[map[string]any], error) {
	a, err := newAvro(cl, schema, opts)
	if err != nil {
		return nil, err
	}
	return avroGeneric{a}, nil
}

// Avro returns a serde of T, a struct, as Avro records. The schema is
// derived from T (see AvroSchemaOf for the mapping of Go types), or
// given with AvroSchema:
//
//	type Order struct {
//		ID    int64     `avro:"id"`
//		Items []Item    `avro:"items"`
//		Note  *string   `avro:"note"` // ["null","string"], default null
//		At    time.Time `avro:"at"`   // timestamp-millis
//	}
//	s, err := serde.Avro[Order](reg, serde.AvroTopic("orders"))
func Avro[T any](cl AvroRegistry, opts ...AvroOption) (Serde[T], error) {
	var cfg avroConfig
	for _, o := range opts {
		o(&cfg)
	}
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct || t == avroTimeType {
		return nil, errAvroNotStruct
	}
	schema := cfg.schema
	if schema == "" {
		var err error
		if schema, err = avroSchemaOf(t, cfg.namespace); err != nil {
			return nil, err
		}
	}
	a, err := newAvro(cl, schema, opts)
	if err != nil {
		return nil, err
	}
	conv, err := newAvroConv(t, a.parsed.Root)
	if err != nil {
		return nil, err
	}
	return &avroTyped[T]{a: a, conv: conv, bin: newBinConv(t, a.parsed.Root),
		recursive: avroschema.Recursive(a.parsed.Root)}, nil
}

type avroTyped[T any] struct {
	a    *avroSerde
	conv *avroConv
	// bin is the direct path (avro_binary.go), for data of the serde's
	// own schema.
	bin *binConv
	// recursive says the schema nests in itself: data is checked first
	// (avroschema.CheckBinary bounds the nesting), as the direct path
	// recurses once per level and deep enough data would overflow the
	// stack.
	recursive bool
}

func (s *avroTyped[T]) String() string { return "Avro" }

func (s *avroTyped[T]) Serialize(v T) ([]byte, error) {
	out, err := s.a.output()
	if err != nil {
		return nil, err
	}
	rv := reflect.ValueOf(&v).Elem()
	if out.proj == nil {
		buf := make([]byte, 5, 128)
		binary.BigEndian.PutUint32(buf[1:], uint32(out.id))
		b, err := s.bin.app(buf, rv)
		if !errors.Is(err, errNoDirect) {
			return b, err
		}
	}
	n, err := s.conv.enc(rv)
	if err != nil {
		return nil, err
	}
	return s.a.serialize(n)
}

func (s *avroTyped[T]) Deserialize(b []byte) (T, error) {
	var v T
	if len(b) >= 5 && b[0] == 0 {
		w, err := s.a.writer(binary.BigEndian.Uint32(b[1:5]))
		if err != nil {
			return v, err
		}
		if w.proj == nil && s.recursive {
			if _, err := avroschema.CheckBinary(s.a.parsed.Root, b[5:]); err != nil {
				return v, fmt.Errorf("serde: %w", err)
			}
		}
		if w.proj == nil {
			rest, err := s.bin.read(b[5:], reflect.ValueOf(&v).Elem())
			if err == nil && len(rest) == 0 {
				return v, nil
			}
			// goavro's path reads what this one would not, and says what
			// is wrong with what it cannot read.
			v = *new(T)
		}
	}
	n, err := s.a.deserialize(b)
	if err != nil {
		return v, err
	}
	if err := s.conv.dec(n, reflect.ValueOf(&v).Elem()); err != nil {
		return v, err
	}
	return v, nil
}

// avroGeneric is AvroGeneric's serde.
type avroGeneric struct{ a *avroSerde }

func (g avroGeneric) String() string { return "Avro" }

func (g avroGeneric) Serialize(v map[string]any) ([]byte, error) { return g.a.serialize(v) }

func (g avroGeneric) Deserialize(b []byte) (map[string]any, error) {
	n, err := g.a.deserialize(b)
	if err != nil {
		return nil, err
	}
	m, ok := n.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("serde: avro: decoded a %T, not a record", n)
	}
	return m, nil
}

type avroSerde struct {
	cfg    avroConfig
	cl     AvroRegistry
	schema string
	parsed *avroschema.Parsed

	mu sync.RWMutex // guards the following
	// out is how values are written; nil until the first write found
	// the schema's id.
	out *avroOut
	// writers caches, by id, what reading that id's data needs.
	writers map[uint32]*avroWriter
}

// avroOut is how a serde writes: with the schema of id, its values
// resolved to that schema first when it is not the serde's own.
type avroOut struct {
	id    int
	codec *goavro.Codec
	proj  *avroschema.Projector
}

// avroWriter reads data written with one writer schema.
type avroWriter struct {
	// schema is the writer's; it decodes through goavro.
	schema *avroschema.Parsed
	// proj resolves to the reader's schema; nil when the writer's schema
	// is the reader's.
	proj *avroschema.Projector
}

func newAvro(cl AvroRegistry, schema string, opts []AvroOption) (*avroSerde, error) {
	cfg := avroConfig{autoRegister: true, timeout: 30 * time.Second, strategy: TopicNameStrategy}
	for _, o := range opts {
		o(&cfg)
	}
	if cl == nil {
		return nil, errors.New("serde: avro: a registry client is required")
	}
	if cfg.strategy == nil {
		return nil, errors.New("serde: avro: a nil subject name strategy")
	}
	if cfg.useLatest {
		if cfg.autoRegister {
			return nil, errors.New("serde: avro: AvroUseLatestVersion needs AvroAutoRegister(false)")
		}
		if _, ok := cl.(AvroSubjectRegistry); !ok {
			return nil, fmt.Errorf("serde: avro: AvroUseLatestVersion needs a registry that serves versions; %T does not", cl)
		}
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

// subject is the subject the serde's schema goes under.
func (a *avroSerde) subject() (string, error) {
	if a.cfg.subject != "" {
		return a.cfg.subject, nil
	}
	s, err := a.cfg.strategy(a.cfg.topic, a.cfg.isKey, a.parsed.Root.Name)
	if err != nil {
		return "", fmt.Errorf("serde: avro: no subject for the schema: %w", err)
	}
	return s, nil
}

// output returns how to write, registering the schema, looking it up or
// fetching the subject's latest version on first use.
func (a *avroSerde) output() (*avroOut, error) {
	a.mu.RLock()
	out := a.out
	a.mu.RUnlock()
	if out != nil {
		return out, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.out != nil {
		return a.out, nil
	}
	subject, err := a.subject()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.timeout)
	defer cancel()
	s := sr.Schema{Schema: a.schema, Type: sr.TypeAvro}
	var ss sr.SubjectSchema
	switch {
	case a.cfg.useLatest:
		ss, err = a.cl.(AvroSubjectRegistry).SchemaByVersion(ctx, subject, -1)
	case a.cfg.autoRegister:
		ss, err = a.cl.CreateSchema(ctx, subject, s)
	default:
		ss, err = a.cl.LookupSchema(ctx, subject, s)
	}
	if err != nil {
		return nil, fmt.Errorf("serde: avro: schema of subject %s: %w", subject, err)
	}
	out = &avroOut{id: ss.ID, codec: a.parsed.Codec}
	if a.cfg.useLatest {
		if ss.Type != sr.TypeAvro {
			return nil, fmt.Errorf("serde: avro: the latest schema of subject %s is %s", subject, ss.Type)
		}
		latest, err := a.parseWriter(ctx, ss.Schema)
		if err != nil {
			return nil, fmt.Errorf("serde: avro: the latest schema of subject %s: %w", subject, err)
		}
		if latest.Normal != a.parsed.Normal {
			if out.proj, err = avroschema.NewProjector(latest.Root, a.parsed.Root); err != nil {
				return nil, fmt.Errorf("serde: avro: the latest schema of subject %s cannot take this serde's values: %w", subject, err)
			}
			out.codec = latest.Codec
		}
	}
	if out.proj == nil {
		a.writers[uint32(ss.ID)] = &avroWriter{schema: a.parsed}
	}
	a.out = out
	return out, nil
}

func (a *avroSerde) serialize(v any) ([]byte, error) {
	out, err := a.output()
	if err != nil {
		return nil, err
	}
	if out.proj != nil {
		if v, err = out.proj.Project(v); err != nil {
			return nil, fmt.Errorf("serde: %w", err)
		}
	}
	buf := make([]byte, 5, 64)
	binary.BigEndian.PutUint32(buf[1:], uint32(out.id))
	b, err := out.codec.BinaryFromNative(buf, v)
	if err != nil {
		return nil, fmt.Errorf("serde: avro: %w", err)
	}
	return b, nil
}

func (a *avroSerde) deserialize(b []byte) (any, error) {
	if len(b) < 5 || b[0] != 0 {
		return nil, ErrAvroFormat
	}
	w, err := a.writer(binary.BigEndian.Uint32(b[1:5]))
	if err != nil {
		return nil, err
	}
	native, rest, err := w.schema.Decode(b[5:])
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
	return native, nil
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
	wp, err := a.parseWriter(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("serde: avro: writer schema %d: %w", id, err)
	}
	w = &avroWriter{schema: wp}
	if wp.Normal != a.parsed.Normal {
		if w.proj, err = avroschema.NewProjector(a.parsed.Root, wp.Root); err != nil {
			return nil, fmt.Errorf("serde: avro: writer schema %d: %w", id, err)
		}
	}
	a.writers[id] = w
	return w, nil
}

// parseWriter parses a schema from the registry, with the named types of
// its references (loaded by subject and version, and theirs in turn) in
// scope.
func (a *avroSerde) parseWriter(ctx context.Context, s sr.Schema) (*avroschema.Parsed, error) {
	if len(s.References) == 0 {
		return avroschema.ParseChecked(s.Schema, nil)
	}
	reg, ok := a.cl.(AvroSubjectRegistry)
	if !ok {
		return nil, fmt.Errorf("the schema has references, and the registry client %T cannot load them by subject and version", a.cl)
	}
	return avroschema.ParseWithReferences(s.Schema, srRefs(s.References), func(subject string, version int) (string, []avroschema.Reference, error) {
		ss, err := reg.SchemaByVersion(ctx, subject, version)
		if err != nil {
			return "", nil, err
		}
		if ss.Type != sr.TypeAvro {
			return "", nil, fmt.Errorf("a %s schema", ss.Type)
		}
		return ss.Schema.Schema, srRefs(ss.References), nil
	})
}

func srRefs(refs []sr.SchemaReference) []avroschema.Reference {
	out := make([]avroschema.Reference, len(refs))
	for i, r := range refs {
		out[i] = avroschema.Reference{Name: r.Name, Subject: r.Subject, Version: r.Version}
	}
	return out
}
