package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// startMem starts a registry on log, served over HTTP in-process, with
// franz-go's client pointed at it.
func startMem(t *testing.T, log *memLog) (*Registry, *sr.Client, string) {
	t.Helper()
	r, err := New(context.Background(), log.reader(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(func() { srv.Close(); r.Close() })
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	return r, cl, srv.URL
}

const (
	userV1 = `{"type":"record","name":"User","namespace":"app","fields":[{"name":"id","type":"long"}]}`
	userV2 = `{"type":"record","name":"User","namespace":"app","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null}]}`
	// userBad adds a field without a default: old data cannot be read.
	userBad = `{"type":"record","name":"User","namespace":"app","fields":[{"name":"id","type":"long"},{"name":"age","type":"int"}]}`
)

func avro(s string) sr.Schema { return sr.Schema{Schema: s, Type: sr.TypeAvro} }

// wantCode checks that err is the registry's error with a Confluent code.
func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a response error with code %d", err, code)
	}
	if re.ErrorCode != code {
		t.Fatalf("error code %d (%s), want %d", re.ErrorCode, re.Message, code)
	}
}

func TestAPIRegisterLookupEvolve(t *testing.T) {
	ctx := context.Background()
	_, cl, _ := startMem(t, newMemLog())

	s1, err := cl.CreateSchema(ctx, "users-value", avro(userV1))
	if err != nil {
		t.Fatal(err)
	}
	if s1.ID != 1 || s1.Version != 1 {
		t.Fatalf("first schema: id %d version %d, want 1 1", s1.ID, s1.Version)
	}
	// The same schema written differently is the same schema: same id,
	// no new version.
	respaced := strings.ReplaceAll(userV1, ",", " , ")
	again, err := cl.CreateSchema(ctx, "users-value", avro(respaced))
	if err != nil || again.ID != 1 || again.Version != 1 {
		t.Fatalf("re-register: %+v, %v", again, err)
	}
	// Under another subject it keeps its id.
	other, err := cl.CreateSchema(ctx, "other-value", avro(userV1))
	if err != nil || other.ID != 1 {
		t.Fatalf("other subject: %+v, %v", other, err)
	}
	s2, err := cl.CreateSchema(ctx, "users-value", avro(userV2))
	if err != nil || s2.ID != 2 || s2.Version != 2 {
		t.Fatalf("compatible evolution: %+v, %v", s2, err)
	}
	_, err = cl.CreateSchema(ctx, "users-value", avro(userBad))
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusConflict || re.ErrorCode != 409 {
		t.Fatalf("incompatible: err %v, want 409", err)
	}
	chk, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), "users-value", -1, avro(userBad))
	if err != nil || chk.Is || len(chk.Messages) == 0 {
		t.Fatalf("compatibility check: %+v, %v", chk, err)
	}

	got, err := cl.LookupSchema(ctx, "users-value", avro(userV1))
	if err != nil || got.Version != 1 || got.ID != 1 {
		t.Fatalf("lookup: %+v, %v", got, err)
	}
	_, err = cl.LookupSchema(ctx, "users-value", avro(userBad))
	wantCode(t, err, codeSchemaNotFound)
	_, err = cl.LookupSchema(ctx, "nobody", avro(userV1))
	wantCode(t, err, codeSubjectNotFound)

	byID, err := cl.SchemaByID(ctx, 2)
	if err != nil || byID.Schema != userV2 {
		t.Fatalf("by id: %+v, %v", byID, err)
	}
	_, err = cl.SchemaByID(ctx, 99)
	wantCode(t, err, codeSchemaNotFound)
	subs, err := cl.SubjectsByID(ctx, 1)
	if err != nil || !slices.Equal(subs, []string{"other-value", "users-value"}) {
		t.Fatalf("subjects of id 1: %v, %v", subs, err)
	}
	latest, err := cl.SchemaByVersion(ctx, "users-value", -1)
	if err != nil || latest.Version != 2 {
		t.Fatalf("latest: %+v, %v", latest, err)
	}
	_, err = cl.SchemaByVersion(ctx, "users-value", 7)
	wantCode(t, err, codeVersionNotFound)
	_, err = cl.CreateSchema(ctx, "users-value", avro(`{"type":"record","name":"X"}`))
	wantCode(t, err, codeInvalidSchema)
	_, err = cl.CreateSchema(ctx, "users-value", sr.Schema{Schema: `syntax = "proto3";`, Type: sr.TypeProtobuf})
	wantCode(t, err, codeInvalidSchema)
	types, err := cl.SupportedTypes(ctx)
	if err != nil || !slices.Equal(types, []sr.SchemaType{sr.TypeAvro}) {
		t.Fatalf("types: %v, %v", types, err)
	}
}

func TestAPIDeleteSoftThenPermanent(t *testing.T) {
	ctx := context.Background()
	_, cl, _ := startMem(t, newMemLog())
	for _, s := range []string{userV1, userV2} {
		if _, err := cl.CreateSchema(ctx, "users-value", avro(s)); err != nil {
			t.Fatal(err)
		}
	}
	// Permanent before soft is refused.
	_, err := cl.DeleteSubject(ctx, "users-value", sr.HardDelete)
	wantCode(t, err, codeSubjectNotSoftDeleted)
	if err := cl.DeleteSchema(ctx, "users-value", 2, sr.HardDelete); err == nil {
		t.Fatal("hard delete of a live version succeeded")
	} else {
		wantCode(t, err, codeVersionNotSoftDeleted)
	}
	if err := cl.DeleteSchema(ctx, "users-value", 2, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	err = cl.DeleteSchema(ctx, "users-value", 2, sr.SoftDelete)
	wantCode(t, err, codeVersionSoftDeleted)
	vs, err := cl.SubjectVersions(ctx, "users-value")
	if err != nil || !slices.Equal(vs, []int{1}) {
		t.Fatalf("versions after soft delete: %v, %v", vs, err)
	}
	// Soft-deleted versions are still there when asked for.
	if _, err := cl.SchemaByVersion(sr.WithParams(ctx, sr.ShowDeleted), "users-value", 2); err != nil {
		t.Fatal(err)
	}
	deleted, err := cl.DeleteSubject(ctx, "users-value", sr.SoftDelete)
	if err != nil || !slices.Equal(deleted, []int{1}) {
		t.Fatalf("soft delete subject: %v, %v", deleted, err)
	}
	_, err = cl.DeleteSubject(ctx, "users-value", sr.SoftDelete)
	wantCode(t, err, codeSubjectSoftDeleted)
	subs, _ := cl.Subjects(ctx)
	if len(subs) != 0 {
		t.Fatalf("subjects after soft delete: %v", subs)
	}
	deleted, err = cl.DeleteSubject(ctx, "users-value", sr.HardDelete)
	if err != nil || !slices.Equal(deleted, []int{1, 2}) {
		t.Fatalf("hard delete subject: %v, %v", deleted, err)
	}
	_, err = cl.SchemaByID(ctx, 1)
	wantCode(t, err, codeSchemaNotFound)
	_, err = cl.DeleteSubject(ctx, "users-value", sr.SoftDelete)
	wantCode(t, err, codeSubjectNotFound)
	// Ids are never reused.
	s, err := cl.CreateSchema(ctx, "users-value", avro(userBad))
	if err != nil || s.ID != 3 || s.Version != 1 {
		t.Fatalf("after hard delete: %+v, %v", s, err)
	}
}

func TestAPIConfigAndMode(t *testing.T) {
	ctx := context.Background()
	_, cl, _ := startMem(t, newMemLog())
	if res := cl.Compatibility(ctx); res[0].Err != nil || res[0].Level != sr.CompatBackward {
		t.Fatalf("default level: %+v", res[0])
	}
	res := cl.Compatibility(ctx, "users-value")
	wantCode(t, res[0].Err, codeSubjectCompatNotSet)
	if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "users-value"); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	for _, s := range []string{userV1, userBad} {
		if _, err := cl.CreateSchema(ctx, "users-value", avro(s)); err != nil {
			t.Fatalf("NONE refused a change: %v", err)
		}
	}
	if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFullTransitive}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if res := cl.Compatibility(ctx); res[0].Level != sr.CompatFullTransitive {
		t.Fatalf("global level: %+v", res[0])
	}
	if res := cl.ResetCompatibility(ctx, "users-value"); res[0].Err != nil || res[0].Level != sr.CompatNone {
		t.Fatalf("reset: %+v", res[0])
	}
	if _, err := cl.CreateSchema(ctx, "users-value", avro(userV2)); err == nil {
		t.Fatal("FULL_TRANSITIVE accepted a schema the second version cannot read")
	}
	var body struct{}
	err := cl.Do(ctx, http.MethodPut, "/config", map[string]string{"compatibility": "SIDEWAYS"}, &body)
	wantCode(t, err, codeInvalidCompatibility)

	if res := cl.SetMode(ctx, sr.ModeReadOnly); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	_, err = cl.CreateSchema(ctx, "x-value", avro(userV1))
	wantCode(t, err, codeOperationNotPermitted)
	res2 := cl.SetMode(ctx, sr.ModeImport)
	wantCode(t, res2[0].Err, codeOperationNotPermitted) // subjects exist
	if res := cl.SetMode(sr.WithParams(ctx, sr.Force), sr.ModeImport); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	// IMPORT keeps the id and version it is given.
	s, err := cl.CreateSchemaWithIDAndVersion(ctx, "imported", avro(userV1), 100, 5)
	if err != nil || s.ID != 100 || s.Version != 5 {
		t.Fatalf("import: %+v, %v", s, err)
	}
	if m := cl.Mode(ctx); m[0].Mode != sr.ModeImport {
		t.Fatalf("mode: %+v", m[0])
	}
}

func TestAPIReferences(t *testing.T) {
	ctx := context.Background()
	_, cl, _ := startMem(t, newMemLog())
	addr := `{"type":"record","name":"Address","namespace":"app","fields":[{"name":"city","type":"string"}]}`
	if _, err := cl.CreateSchema(ctx, "address", avro(addr)); err != nil {
		t.Fatal(err)
	}
	person := sr.Schema{
		Schema:     `{"type":"record","name":"Person","namespace":"app","fields":[{"name":"home","type":"Address"}]}`,
		References: []sr.SchemaReference{{Name: "app.Address", Subject: "address", Version: 1}},
	}
	p, err := cl.CreateSchema(ctx, "person", person)
	if err != nil {
		t.Fatal(err)
	}
	// Without the reference the name is unknown.
	_, err = cl.CreateSchema(ctx, "person2", avro(person.Schema))
	wantCode(t, err, codeInvalidSchema)
	var ids []int
	if err := cl.Do(ctx, http.MethodGet, "/subjects/address/versions/1/referencedby", nil, &ids); err != nil || !slices.Equal(ids, []int{p.ID}) {
		t.Fatalf("referencedby: %v, %v", ids, err)
	}
	if err := cl.DeleteSchema(ctx, "address", 1, sr.SoftDelete); err == nil {
		t.Fatal("deleted a referenced schema")
	} else {
		wantCode(t, err, codeReferenceExists)
	}
}

// TestAPIRestart reads everything back after a new registry replays the
// same log.
func TestAPIRestart(t *testing.T) {
	ctx := context.Background()
	log := newMemLog()
	r1, cl, _ := startMem(t, log)
	for _, s := range []string{userV1, userV2} {
		if _, err := cl.CreateSchema(ctx, "users-value", avro(s)); err != nil {
			t.Fatal(err)
		}
	}
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForward}, "users-value")
	cl.SetMode(ctx, sr.ModeReadOnly, "frozen")
	cl.DeleteSchema(ctx, "users-value", 1, sr.SoftDelete)
	r1.Close()

	_, cl2, _ := startMem(t, log)
	got, err := cl2.SchemaByVersion(ctx, "users-value", -1)
	if err != nil || got.ID != 2 || got.Version != 2 || got.Schema.Schema != userV2 {
		t.Fatalf("after restart: %+v, %v", got, err)
	}
	if vs, _ := cl2.SubjectVersions(ctx, "users-value"); !slices.Equal(vs, []int{2}) {
		t.Fatalf("versions after restart: %v", vs)
	}
	if res := cl2.Compatibility(ctx, "users-value"); res[0].Level != sr.CompatForward {
		t.Fatalf("config after restart: %+v", res[0])
	}
	if res := cl2.Mode(ctx, "frozen"); res[0].Mode != sr.ModeReadOnly {
		t.Fatalf("mode after restart: %+v", res[0])
	}
	if vs, _ := cl2.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), "users-value"); !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("versions with the soft-deleted after restart: %v", vs)
	}
	s, err := cl2.CreateSchema(ctx, "new-value", avro(`"string"`))
	if err != nil || s.ID != 3 {
		t.Fatalf("next id after restart: %+v, %v", s, err)
	}
}

func TestAPIErrorBodies(t *testing.T) {
	_, _, url := startMem(t, newMemLog())
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/subjects/nope/versions", "", 404, `{"error_code":40401,"message":"Subject 'nope' not found."}`},
		{"GET", "/subjects/nope/versions/zero", "", 422, `"error_code":42202`},
		{"POST", "/subjects/s/versions", `{"schema":`, 400, `"error_code":400`},
		{"POST", "/subjects/s/versions", `{"schema":"{\"type\":\"nope\"}"}`, 422, `"error_code":42201`},
		{"PUT", "/mode", `{"mode":"SOMETIMES"}`, 422, `"error_code":42204`},
		{"GET", "/schemas/ids/-4", "", 404, `"error_code":40403`},
		{"GET", "/no/such/path", "", 404, `"error_code":404`},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s %s: %d %s, want %d containing %s", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != ContentType {
			t.Errorf("%s %s: content type %q", tc.method, tc.path, ct)
		}
	}
}

// TestAPIConcurrentWriterConflict: another registry's record that takes
// the id this one chose lands first; this registration fails instead of
// giving one id to two schemas, and a retry gets a fresh id.
func TestAPIConcurrentWriterConflict(t *testing.T) {
	ctx := context.Background()
	log := newMemLog()
	_, cl, _ := startMem(t, log)
	log.mu.Lock()
	log.inject = &Record{Key: schemaKey("theirs", 1),
		Value: []byte(`{"subject":"theirs","version":1,"id":1,"schemaType":"AVRO","references":[],"schema":"\"string\"","deleted":false}`)}
	log.mu.Unlock()
	_, err := cl.CreateSchema(ctx, "mine", avro(`"int"`))
	wantCode(t, err, codeStoreError)
	if s, err := cl.SchemaByID(ctx, 1); err != nil || s.Schema != `"string"` {
		t.Fatalf("id 1: %+v, %v; want the first writer's schema", s, err)
	}
	s, err := cl.CreateSchema(ctx, "mine", avro(`"int"`))
	if err != nil || s.ID != 2 {
		t.Fatalf("retry: %+v, %v", s, err)
	}
}
