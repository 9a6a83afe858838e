// Package registry is a schema registry that speaks the REST API of
// Confluent's Schema Registry, so that Confluent's serializers and clients
// (franz-go's pkg/sr, confluent-kafka) work against it unchanged.
//
// Storage. Every change is a record in a log — in a broker, the compacted
// topic _schemas, in the record format Confluent's registry uses (see
// records.go) — and the registry's state is what those records say, read
// back from the log by one goroutine (the reader). A write appends its
// record and waits until the reader has applied it, so it reads its own
// write, and a registry that restarts reads the log again from the start
// and finds every schema, id, version, config and mode where it was.
//
// Concurrency. writeMu serialises writes from the check they make (is the
// schema compatible, which id is next) to the moment their record is
// applied, so no two writes decide on the same state. mu guards the state;
// the reader takes it to apply a record, HTTP reads take it to read.
//
// Clusters. Several registries may share one log (the brokers of a
// cluster, each serving the API). Every one answers reads from its own
// copy of the state; writes go to one leader, which Config.Leader names
// (in a broker: the broker leading the log's partition), and the others
// forward the HTTP request to it, as Confluent's followers forward to
// their elected leader. So one registry decides every id, and two
// registrations through different brokers never choose the same one.
// Each registry announces its URL in the log (a RUNNEL_NODE record) so
// the others know where to forward. A forwarding registry then reads the
// log to its end before it answers, so a client reads its own write from
// the broker it wrote through. Should two registries both act as leader
// for a moment (while leadership moves), the log still decides: the
// record that lands first keeps an id, and the other write fails with
// 50001 rather than give one id to two schemas.
//
// Schemas. AVRO is the schema type served; compatibility follows Avro's
// schema-resolution rules (package internal/avroschema). Schemas
// of other types are refused with 42201.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"

	"github.com/runnel-dev/runnel/internal/avroschema"
)

// Log is where the registry keeps its records: an append-only, ordered log
// of key/value records that later records of the same key supersede (a
// compacted topic).
type Log interface {
	// Append writes a record, a nil value being a tombstone, and returns
	// its offset once it is durable.
	Append(ctx context.Context, key, value []byte) (int64, error)
	// Poll returns the next records in offset order, waiting until there
	// are some or ctx is done. The first call starts at the log's start.
	Poll(ctx context.Context) ([]Record, error)
	// Close releases the log.
	Close() error
}

// Record is one record read from a Log.
type Record struct {
	Offset     int64
	Key, Value []byte
}

// Reference names a schema that a schema uses: its named types are in
// scope under Name.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Compatibility levels, as Confluent names them.
const (
	CompatNone               = "NONE"
	CompatBackward           = "BACKWARD"
	CompatBackwardTransitive = "BACKWARD_TRANSITIVE"
	CompatForward            = "FORWARD"
	CompatForwardTransitive  = "FORWARD_TRANSITIVE"
	CompatFull               = "FULL"
	CompatFullTransitive     = "FULL_TRANSITIVE"
)

// Modes, as Confluent names them.
const (
	ModeReadWrite = "READWRITE"
	ModeReadOnly  = "READONLY"
	ModeImport    = "IMPORT"
)

var compatLevels = []string{CompatNone, CompatBackward, CompatBackwardTransitive, CompatForward,
	CompatForwardTransitive, CompatFull, CompatFullTransitive}

var modes = []string{ModeReadWrite, ModeReadOnly, ModeImport}

// schemaTypeAvro is the one schema type served.
const schemaTypeAvro = "AVRO"

// Config configures a Registry.
type Config struct {
	// DefaultCompatibility is the compatibility level of subjects when
	// neither they nor the global config say one. Default BACKWARD, as
	// Confluent's schema.compatibility.level.
	DefaultCompatibility string
	// Logger receives the registry's log. Default: discard.
	Logger *slog.Logger

	// Leader, when set, names the node whose registry takes writes; a
	// registry of another node forwards writes to it. Unset, this
	// registry takes every write itself (it is alone on its log).
	Leader func(ctx context.Context) (int32, error)
	// Node is this registry's node id, compared with Leader's answer.
	Node int32
	// URL is the base URL this registry serves on, announced in the log
	// for the others to forward to. Required with Leader.
	URL string
	// ForwardClient sends forwarded requests. Default: a client with a
	// 30s timeout.
	ForwardClient *http.Client
}

// Registry is a schema registry over a Log. Serve it with its Handler.
type Registry struct {
	cfg    Config
	log    Log
	logger *slog.Logger

	// writeMu serialises writes (see the package doc).
	writeMu sync.Mutex

	mu sync.RWMutex // guards the following
	st state
	// applied is the offset of the last record applied; -1 before any.
	applied int64
	// advanced is closed and replaced whenever applied moves.
	advanced chan struct{}
	// readErr is the reader's fatal error, once it stopped.
	readErr error

	cancel context.CancelFunc
	done   chan struct{}
}

// state is what the log's records say.
type state struct {
	subjects map[string]map[int]*version
	ids      map[int]*stored
	// byKey finds the id of a schema already stored: the key is its
	// type, normalized form and references (see schemaKeyOf).
	byKey map[string]int
	maxID int

	// nodes is where each node's registry serves (RUNNEL_NODE records).
	nodes map[int32]string

	// configs holds the CONFIG records: by subject, "" the global one.
	configs     map[string]configValue
	mode        string
	subjectMode map[string]string
}

func newState() state {
	return state{
		subjects: map[string]map[int]*version{}, ids: map[int]*stored{}, byKey: map[string]int{},
		configs: map[string]configValue{}, subjectMode: map[string]string{},
		nodes: map[int32]string{},
	}
}

// version is one version of a subject.
type version struct {
	id      int
	deleted bool
}

// stored is a schema under its id.
type stored struct {
	typ  string
	text string
	refs []Reference
	key  string
}

// New starts a registry on log: it reads the log to its end before it
// returns, so what it serves from then on includes every earlier write.
// ctx bounds the catching up only; stop the registry with Close.
func New(ctx context.Context, log Log, cfg Config) (*Registry, error) {
	if cfg.DefaultCompatibility == "" {
		cfg.DefaultCompatibility = CompatBackward
	}
	if !slices.Contains(compatLevels, cfg.DefaultCompatibility) {
		return nil, fmt.Errorf("registry: unknown compatibility level %q", cfg.DefaultCompatibility)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Leader != nil && cfg.URL == "" {
		return nil, errors.New("registry: a registry with a Leader needs its URL")
	}
	if cfg.ForwardClient == nil {
		cfg.ForwardClient = &http.Client{Timeout: writeTimeout}
	}
	r := &Registry{
		cfg: cfg, log: log, logger: cfg.Logger,
		st:       newState(),
		applied:  -1,
		advanced: make(chan struct{}),
		done:     make(chan struct{}),
	}
	rctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.readLoop(rctx)
	// A marker appended now lies after every earlier record: once it is
	// applied, so are they. In a cluster the marker is this registry's
	// address, which the others need to forward to it.
	key, value := noopKey(), []byte(nil)
	if cfg.Leader != nil {
		key = nodeKey(cfg.Node)
		value, _ = json.Marshal(nodeValue{Node: cfg.Node, URL: cfg.URL})
	}
	if err := r.appendAndWait(ctx, key, value); err != nil {
		r.Close()
		return nil, fmt.Errorf("registry: catch up with the log: %w", err)
	}
	return r, nil
}

// Close stops the reader. It does not close the Log, which its caller
// owns.
func (r *Registry) Close() error {
	r.cancel()
	<-r.done
	return nil
}

func (r *Registry) readLoop(ctx context.Context) {
	defer close(r.done)
	for {
		recs, err := r.log.Poll(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.logger.Error("registry: reading the schema log stopped", "err", err)
			}
			r.mu.Lock()
			r.readErr = err
			close(r.advanced)
			r.advanced = make(chan struct{})
			r.mu.Unlock()
			return
		}
		if len(recs) == 0 {
			continue
		}
		r.mu.Lock()
		for _, rec := range recs {
			if err := r.st.apply(rec); err != nil {
				r.logger.Warn("registry: skipping a record", "offset", rec.Offset, "err", err)
			}
			r.applied = rec.Offset
		}
		close(r.advanced)
		r.advanced = make(chan struct{})
		r.mu.Unlock()
	}
}

// appendAndWait appends a record and waits until the reader applied it.
func (r *Registry) appendAndWait(ctx context.Context, key, value []byte) error {
	off, err := r.log.Append(ctx, key, value)
	if err != nil {
		return err
	}
	return r.waitApplied(ctx, off)
}

// waitApplied waits until the reader applied the record at off.
func (r *Registry) waitApplied(ctx context.Context, off int64) error {
	for {
		r.mu.RLock()
		applied, ch, rerr := r.applied, r.advanced, r.readErr
		r.mu.RUnlock()
		if applied >= off {
			return nil
		}
		if rerr != nil {
			return rerr
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// apply changes the state as one record says.
// REQUIRES: r.mu held for writing.
func (st *state) apply(rec Record) error {
	k, err := parseKey(rec.Key)
	if err != nil {
		return err
	}
	subject := ""
	if k.Subject != nil {
		subject = *k.Subject
	}
	switch k.KeyType {
	case keyNoop:
		return nil
	case keyNode:
		if k.Node == nil {
			return errors.New("registry: node key without a node")
		}
		if rec.Value == nil {
			delete(st.nodes, *k.Node)
			return nil
		}
		var v nodeValue
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			return fmt.Errorf("registry: bad node record: %w", err)
		}
		st.nodes[*k.Node] = v.URL
	case keySchema:
		if k.Subject == nil || k.Version == nil {
			return errors.New("registry: schema key without subject or version")
		}
		if rec.Value == nil {
			st.removeVersion(subject, *k.Version)
			return nil
		}
		var v schemaValue
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			return fmt.Errorf("registry: bad schema record: %w", err)
		}
		if v.ID < 1 {
			return fmt.Errorf("registry: schema record with id %d", v.ID)
		}
		if v.SchemaType == "" {
			v.SchemaType = schemaTypeAvro
		}
		s := &stored{typ: v.SchemaType, text: v.Schema, refs: v.References}
		s.key = st.schemaKeyOf(s)
		if old, ok := st.ids[v.ID]; ok && old.key != s.key {
			// Two writers gave one id to two schemas (registries of
			// several brokers writing at once): the first record wins,
			// this version is not taken, and its writer sees that.
			return fmt.Errorf("registry: id %d of %s version %d already names another schema", v.ID, subject, *k.Version)
		}
		if _, ok := st.ids[v.ID]; !ok {
			st.ids[v.ID] = s
			if _, taken := st.byKey[s.key]; !taken {
				st.byKey[s.key] = v.ID
			}
		}
		st.maxID = max(st.maxID, v.ID)
		vs := st.subjects[subject]
		if vs == nil {
			vs = map[int]*version{}
			st.subjects[subject] = vs
		}
		if old := vs[*k.Version]; old != nil && old.id != v.ID {
			st.removeVersion(subject, *k.Version)
			vs = st.subjects[subject]
			if vs == nil {
				vs = map[int]*version{}
				st.subjects[subject] = vs
			}
		}
		vs[*k.Version] = &version{id: v.ID, deleted: v.Deleted}
	case keyConfig:
		if rec.Value == nil {
			delete(st.configs, subject)
			return nil
		}
		var v configValue
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			return fmt.Errorf("registry: bad config record: %w", err)
		}
		st.configs[subject] = v
	case keyMode:
		if rec.Value == nil {
			if subject == "" {
				st.mode = ""
			} else {
				delete(st.subjectMode, subject)
			}
			return nil
		}
		var v modeValue
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			return fmt.Errorf("registry: bad mode record: %w", err)
		}
		if subject == "" {
			st.mode = v.Mode
		} else {
			st.subjectMode[subject] = v.Mode
		}
	case keyDeleteSubject, keyClearSubject:
		if rec.Value == nil {
			return nil
		}
		var v deleteSubjectValue
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			return fmt.Errorf("registry: bad %s record: %w", k.KeyType, err)
		}
		for n, ver := range st.subjects[subject] {
			if n > v.Version {
				continue
			}
			if k.KeyType == keyDeleteSubject {
				ver.deleted = true
			} else {
				st.removeVersion(subject, n)
			}
		}
	default:
		return fmt.Errorf("registry: unknown key type %q", k.KeyType)
	}
	return nil
}

// removeVersion forgets a version, and its schema's id once no version
// uses it. Ids are never reused: maxID stays.
func (st *state) removeVersion(subject string, n int) {
	vs := st.subjects[subject]
	v := vs[n]
	if v == nil {
		return
	}
	delete(vs, n)
	if len(vs) == 0 {
		delete(st.subjects, subject)
	}
	for _, vs := range st.subjects {
		for _, other := range vs {
			if other.id == v.id {
				return
			}
		}
	}
	if s := st.ids[v.id]; s != nil && st.byKey[s.key] == v.id {
		delete(st.byKey, s.key)
	}
	delete(st.ids, v.id)
}

// schemaKeyOf is what decides that two schemas are the same schema: the
// same type, the same normalized text, the same references. A schema this
// registry cannot parse (a record of a type it does not serve) is keyed by
// its text.
func (st *state) schemaKeyOf(s *stored) string {
	text := s.text
	if p, err := st.parse(s.typ, s.text, s.refs); err == nil {
		text = p.Normal
	}
	return schemaKey3(s.typ, text, s.refs)
}

// schemaKey3 joins what identifies a schema; no references and an empty
// list of them are the same.
func schemaKey3(typ, normal string, refs []Reference) string {
	var r []byte
	if len(refs) > 0 {
		r, _ = json.Marshal(refs)
	}
	return typ + "\x00" + normal + "\x00" + string(r)
}

// parse parses a schema with its references' named types in scope.
func (st *state) parse(typ, text string, refs []Reference) (*avroschema.Parsed, error) {
	if typ != "" && typ != schemaTypeAvro {
		return nil, fmt.Errorf("schema type %s is not supported; this registry serves AVRO", typ)
	}
	names := avroschema.Names{}
	if err := st.loadRefs(refs, names, map[[2]any]bool{}, 0); err != nil {
		return nil, err
	}
	return avroschema.ParseChecked(text, names)
}

// normalized is the text a registration with normalize stores: the
// schema in its normalized form (avroschema.Normalize), with the named
// types of its references left to them.
func (st *state) normalized(text string, refs []Reference) (string, error) {
	names := avroschema.Names{}
	if err := st.loadRefs(refs, names, map[[2]any]bool{}, 0); err != nil {
		return "", err
	}
	external := maps.Clone(names)
	root, err := avroschema.Parse(text, names)
	if err != nil {
		return "", err
	}
	return avroschema.NormalizeReferring(root, external), nil
}

// maxRefDepth bounds chains of references.
const maxRefDepth = 32

// loadRefs defines the named types of refs (and of their references) in
// names. loaded skips a schema reached twice (a diamond of references).
func (st *state) loadRefs(refs []Reference, names avroschema.Names, loaded map[[2]any]bool, depth int) error {
	if depth > maxRefDepth {
		return fmt.Errorf("references nested deeper than %d", maxRefDepth)
	}
	for _, ref := range refs {
		n, v := st.resolveVersion(ref.Subject, ref.Version, false)
		if v == nil {
			return fmt.Errorf("reference %q: subject %q has no version %d", ref.Name, ref.Subject, ref.Version)
		}
		if loaded[[2]any{ref.Subject, n}] {
			continue
		}
		loaded[[2]any{ref.Subject, n}] = true
		s := st.ids[v.id]
		if s.typ != schemaTypeAvro {
			return fmt.Errorf("reference %q is a %s schema", ref.Name, s.typ)
		}
		if err := st.loadRefs(s.refs, names, loaded, depth+1); err != nil {
			return err
		}
		if _, err := avroschema.Parse(s.text, names); err != nil {
			return fmt.Errorf("reference %q: %w", ref.Name, err)
		}
	}
	return nil
}

// resolveVersion finds a subject's version n, -1 meaning the latest;
// deleted says whether soft-deleted versions count.
func (st *state) resolveVersion(subject string, n int, deleted bool) (int, *version) {
	vs := st.subjects[subject]
	if n == -1 {
		for _, k := range st.versionNumbers(subject, deleted) {
			n = k
		}
	}
	v := vs[n]
	if v == nil || (v.deleted && !deleted) {
		return n, nil
	}
	return n, v
}

// versionNumbers lists a subject's versions in order.
func (st *state) versionNumbers(subject string, deleted bool) []int {
	var out []int
	for n, v := range st.subjects[subject] {
		if deleted || !v.deleted {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func (st *state) compatOf(subject, dflt string) string {
	if c := st.configs[subject].CompatibilityLevel; c != "" {
		return c
	}
	if c := st.configs[""].CompatibilityLevel; c != "" {
		return c
	}
	return dflt
}

// normalizeOf says whether registrations under subject store the
// normalized schema when the request does not ask for it: the subject's
// config says, else the global one, else no.
func (st *state) normalizeOf(subject string) bool {
	if n := st.configs[subject].Normalize; n != nil {
		return *n
	}
	if n := st.configs[""].Normalize; n != nil {
		return *n
	}
	return false
}

func (st *state) modeOf(subject string) string {
	if m := st.subjectMode[subject]; m != "" {
		return m
	}
	if st.mode != "" {
		return st.mode
	}
	return ModeReadWrite
}

// compatible checks a schema against earlier ones at a level; earlier is
// oldest first. It returns why not, or nothing when compatible.
func compatible(level string, s *avroschema.Schema, earlier []*avroschema.Schema) []string {
	if len(earlier) == 0 || level == CompatNone {
		return nil
	}
	against := earlier[len(earlier)-1:]
	switch level {
	case CompatBackwardTransitive, CompatForwardTransitive, CompatFullTransitive:
		against = earlier
	}
	var msgs []string
	for _, old := range slices.Backward(against) {
		switch level {
		case CompatBackward, CompatBackwardTransitive:
			msgs = append(msgs, avroschema.CanRead(s, old)...)
		case CompatForward, CompatForwardTransitive:
			msgs = append(msgs, avroschema.CanRead(old, s)...)
		case CompatFull, CompatFullTransitive:
			msgs = append(msgs, avroschema.CanRead(s, old)...)
			msgs = append(msgs, avroschema.CanRead(old, s)...)
		}
	}
	return msgs
}
