package registry

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/runnel-dev/runnel/internal/avroschema"
)

// SchemaRequest is the body of a registration, a lookup or a
// compatibility check.
type SchemaRequest struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	// ID and Version may be given in IMPORT mode.
	ID      int `json:"id,omitempty"`
	Version int `json:"version,omitempty"`
}

// SubjectSchema is a version of a subject, as the API returns it.
type SubjectSchema struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	Schema     string      `json:"schema"`
}

func checkSubject(s string) error {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errorf(http.StatusUnprocessableEntity, codeInvalidSubject, "Invalid subject %q", s)
	}
	return nil
}

// apiType is the schemaType the API shows: none for AVRO, as Confluent
// leaves it out.
func apiType(t string) string {
	if t == schemaTypeAvro {
		return ""
	}
	return t
}

// parseRequestLocked parses the schema of a request with its references.
// REQUIRES: r.mu held.
func (r *Registry) parseRequestLocked(req *SchemaRequest) (*avroschema.Parsed, string, error) {
	typ := req.SchemaType
	if typ == "" {
		typ = schemaTypeAvro
	}
	if strings.TrimSpace(req.Schema) == "" {
		return nil, "", errorf(http.StatusUnprocessableEntity, codeInvalidSchema, "Empty schema")
	}
	p, err := r.st.parse(typ, req.Schema, req.References)
	if err != nil {
		return nil, "", errInvalidSchema(err)
	}
	return p, schemaKey3(typ, p.Normal, req.References), nil
}

// earlierLocked parses the live versions of a subject, oldest first.
// REQUIRES: r.mu held.
func (r *Registry) earlierLocked(subject string) ([]*avroschema.Schema, error) {
	var out []*avroschema.Schema
	for _, n := range r.st.versionNumbers(subject, false) {
		s := r.st.ids[r.st.subjects[subject][n].id]
		p, err := r.st.parse(s.typ, s.text, s.refs)
		if err != nil {
			return nil, errorf(http.StatusInternalServerError, codeStoreError, "stored version %d of %q does not parse: %v", n, subject, err)
		}
		out = append(out, p.Root)
	}
	return out, nil
}

// Registered is the answer of a registration.
type Registered struct {
	ID         int         `json:"id"`
	Version    int         `json:"version,omitempty"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	Schema     string      `json:"schema,omitempty"`
}

// Register registers a schema under a subject and returns its id and
// version: those it already has when the subject holds the same schema,
// else a new version, under the id the schema has under another subject
// or a new one. With normalize (or a config saying normalize) the
// normalized schema is stored rather than its text as given. Registering
// again a schema whose version was soft-deleted makes a new version and
// removes the soft-deleted one for good, as Confluent's registry does.
func (r *Registry) Register(ctx context.Context, subject string, req SchemaRequest, normalize bool) (Registered, error) {
	if err := checkSubject(subject); err != nil {
		return Registered{}, err
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	rec, had, err := r.planRegister(subject, &req, normalize)
	if err != nil || rec == nil {
		return had, err
	}
	val, _ := json.Marshal(rec)
	if err := r.appendAndWait(ctx, schemaKey(subject, rec.Version), val); err != nil {
		return Registered{}, errStore(err)
	}
	// Another writer may have taken the id or the version first (see
	// state.apply): then the log holds theirs, not this registration.
	r.mu.RLock()
	v := r.st.subjects[subject][rec.Version]
	var done Registered
	if v != nil && v.id == rec.ID {
		// The answer is what is stored: an id keeps the text it was
		// first registered with.
		done = r.registeredLocked(subject, [2]int{rec.ID, rec.Version})
	}
	var stale []int
	for _, n := range r.st.versionNumbers(subject, true) {
		old := r.st.subjects[subject][n]
		if n < rec.Version && old.deleted && old.id == rec.ID && len(r.referencedByLocked(subject, n, true)) == 0 {
			stale = append(stale, n)
		}
	}
	r.mu.RUnlock()
	if v == nil || v.id != rec.ID {
		return Registered{}, errorf(http.StatusInternalServerError, codeStoreError,
			"Another registry wrote version %d of %s or id %d at the same time; retry", rec.Version, subject, rec.ID)
	}
	// The new version is written first, so the id is never without a
	// version in between.
	for _, n := range stale {
		if err := r.appendAndWait(ctx, schemaKey(subject, n), nil); err != nil {
			return Registered{}, errStore(err)
		}
	}
	return done, nil
}

// planRegister decides what a registration writes: nothing (the
// subject has the schema: the answer), or a record.
func (r *Registry) planRegister(subject string, req *SchemaRequest, normalize bool) (*schemaValue, Registered, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec, id, err := r.planRegisterLocked(subject, req, normalize)
	if err != nil || rec != nil {
		return rec, Registered{}, err
	}
	return nil, r.registeredLocked(subject, id), nil
}

// registeredLocked answers a registration of a schema the subject has
// under id: its latest live version holding id.
// REQUIRES: r.mu held.
func (r *Registry) registeredLocked(subject string, id [2]int) Registered {
	s := r.subjectSchemaLocked(subject, id[1])
	return Registered{ID: s.ID, Version: s.Version, SchemaType: s.SchemaType, References: s.References, Schema: s.Schema}
}

// planRegisterLocked is planRegister; without a record to write it
// returns the id and version the subject has the schema under.
// REQUIRES: r.mu held.
func (r *Registry) planRegisterLocked(subject string, req *SchemaRequest, normalize bool) (*schemaValue, [2]int, error) {
	var none [2]int
	mode := r.st.modeOf(subject)
	switch {
	case mode == ModeReadOnly:
		return nil, none, errNotPermitted("Subject %s is in read-only mode", subject)
	case req.ID > 0 && mode != ModeImport:
		// As Confluent's registry: an id is chosen by the caller only
		// when importing, and an import always chooses it.
		return nil, none, errNotPermitted("Subject %s is not in import mode", subject)
	case req.ID <= 0 && mode == ModeImport:
		return nil, none, errNotPermitted("Subject %s is not in read-write mode; a schema imported needs its id", subject)
	}
	p, key, err := r.parseRequestLocked(req)
	if err != nil {
		return nil, none, err
	}
	existing, known := r.st.byKey[key]
	if known && (req.ID <= 0 || req.ID == existing) {
		for _, n := range slices.Backward(r.st.versionNumbers(subject, false)) {
			if r.st.subjects[subject][n].id == existing && (req.Version == 0 || req.Version == n) {
				return nil, [2]int{existing, n}, nil
			}
		}
	}
	id, next := existing, 1
	if !known {
		id = r.st.maxID + 1
	}
	if all := r.st.versionNumbers(subject, true); len(all) > 0 {
		next = all[len(all)-1] + 1
	}
	if mode == ModeImport {
		if s := r.st.ids[req.ID]; s != nil && s.key != key {
			return nil, none, errNotPermitted("Overwrite new schema with id %d is not permitted.", req.ID)
		}
		id = req.ID
		if req.Version > 0 {
			if r.st.subjects[subject][req.Version] != nil {
				return nil, none, errNotPermitted("Overwrite of version %d of subject %s is not permitted.", req.Version, subject)
			}
			next = req.Version
		}
	} else {
		if req.Version > 0 && req.Version != next {
			return nil, none, errorf(http.StatusUnprocessableEntity, codeInvalidSchema,
				"Version %d is not one more than the previous version %d of subject %s", req.Version, next-1, subject)
		}
		earlier, err := r.earlierLocked(subject)
		if err != nil {
			return nil, none, err
		}
		level := r.st.compatOf(subject, r.cfg.DefaultCompatibility)
		if msgs := compatible(level, p.Root, earlier); len(msgs) > 0 {
			return nil, none, errorf(http.StatusConflict, codeIncompatible,
				"Schema being registered is incompatible with an earlier schema for subject %q, details: [%s]",
				subject, strings.Join(msgs, "; "))
		}
	}
	typ := req.SchemaType
	if typ == "" {
		typ = schemaTypeAvro
	}
	refs := req.References
	if refs == nil {
		refs = []Reference{}
	}
	text := req.Schema
	if normalize || r.st.normalizeOf(subject) {
		if text, err = r.st.normalized(req.Schema, req.References); err != nil {
			return nil, none, errInvalidSchema(err)
		}
	}
	return &schemaValue{Subject: subject, Version: next, ID: id, SchemaType: typ, References: refs, Schema: text}, none, nil
}

// Lookup finds the version of a subject that holds the given schema.
func (r *Registry) Lookup(subject string, req SchemaRequest, deleted bool) (SubjectSchema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.st.versionNumbers(subject, deleted)) == 0 {
		return SubjectSchema{}, errSubjectNotFound(subject)
	}
	_, key, err := r.parseRequestLocked(&req)
	if err != nil {
		return SubjectSchema{}, err
	}
	id, ok := r.st.byKey[key]
	if ok {
		for _, n := range slices.Backward(r.st.versionNumbers(subject, deleted)) {
			if r.st.subjects[subject][n].id == id {
				return r.subjectSchemaLocked(subject, n), nil
			}
		}
	}
	return SubjectSchema{}, errSchemaNotFound("Schema not found")
}

// REQUIRES: r.mu held; the version exists.
func (r *Registry) subjectSchemaLocked(subject string, n int) SubjectSchema {
	v := r.st.subjects[subject][n]
	s := r.st.ids[v.id]
	return SubjectSchema{Subject: subject, Version: n, ID: v.id, SchemaType: apiType(s.typ), References: s.refs, Schema: s.text}
}

// Version returns version n of a subject (-1: the latest).
func (r *Registry) Version(subject string, n int, deleted bool) (SubjectSchema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.st.versionNumbers(subject, deleted)) == 0 {
		return SubjectSchema{}, errSubjectNotFound(subject)
	}
	n, v := r.st.resolveVersion(subject, n, deleted)
	if v == nil {
		return SubjectSchema{}, errVersionNotFound(subject, n)
	}
	return r.subjectSchemaLocked(subject, n), nil
}

// Deleted says which versions a listing shows.
type Deleted int

const (
	// LiveOnly shows the versions not soft-deleted.
	LiveOnly Deleted = iota
	// WithDeleted shows the soft-deleted versions too (?deleted=true).
	WithDeleted
	// DeletedOnly shows only the soft-deleted versions
	// (?deletedOnly=true).
	DeletedOnly
)

// REQUIRES: r.mu held.
func (r *Registry) versionsLocked(subject string, d Deleted) []int {
	if d != DeletedOnly {
		return r.st.versionNumbers(subject, d == WithDeleted)
	}
	out := []int{}
	for _, n := range r.st.versionNumbers(subject, true) {
		if r.st.subjects[subject][n].deleted {
			out = append(out, n)
		}
	}
	return out
}

// Versions lists a subject's versions.
func (r *Registry) Versions(subject string, d Deleted) ([]int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.st.versionNumbers(subject, d != LiveOnly)) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	return r.versionsLocked(subject, d), nil
}

// Subjects lists the subjects starting with prefix that have a version
// to show: a live one, any with WithDeleted, and with DeletedOnly the
// subjects whose versions are all soft-deleted.
func (r *Registry) Subjects(d Deleted, prefix string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []string{}
	for s := range r.st.subjects {
		if !strings.HasPrefix(s, prefix) {
			continue
		}
		live := len(r.st.versionNumbers(s, false)) > 0
		if (d == DeletedOnly && !live) || (d != DeletedOnly && (live || d == WithDeleted)) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// Schemas lists the versions of the subjects starting with prefix, in
// order of subject and version: the live ones, or all with deleted; only
// each subject's latest with latestOnly.
func (r *Registry) Schemas(prefix string, deleted, latestOnly bool) ([]SubjectSchema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	subjects := slices.Sorted(maps.Keys(r.st.subjects))
	out := []SubjectSchema{}
	for _, s := range subjects {
		if !strings.HasPrefix(s, prefix) {
			continue
		}
		vs := r.st.versionNumbers(s, deleted)
		if latestOnly && len(vs) > 0 {
			vs = vs[len(vs)-1:]
		}
		for _, n := range vs {
			out = append(out, r.subjectSchemaLocked(s, n))
		}
	}
	return out, nil
}

// SchemaByID returns the schema stored under an id.
func (r *Registry) SchemaByID(id int) (SubjectSchema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.st.ids[id]
	if s == nil {
		return SubjectSchema{}, errSchemaNotFound("Schema %d not found", id)
	}
	return SubjectSchema{ID: id, SchemaType: apiType(s.typ), References: s.refs, Schema: s.text}, nil
}

// SubjectVersion names a version of a subject.
type SubjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// IDUsage lists the versions that hold the schema of an id.
func (r *Registry) IDUsage(id int, deleted bool) ([]SubjectVersion, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.st.ids[id] == nil {
		return nil, errSchemaNotFound("Schema %d not found", id)
	}
	out := []SubjectVersion{}
	for s := range r.st.subjects {
		for _, n := range r.st.versionNumbers(s, deleted) {
			if r.st.subjects[s][n].id == id {
				out = append(out, SubjectVersion{s, n})
			}
		}
	}
	slices.SortFunc(out, func(a, b SubjectVersion) int {
		if c := strings.Compare(a.Subject, b.Subject); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return out, nil
}

// ReferencedBy lists the ids of the schemas that reference version n of
// a subject.
func (r *Registry) ReferencedBy(subject string, n int) ([]int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n, v := r.st.resolveVersion(subject, n, true)
	if v == nil {
		if len(r.st.versionNumbers(subject, true)) == 0 {
			return nil, errSubjectNotFound(subject)
		}
		return nil, errVersionNotFound(subject, n)
	}
	return r.referencedByLocked(subject, n, true), nil
}

// REQUIRES: r.mu held.
func (r *Registry) referencedByLocked(subject string, n int, deleted bool) []int {
	out := []int{}
	for s, vs := range r.st.subjects {
		for _, v := range vs {
			if v.deleted && !deleted {
				continue
			}
			for _, ref := range r.st.ids[v.id].refs {
				rn, _ := r.st.resolveVersion(ref.Subject, ref.Version, true)
				if ref.Subject == subject && rn == n && !slices.Contains(out, v.id) && s != "" {
					out = append(out, v.id)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// DeleteSubject soft-deletes a subject's versions, or, with permanent,
// removes the versions soft-deleted before. It returns the versions.
func (r *Registry) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	all := r.st.versionNumbers(subject, true)
	live := r.st.versionNumbers(subject, false)
	mode := r.st.modeOf(subject)
	_, hasCompat := r.st.configs[subject]
	_, hasMode := r.st.subjectMode[subject]
	var refErr error
	for _, n := range all {
		if ids := r.referencedByLocked(subject, n, permanent); len(ids) > 0 {
			refErr = errorf(http.StatusUnprocessableEntity, codeReferenceExists,
				"One or more references exist to the schema {subject=%s,version=%d}", subject, n)
		}
	}
	r.mu.RUnlock()
	switch {
	case mode == ModeReadOnly:
		return nil, errNotPermitted("Subject %s is in read-only mode", subject)
	case len(all) == 0:
		return nil, errSubjectNotFound(subject)
	case !permanent && len(live) == 0:
		return nil, errorf(http.StatusNotFound, codeSubjectSoftDeleted,
			"Subject '%s' was soft deleted.Set permanent=true to delete permanently", subject)
	case permanent && len(live) > 0:
		return nil, errorf(http.StatusNotFound, codeSubjectNotSoftDeleted,
			"Subject '%s' was not deleted first before being permanently deleted", subject)
	case refErr != nil:
		return nil, refErr
	}
	if !permanent {
		for _, n := range live {
			if err := r.rewriteDeletedLocked(ctx, subject, n); err != nil {
				return nil, err
			}
		}
		return live, nil
	}
	for _, n := range all {
		if err := r.appendAndWait(ctx, schemaKey(subject, n), nil); err != nil {
			return nil, errStore(err)
		}
	}
	// A subject gone for good takes its own config and mode with it.
	if hasCompat {
		if err := r.appendAndWait(ctx, configKey(keyConfig, subject), nil); err != nil {
			return nil, errStore(err)
		}
	}
	if hasMode {
		if err := r.appendAndWait(ctx, configKey(keyMode, subject), nil); err != nil {
			return nil, errStore(err)
		}
	}
	return all, nil
}

// rewriteDeletedLocked writes version n of a subject again, marked
// deleted. REQUIRES: r.writeMu held.
func (r *Registry) rewriteDeletedLocked(ctx context.Context, subject string, n int) error {
	r.mu.RLock()
	v := r.st.subjects[subject][n]
	s := r.st.ids[v.id]
	refs := s.refs
	if refs == nil {
		refs = []Reference{}
	}
	val, _ := json.Marshal(schemaValue{Subject: subject, Version: n, ID: v.id, SchemaType: s.typ,
		References: refs, Schema: s.text, Deleted: true})
	r.mu.RUnlock()
	if err := r.appendAndWait(ctx, schemaKey(subject, n), val); err != nil {
		return errStore(err)
	}
	return nil
}

// DeleteVersion soft-deletes version n of a subject (-1: the latest), or,
// with permanent, removes a version soft-deleted before.
func (r *Registry) DeleteVersion(ctx context.Context, subject string, n int, permanent bool) (int, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	mode := r.st.modeOf(subject)
	exists := len(r.st.versionNumbers(subject, true)) > 0
	n, v := r.st.resolveVersion(subject, n, permanent)
	var deleted bool
	var refs []int
	if v != nil {
		deleted = v.deleted
		refs = r.referencedByLocked(subject, n, permanent)
	} else if !permanent {
		// A version soft-deleted before answers differently from one
		// that never was.
		if old := r.st.subjects[subject][n]; old != nil {
			v, deleted = old, true
		}
	}
	r.mu.RUnlock()
	switch {
	case mode == ModeReadOnly:
		return 0, errNotPermitted("Subject %s is in read-only mode", subject)
	case !exists:
		return 0, errSubjectNotFound(subject)
	case v == nil:
		return 0, errVersionNotFound(subject, n)
	case !permanent && deleted:
		return 0, errorf(http.StatusNotFound, codeVersionSoftDeleted,
			"Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", subject, n)
	case permanent && !deleted:
		return 0, errorf(http.StatusNotFound, codeVersionNotSoftDeleted,
			"Subject '%s' Version %d was not deleted first before being permanently deleted", subject, n)
	case len(refs) > 0:
		return 0, errorf(http.StatusUnprocessableEntity, codeReferenceExists,
			"One or more references exist to the schema {subject=%s,version=%d}", subject, n)
	}
	if !permanent {
		return n, r.rewriteDeletedLocked(ctx, subject, n)
	}
	if err := r.appendAndWait(ctx, schemaKey(subject, n), nil); err != nil {
		return 0, errStore(err)
	}
	return n, nil
}

// CompatResult is the answer of a compatibility check.
type CompatResult struct {
	IsCompatible bool     `json:"is_compatible"`
	Messages     []string `json:"messages,omitempty"`
}

// CheckCompatibility checks a schema against version n of a subject (-1:
// the latest) at the subject's level, or, when all, against every version
// the level says.
func (r *Registry) CheckCompatibility(subject string, n int, all bool, req SchemaRequest) (CompatResult, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, _, err := r.parseRequestLocked(&req)
	if err != nil {
		return CompatResult{}, err
	}
	level := r.st.compatOf(subject, r.cfg.DefaultCompatibility)
	earlier, err := r.earlierLocked(subject)
	if err != nil {
		return CompatResult{}, err
	}
	if !all {
		if len(r.st.versionNumbers(subject, false)) == 0 {
			return CompatResult{}, errSubjectNotFound(subject)
		}
		n, v := r.st.resolveVersion(subject, n, false)
		if v == nil {
			return CompatResult{}, errVersionNotFound(subject, n)
		}
		s := r.st.ids[v.id]
		old, err := r.st.parse(s.typ, s.text, s.refs)
		if err != nil {
			return CompatResult{}, errorf(http.StatusInternalServerError, codeStoreError, "stored version does not parse: %v", err)
		}
		earlier = []*avroschema.Schema{old.Root}
	}
	msgs := compatible(level, p.Root, earlier)
	return CompatResult{IsCompatible: len(msgs) == 0, Messages: msgs}, nil
}

// ConfigAnswer is a config as GET /config answers it.
type ConfigAnswer struct {
	CompatibilityLevel string `json:"compatibilityLevel,omitempty"`
	Normalize          *bool  `json:"normalize,omitempty"`
}

// Config returns the config of a subject ("" for the global one): its
// compatibility level and normalize setting. A subject without its own
// config answers 40408 unless defaultToGlobal, which answers what applies
// to the subject.
func (r *Registry) Config(subject string, defaultToGlobal bool) (ConfigAnswer, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if subject == "" || defaultToGlobal {
		n := r.st.normalizeOf(subject)
		a := ConfigAnswer{CompatibilityLevel: r.st.compatOf(subject, r.cfg.DefaultCompatibility)}
		if n {
			a.Normalize = &n
		}
		return a, nil
	}
	c, ok := r.st.configs[subject]
	if !ok {
		return ConfigAnswer{}, errorf(http.StatusNotFound, codeSubjectCompatNotSet,
			"Subject '%s' does not have subject-level compatibility configured", subject)
	}
	return ConfigAnswer(c), nil
}

// Compatibility returns the compatibility level of a subject ("" for the
// global one). A subject without its own level answers 40408 unless
// defaultToGlobal.
func (r *Registry) Compatibility(subject string, defaultToGlobal bool) (string, error) {
	c, err := r.Config(subject, defaultToGlobal)
	if err == nil && c.CompatibilityLevel == "" {
		r.mu.RLock()
		c.CompatibilityLevel = r.st.compatOf(subject, r.cfg.DefaultCompatibility)
		r.mu.RUnlock()
	}
	return c.CompatibilityLevel, err
}

// SetCompatibility sets the compatibility level of a subject ("" for the
// global one), keeping its normalize setting.
func (r *Registry) SetCompatibility(ctx context.Context, subject, level string) error {
	return r.SetConfig(ctx, subject, level, nil)
}

// SetConfig sets the config of a subject ("" for the global one): its
// compatibility level, unless level is "", and its normalize setting,
// unless normalize is nil; what is not given stays as it was.
func (r *Registry) SetConfig(ctx context.Context, subject, level string, normalize *bool) error {
	level = strings.ToUpper(level)
	if (level != "" || normalize == nil) && !slices.Contains(compatLevels, level) {
		return errorf(http.StatusUnprocessableEntity, codeInvalidCompatibility,
			"Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")
	}
	if subject != "" {
		if err := checkSubject(subject); err != nil {
			return err
		}
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	c := r.st.configs[subject]
	r.mu.RUnlock()
	if level != "" {
		c.CompatibilityLevel = level
	}
	if normalize != nil {
		c.Normalize = normalize
	}
	val, _ := json.Marshal(c)
	if err := r.appendAndWait(ctx, configKey(keyConfig, subject), val); err != nil {
		return errStore(err)
	}
	return nil
}

// DeleteCompatibility removes the config of a subject ("" for the global
// one) and returns the level it had.
func (r *Registry) DeleteCompatibility(ctx context.Context, subject string) (string, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	prev := r.st.compatOf(subject, r.cfg.DefaultCompatibility)
	_, set := r.st.configs[subject]
	r.mu.RUnlock()
	if subject != "" && !set {
		return "", errorf(http.StatusNotFound, codeSubjectCompatNotSet,
			"Subject '%s' does not have subject-level compatibility configured", subject)
	}
	if err := r.appendAndWait(ctx, configKey(keyConfig, subject), nil); err != nil {
		return "", errStore(err)
	}
	return prev, nil
}

// Mode returns the mode of a subject ("" for the global one); a subject
// without its own mode answers 40409 unless defaultToGlobal.
func (r *Registry) Mode(subject string, defaultToGlobal bool) (string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if subject == "" || defaultToGlobal {
		return r.st.modeOf(subject), nil
	}
	if m := r.st.subjectMode[subject]; m != "" {
		return m, nil
	}
	return "", errorf(http.StatusNotFound, codeSubjectModeNotSet,
		"Subject '%s' does not have subject-level mode configured", subject)
}

// SetMode sets the mode of a subject ("" for the global one). IMPORT
// needs the registry (or subject) to hold no schemas, unless force.
func (r *Registry) SetMode(ctx context.Context, subject, mode string, force bool) error {
	mode = strings.ToUpper(mode)
	if !slices.Contains(modes, mode) {
		return errorf(http.StatusUnprocessableEntity, codeInvalidMode,
			"Invalid mode. Valid values are READWRITE, READONLY and IMPORT")
	}
	if subject != "" {
		if err := checkSubject(subject); err != nil {
			return err
		}
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if mode == ModeImport && !force {
		r.mu.RLock()
		var busy bool
		for s := range r.st.subjects {
			busy = busy || ((subject == "" || s == subject) && len(r.st.versionNumbers(s, false)) > 0)
		}
		r.mu.RUnlock()
		if busy {
			return errNotPermitted("Cannot import since found existing subjects")
		}
	}
	val, _ := json.Marshal(modeValue{Mode: mode})
	if err := r.appendAndWait(ctx, configKey(keyMode, subject), val); err != nil {
		return errStore(err)
	}
	return nil
}

// DeleteMode removes the mode of a subject and returns the one it had.
func (r *Registry) DeleteMode(ctx context.Context, subject string) (string, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	prev := r.st.modeOf(subject)
	_, set := r.st.subjectMode[subject]
	r.mu.RUnlock()
	if subject != "" && !set {
		return "", errorf(http.StatusNotFound, codeSubjectModeNotSet,
			"Subject '%s' does not have subject-level mode configured", subject)
	}
	if err := r.appendAndWait(ctx, configKey(keyMode, subject), nil); err != nil {
		return "", errStore(err)
	}
	return prev, nil
}

// asError turns any error into the API's error.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errorf(http.StatusInternalServerError, codeStoreTimeout, "Operation timed out: %v", err)
	}
	return errorf(http.StatusInternalServerError, codeStoreError, "%v", err)
}
