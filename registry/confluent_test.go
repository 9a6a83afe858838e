package registry

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// These tests hold the registry to details of Confluent's Schema Registry
// that its clients rely on: the listings of soft-deleted subjects and
// versions, defaultToGlobal, registering again a soft-deleted schema,
// IMPORT mode's ids, normalize, GET /schemas and GET /contexts.

// call sends a request to the registry at url and decodes the JSON answer
// into out (when not nil); it returns the HTTP status and the body.
func call(t *testing.T, url, method, path, body string, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ContentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != ContentType {
		t.Fatalf("%s %s: content type %q, want %q", method, path, ct, ContentType)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// wantAnswer checks a request's answer: the status and, decoded, the value.
func wantAnswer[T any](t *testing.T, url, method, path, body string, status int, want T) {
	t.Helper()
	var got T
	code, raw := call(t, url, method, path, body, &got)
	if code != status {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, raw, status)
	}
	if status == http.StatusOK && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %s: %s, want %v", method, path, raw, want)
	}
}

// wantError checks that a request is answered with a Confluent error code.
func wantError(t *testing.T, url, method, path, body string, status, code int) {
	t.Helper()
	got, raw := call(t, url, method, path, body, nil)
	var e Error
	json.Unmarshal([]byte(raw), &e)
	if got != status || e.Code != code {
		t.Fatalf("%s %s: %d %s, want %d with error_code %d", method, path, got, raw, status, code)
	}
}

func schemaJSON(schema string) string {
	b, _ := json.Marshal(map[string]string{"schema": schema})
	return string(b)
}

// TestAPIListingsOfDeleted: ?deleted lists soft-deleted subjects and
// versions too, ?deletedOnly only them, and a lookup finds a
// soft-deleted version only with ?deleted.
func TestAPIListingsOfDeleted(t *testing.T) {
	ctx := context.Background()
	_, cl, url := startMem(t, newMemLog())
	for _, s := range []struct{ subject, schema string }{{"a-value", userV1}, {"a-value", userV2}, {"b-value", userV1}} {
		if _, err := cl.CreateSchema(ctx, s.subject, avro(s.schema)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.DeleteSchema(ctx, "a-value", 2, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(ctx, "b-value", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]string{
		"/subjects":                              {"a-value"},
		"/subjects?deleted=true":                 {"a-value", "b-value"},
		"/subjects?deletedOnly=true":             {"b-value"},
		"/subjects?subjectPrefix=b":              {},
		"/subjects?subjectPrefix=b&deleted=true": {"b-value"},
	} {
		wantAnswer(t, url, "GET", path, "", 200, want)
	}
	for path, want := range map[string][]int{
		"/subjects/a-value/versions":                  {1},
		"/subjects/a-value/versions?deleted=true":     {1, 2},
		"/subjects/a-value/versions?deletedOnly=true": {2},
		"/subjects/b-value/versions?deleted=true":     {1},
	} {
		wantAnswer(t, url, "GET", path, "", 200, want)
	}
	wantError(t, url, "GET", "/subjects/b-value/versions", "", 404, codeSubjectNotFound)
	wantError(t, url, "GET", "/subjects/a-value/versions/2", "", 404, codeVersionNotFound)
	wantAnswer(t, url, "GET", "/subjects/a-value/versions/2?deleted=true", "", 200,
		SubjectSchema{Subject: "a-value", Version: 2, ID: 2, Schema: userV2})

	wantError(t, url, "POST", "/subjects/a-value", schemaJSON(userV2), 404, codeSchemaNotFound)
	wantAnswer(t, url, "POST", "/subjects/a-value?deleted=true", schemaJSON(userV2), 200,
		SubjectSchema{Subject: "a-value", Version: 2, ID: 2, Schema: userV2})
	wantError(t, url, "POST", "/subjects/b-value", schemaJSON(userV1), 404, codeSubjectNotFound)
}

// TestAPIDefaultToGlobal: a subject without its own config or mode
// answers 40408 and 40409, and with ?defaultToGlobal what applies to it.
func TestAPIDefaultToGlobal(t *testing.T) {
	_, _, url := startMem(t, newMemLog())
	wantAnswer(t, url, "PUT", "/config", `{"compatibility":"FULL"}`, 200, map[string]string{"compatibility": "FULL"})
	wantError(t, url, "GET", "/config/s-value", "", 404, codeSubjectCompatNotSet)
	wantAnswer(t, url, "GET", "/config/s-value?defaultToGlobal=true", "", 200, map[string]string{"compatibilityLevel": "FULL"})
	wantError(t, url, "GET", "/mode/s-value", "", 404, codeSubjectModeNotSet)
	wantAnswer(t, url, "GET", "/mode/s-value?defaultToGlobal=true", "", 200, map[string]string{"mode": "READWRITE"})
	wantAnswer(t, url, "PUT", "/config/s-value", `{"compatibility":"none"}`, 200, map[string]string{"compatibility": "none"})
	wantAnswer(t, url, "GET", "/config/s-value", "", 200, map[string]string{"compatibilityLevel": "NONE"})
	wantAnswer(t, url, "GET", "/config", "", 200, map[string]string{"compatibilityLevel": "FULL"})
	wantError(t, url, "PUT", "/config/s-value", `{}`, 422, codeInvalidCompatibility)
}

// TestAPIRegisterSoftDeletedAgain: registering again a schema whose
// version was soft-deleted makes a new version under the same id, and
// the soft-deleted version is removed for good, as Confluent does.
func TestAPIRegisterSoftDeletedAgain(t *testing.T) {
	ctx := context.Background()
	_, cl, url := startMem(t, newMemLog())
	for _, s := range []string{userV1, userV2} {
		if _, err := cl.CreateSchema(ctx, "users-value", avro(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.DeleteSchema(ctx, "users-value", 2, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	var got Registered
	if code, raw := call(t, url, "POST", "/subjects/users-value/versions", schemaJSON(userV2), &got); code != 200 || got.ID != 2 || got.Version != 3 {
		t.Fatalf("registering the soft-deleted schema again: %d %s, want id 2 version 3", code, raw)
	}
	wantAnswer(t, url, "GET", "/subjects/users-value/versions?deleted=true", "", 200, []int{1, 3})
	wantAnswer(t, url, "GET", "/schemas/ids/2/versions?deleted=true", "", 200, []SubjectVersion{{"users-value", 3}})
	// And once more: the live version answers, nothing new is made.
	if code, raw := call(t, url, "POST", "/subjects/users-value/versions", schemaJSON(userV2), &got); code != 200 || got.ID != 2 || got.Version != 3 {
		t.Fatalf("registering it a third time: %d %s, want id 2 version 3", code, raw)
	}
}

// TestAPIImportIDs: an id given with a registration is taken only in
// IMPORT mode, where one must be given; outside it a version must be
// the next one.
func TestAPIImportIDs(t *testing.T) {
	_, _, url := startMem(t, newMemLog())
	withID := func(schema string, id, version int) string {
		b, _ := json.Marshal(SchemaRequest{Schema: schema, ID: id, Version: version})
		return string(b)
	}
	wantError(t, url, "POST", "/subjects/s/versions", withID(userV1, 1, 0), 422, codeOperationNotPermitted)
	wantError(t, url, "POST", "/subjects/s/versions", withID(userV1, 0, 2), 422, codeInvalidSchema)
	wantAnswer(t, url, "POST", "/subjects/s/versions", withID(userV1, 0, 1), 200,
		Registered{ID: 1, Version: 1, Schema: userV1})

	wantAnswer(t, url, "PUT", "/mode/imported", `{"mode":"IMPORT"}`, 200, map[string]string{"mode": "IMPORT"})
	wantError(t, url, "POST", "/subjects/imported/versions", schemaJSON(userV2), 422, codeOperationNotPermitted)
	wantAnswer(t, url, "POST", "/subjects/imported/versions", withID(userV2, 40, 7), 200,
		Registered{ID: 40, Version: 7, Schema: userV2})
	// Another schema may not take an id in use.
	wantError(t, url, "POST", "/subjects/imported/versions", withID(userBad, 1, 8), 422, codeOperationNotPermitted)
	// The same schema with its id again is the version it has.
	wantAnswer(t, url, "POST", "/subjects/imported/versions", withID(userV2, 40, 0), 200,
		Registered{ID: 40, Version: 7, Schema: userV2})
	// Ids go on after the largest imported one.
	wantAnswer(t, url, "POST", "/subjects/t/versions", schemaJSON(`"string"`), 200,
		Registered{ID: 41, Version: 1, Schema: `"string"`})
}

// TestAPINormalize: with ?normalize=true, or a config saying normalize,
// a registration stores the normalized schema; a schema with references
// keeps naming the referenced types.
func TestAPINormalize(t *testing.T) {
	_, _, url := startMem(t, newMemLog())
	const (
		spaced = `{ "namespace": "app", "type": "record", "name": "User", "doc": "a user",
			"fields": [ { "type": "long", "name": "id" } ] }`
		normal = `{"type":"record","name":"app.User","fields":[{"name":"id","type":"long"}]}`
	)
	wantAnswer(t, url, "POST", "/subjects/plain/versions", schemaJSON(spaced), 200,
		Registered{ID: 1, Version: 1, Schema: spaced})
	wantAnswer(t, url, "POST", "/subjects/norm/versions?normalize=true", schemaJSON(spaced), 200,
		Registered{ID: 1, Version: 1, Schema: spaced})
	// The id is the schema's: the stored text is the first one's.
	wantAnswer(t, url, "POST", "/subjects/norm2/versions?normalize=true", schemaJSON(userV2), 200,
		Registered{ID: 2, Version: 1, Schema: `{"type":"record","name":"app.User","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null}]}`})

	wantAnswer(t, url, "PUT", "/config/by-config", `{"normalize":true}`, 200, map[string]bool{"normalize": true})
	yes := true
	wantAnswer(t, url, "GET", "/config/by-config", "", 200, ConfigAnswer{Normalize: &yes})
	wantAnswer(t, url, "GET", "/config/by-config?defaultToGlobal=true", "", 200, ConfigAnswer{CompatibilityLevel: "BACKWARD", Normalize: &yes})
	const other = `{"type" : "record", "name" : "Other", "fields" : [ {"name" : "x", "type" : "int"} ]}`
	wantAnswer(t, url, "POST", "/subjects/by-config/versions", schemaJSON(other), 200,
		Registered{ID: 3, Version: 1, Schema: `{"type":"record","name":"Other","fields":[{"name":"x","type":"int"}]}`})

	// References: the referenced type stays a name.
	const addr = `{"type":"record","name":"Address","namespace":"app","fields":[{"name":"city","type":"string"}]}`
	wantAnswer(t, url, "POST", "/subjects/address/versions", schemaJSON(addr), 200,
		Registered{ID: 4, Version: 1, Schema: addr})
	person, _ := json.Marshal(SchemaRequest{
		Schema:     `{"type":"record", "name":"Person", "namespace":"app", "fields":[{"name":"home", "type":"Address"}]}`,
		References: []Reference{{Name: "app.Address", Subject: "address", Version: 1}},
	})
	wantAnswer(t, url, "POST", "/subjects/person/versions?normalize=true", string(person), 200,
		Registered{ID: 5, Version: 1, References: []Reference{{Name: "app.Address", Subject: "address", Version: 1}},
			Schema: `{"type":"record","name":"app.Person","fields":[{"name":"home","type":"app.Address"}]}`})
	wantAnswer(t, url, "GET", "/schemas/ids/5/schema", "", 200,
		map[string]any{"type": "record", "name": "app.Person", "fields": []any{map[string]any{"name": "home", "type": "app.Address"}}})
}

// TestAPIAllSchemas: GET /schemas lists versions by subject prefix, with
// the soft-deleted ones on ?deleted and only the latest on ?latestOnly,
// as franz-go's AllSchemas asks; GET /contexts has the default context.
func TestAPIAllSchemas(t *testing.T) {
	ctx := context.Background()
	_, cl, _ := startMem(t, newMemLog())
	for _, s := range []struct{ subject, schema string }{{"a-value", userV1}, {"a-value", userV2}, {"b-value", `"string"`}} {
		if _, err := cl.CreateSchema(ctx, s.subject, avro(s.schema)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.DeleteSchema(ctx, "a-value", 2, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	list := func(ctx context.Context) []string {
		t.Helper()
		ss, err := cl.AllSchemas(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range ss {
			out = append(out, s.Subject+"/"+string(rune('0'+s.Version))+"/"+string(rune('0'+s.ID)))
		}
		return out
	}
	for _, tc := range []struct {
		params []sr.Param
		want   []string
	}{
		{nil, []string{"a-value/1/1", "b-value/1/3"}},
		{[]sr.Param{sr.ShowDeleted}, []string{"a-value/1/1", "a-value/2/2", "b-value/1/3"}},
		{[]sr.Param{sr.ShowDeleted, sr.LatestOnly}, []string{"a-value/2/2", "b-value/1/3"}},
		{[]sr.Param{sr.SubjectPrefix("b")}, []string{"b-value/1/3"}},
	} {
		if got := list(sr.WithParams(ctx, tc.params...)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("AllSchemas %v: %v, want %v", tc.params, got, tc.want)
		}
	}
	if cs, err := cl.Contexts(ctx); err != nil || !reflect.DeepEqual(cs, []string{"."}) {
		t.Fatalf("contexts: %v, %v", cs, err)
	}
}

// TestAPISameSchema: what decides "the same schema" (one id, no new
// version) is the schema's normalized form, which, as Avro's Parsing
// Canonical Form, ignores whitespace, attribute order, docs and other
// attributes without meaning, spells names in full and writes a bare
// primitive as its name; unlike it, it keeps what changes how data
// resolves (defaults, aliases), so adding a default is a new schema, as
// in Confluent's registry.
func TestAPISameSchema(t *testing.T) {
	_, _, url := startMem(t, newMemLog())
	const base = `{"type":"record","name":"app.Order","fields":[{"name":"id","type":"long"},{"name":"kind","type":{"type":"enum","name":"app.Kind","symbols":["A","B"]}}]}`
	register := func(subject, schema string) Registered {
		t.Helper()
		var got Registered
		if code, raw := call(t, url, "POST", "/subjects/"+subject+"/versions", schemaJSON(schema), &got); code != 200 {
			t.Fatalf("register %s: %d %s", schema, code, raw)
		}
		return got
	}
	if got := register("same", base); got.ID != 1 || got.Version != 1 {
		t.Fatalf("first: %+v", got)
	}
	for name, same := range map[string]string{
		"whitespace":       strings.ReplaceAll(strings.ReplaceAll(base, ",", " ,\n "), ":", " : "),
		"attribute order":  `{"fields":[{"type":"long","name":"id"},{"type":{"symbols":["A","B"],"name":"app.Kind","type":"enum"},"name":"kind"}],"name":"app.Order","type":"record"}`,
		"namespace":        `{"type":"record","namespace":"app","name":"Order","fields":[{"name":"id","type":"long"},{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}}]}`,
		"docs and extras":  `{"type":"record","name":"app.Order","doc":"an order","x-owner":"shop","fields":[{"name":"id","type":"long","doc":"its id"},{"name":"kind","type":{"type":"enum","name":"app.Kind","doc":"k","symbols":["A","B"]}}]}`,
		"primitive object": `{"type":"record","name":"app.Order","fields":[{"name":"id","type":{"type":"long"}},{"name":"kind","type":{"type":"enum","name":"app.Kind","symbols":["A","B"]}}]}`,
	} {
		if got := register("same", same); got.ID != 1 || got.Version != 1 {
			t.Errorf("%s: %+v, want id 1 version 1", name, got)
		}
	}
	withDefault := strings.Replace(base, `"type":"long"}`, `"type":"long","default":0}`, 1)
	if got := register("same", withDefault); got.ID != 2 || got.Version != 2 {
		t.Errorf("a default added: %+v, want a new schema, id 2 version 2", got)
	}
	withAlias := strings.Replace(base, `{"name":"id",`, `{"name":"id","aliases":["key"],`, 1)
	if got := register("same", withAlias); got.ID != 3 || got.Version != 3 {
		t.Errorf("an alias added: %+v, want a new schema, id 3 version 3", got)
	}
}

// TestAPIDeleteAnswers: the HTTP statuses and codes of deletes out of
// turn are Confluent's: 404 with 40404 to 40407, 422 with 42202 for a
// version that is not one.
func TestAPIDeleteAnswers(t *testing.T) {
	_, _, url := startMem(t, newMemLog())
	for _, s := range []string{userV1, userV2} {
		call(t, url, "POST", "/subjects/s/versions", schemaJSON(s), nil)
	}
	wantError(t, url, "DELETE", "/subjects/s/versions/2?permanent=true", "", 404, codeVersionNotSoftDeleted)
	wantError(t, url, "DELETE", "/subjects/s?permanent=true", "", 404, codeSubjectNotSoftDeleted)
	wantError(t, url, "DELETE", "/subjects/s/versions/0", "", 422, codeInvalidVersion)
	wantError(t, url, "DELETE", "/subjects/s/versions/x", "", 422, codeInvalidVersion)
	wantError(t, url, "DELETE", "/subjects/s/versions/9", "", 404, codeVersionNotFound)
	wantError(t, url, "DELETE", "/subjects/t/versions/1", "", 404, codeSubjectNotFound)
	wantAnswer(t, url, "DELETE", "/subjects/s/versions/latest", "", 200, 2)
	wantError(t, url, "DELETE", "/subjects/s/versions/2", "", 404, codeVersionSoftDeleted)
	wantAnswer(t, url, "DELETE", "/subjects/s/versions/2?permanent=true", "", 200, 2)
	wantError(t, url, "DELETE", "/subjects/s/versions/2?permanent=true", "", 404, codeVersionNotFound)
	wantAnswer(t, url, "DELETE", "/subjects/s", "", 200, []int{1})
	wantError(t, url, "DELETE", "/subjects/s", "", 404, codeSubjectSoftDeleted)
	wantAnswer(t, url, "DELETE", "/subjects/s?permanent=true", "", 200, []int{1})
	wantError(t, url, "DELETE", "/subjects/s?permanent=true", "", 404, codeSubjectNotFound)
}

// TestAPIOtherRoutes: the routes the other tests leave out — a version's
// raw schema, a check against all versions, and removing a mode.
func TestAPIOtherRoutes(t *testing.T) {
	_, _, url := startMem(t, newMemLog())
	for _, s := range []string{userV1, userV2} {
		call(t, url, "POST", "/subjects/s/versions", schemaJSON(s), nil)
	}
	for path, want := range map[string]string{
		"/subjects/s/versions/1/schema":      userV1,
		"/subjects/s/versions/latest/schema": userV2,
		"/schemas/ids/2/schema":              userV2,
	} {
		code, raw := call(t, url, "GET", path, "", nil)
		if code != 200 || raw != want {
			t.Errorf("GET %s: %d %s, want %s", path, code, raw, want)
		}
	}
	wantError(t, url, "GET", "/subjects/s/versions/3/schema", "", 404, codeVersionNotFound)

	// Under BACKWARD_TRANSITIVE, userV1 reads the data of both versions
	// (v2's email is dropped); a schema that makes id a string reads
	// neither.
	const idString = `{"type":"record","name":"User","namespace":"app","fields":[{"name":"id","type":"string"}]}`
	wantAnswer(t, url, "PUT", "/config/s", `{"compatibility":"BACKWARD_TRANSITIVE"}`, 200, map[string]string{"compatibility": "BACKWARD_TRANSITIVE"})
	wantAnswer(t, url, "POST", "/compatibility/subjects/s/versions", schemaJSON(userV1), 200, CompatResult{IsCompatible: true})
	wantAnswer(t, url, "POST", "/compatibility/subjects/s/versions", schemaJSON(idString), 200, CompatResult{IsCompatible: false})
	wantAnswer(t, url, "POST", "/compatibility/subjects/s/versions/1", schemaJSON(userV2), 200, CompatResult{IsCompatible: true})
	wantAnswer(t, url, "POST", "/compatibility/subjects/none/versions", schemaJSON(idString), 200, CompatResult{IsCompatible: true})
	wantError(t, url, "POST", "/compatibility/subjects/none/versions/latest", schemaJSON(idString), 404, codeSubjectNotFound)
	var verbose CompatResult
	if code, raw := call(t, url, "POST", "/compatibility/subjects/s/versions?verbose=true", schemaJSON(idString), &verbose); code != 200 || len(verbose.Messages) == 0 {
		t.Fatalf("verbose check: %d %s, want messages", code, raw)
	}

	wantAnswer(t, url, "PUT", "/mode/s", `{"mode":"READONLY"}`, 200, map[string]string{"mode": "READONLY"})
	wantError(t, url, "POST", "/subjects/s/versions", schemaJSON(userV1), 422, codeOperationNotPermitted)
	wantError(t, url, "DELETE", "/subjects/s/versions/1", "", 422, codeOperationNotPermitted)
	wantAnswer(t, url, "DELETE", "/mode/s", "", 200, map[string]string{"mode": "READONLY"})
	wantError(t, url, "DELETE", "/mode/s", "", 404, codeSubjectModeNotSet)
	wantAnswer(t, url, "PUT", "/mode", `{"mode":"READONLY"}`, 200, map[string]string{"mode": "READONLY"})
	wantAnswer(t, url, "DELETE", "/mode", "", 200, map[string]string{"mode": "READONLY"})
	wantAnswer(t, url, "GET", "/mode", "", 200, map[string]string{"mode": "READWRITE"})
	wantAnswer(t, url, "POST", "/subjects/s/versions", schemaJSON(userV1), 200, Registered{ID: 1, Version: 1, Schema: userV1})
}
