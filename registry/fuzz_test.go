package registry

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRegisterBody posts arbitrary bodies to the endpoints that read
// JSON (registration, lookup, compatibility, config and mode): every
// answer is a success or one of Confluent's error bodies, never a panic
// or a 500.
func FuzzRegisterBody(f *testing.F) {
	for _, s := range []string{
		`{"schema":"\"string\""}`,
		`{"schema":"{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"}`,
		`{"schema":"\"int\"","references":[{"name":"x","subject":"s","version":1}]}`,
		`{"schema":"\"int\"","schemaType":"PROTOBUF"}`,
		`{"schema":"\"int\"","id":7,"version":3}`,
		`{"compatibility":"FULL","normalize":true}`, `{"normalize":false}`, `{"mode":"IMPORT"}`,
		`{"schema":`, `[]`, `null`, ``,
	} {
		f.Add(s)
	}
	r, err := New(context.Background(), newMemLog().reader(), Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	h := r.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		for _, rq := range []struct{ method, path string }{
			{"POST", "/subjects/s/versions"},
			{"POST", "/subjects/s/versions?normalize=true"},
			{"POST", "/subjects/s"},
			{"POST", "/compatibility/subjects/s/versions/latest"},
			{"PUT", "/config/s"},
			{"PUT", "/mode/s"},
		} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(rq.method, rq.path, strings.NewReader(body)))
			if rec.Code >= 500 {
				t.Fatalf("%s %s %q: %d %s", rq.method, rq.path, body, rec.Code, rec.Body)
			}
			if rec.Code != http.StatusOK && !strings.Contains(rec.Body.String(), `"error_code":`) {
				t.Fatalf("%s %s %q: %d without an error body: %s", rq.method, rq.path, body, rec.Code, rec.Body)
			}
		}
	})
}

// FuzzApplyRecords applies arbitrary records of the _schemas log (lines
// of key TAB value; an empty value is a tombstone) to a registry's state,
// then reads it through every read of the API: a record the registry
// cannot use is skipped, and whatever the log holds, no read panics.
func FuzzApplyRecords(f *testing.F) {
	f.Add([]byte(`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}` + "\t" +
		`{"subject":"s","version":1,"id":1,"schemaType":"AVRO","references":[],"schema":"\"string\"","deleted":false}` + "\n" +
		`{"keytype":"SCHEMA","subject":"t","version":1,"magic":1}` + "\t" +
		`{"subject":"t","version":1,"id":2,"references":[{"name":"x","subject":"s","version":1}],"schema":"\"int\"","deleted":true}` + "\n" +
		`{"keytype":"CONFIG","subject":null,"magic":0}` + "\t" + `{"compatibilityLevel":"FULL","normalize":true}` + "\n" +
		`{"keytype":"MODE","subject":"s","magic":0}` + "\t" + `{"mode":"READONLY"}` + "\n" +
		`{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}` + "\t" + `{"subject":"s","version":1}` + "\n" +
		`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}` + "\t\n"))
	f.Fuzz(func(t *testing.T, log []byte) {
		r := &Registry{cfg: Config{DefaultCompatibility: CompatBackward}, st: newState()}
		for i, line := range bytes.Split(log, []byte("\n")) {
			key, value, _ := bytes.Cut(line, []byte("\t"))
			if len(value) == 0 {
				value = nil
			}
			r.st.apply(Record{Offset: int64(i), Key: key, Value: value})
		}
		req := SchemaRequest{Schema: `{"type":"record","name":"r","fields":[{"name":"a","type":"int"}]}`}
		for _, d := range []Deleted{LiveOnly, WithDeleted, DeletedOnly} {
			for _, s := range r.Subjects(d, "") {
				r.Versions(s, d)
				for _, n := range []int{-1, 1, 2} {
					r.Version(s, n, d == WithDeleted)
					r.ReferencedBy(s, n)
					r.CheckCompatibility(s, n, false, req)
				}
				r.CheckCompatibility(s, -1, true, req)
				r.Lookup(s, req, true)
				r.planRegister(s, &req, false)
				r.Config(s, false)
				r.Mode(s, true)
			}
		}
		r.Schemas("", true, false)
		ids := []int{0, r.st.maxID + 1}
		for id := range r.st.ids {
			ids = append(ids, id)
		}
		for _, id := range ids {
			r.SchemaByID(id)
			r.IDUsage(id, true)
		}
	})
}
