package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRegisterBody posts arbitrary bodies to the registration and lookup
// endpoints: every answer is a success or one of Confluent's error
// bodies, never a panic or a 500.
func FuzzRegisterBody(f *testing.F) {
	for _, s := range []string{
		`{"schema":"\"string\""}`,
		`{"schema":"{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"}`,
		`{"schema":"\"int\"","references":[{"name":"x","subject":"s","version":1}]}`,
		`{"schema":"\"int\"","schemaType":"PROTOBUF"}`,
		`{"schema":"\"int\"","id":7,"version":3}`,
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
		for _, path := range []string{"/subjects/s/versions", "/subjects/s", "/compatibility/subjects/s/versions/latest"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
			if rec.Code >= 500 {
				t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
			}
			if rec.Code != http.StatusOK && !strings.Contains(rec.Body.String(), `"error_code":`) {
				t.Fatalf("POST %s %q: %d without an error body: %s", path, body, rec.Code, rec.Body)
			}
		}
	})
}
