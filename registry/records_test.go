package registry

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// TestRecordsWritten: the records of _schemas are in the format
// Confluent's registry writes, byte for byte for the keys (compaction
// keeps one record per key's bytes, so both registries must write a key
// the same way).
func TestRecordsWritten(t *testing.T) {
	ctx := context.Background()
	log := newMemLog()
	_, cl, _ := startMem(t, log)
	if _, err := cl.CreateSchema(ctx, "s", avro(`"string"`)); err != nil {
		t.Fatal(err)
	}
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull})
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "s")
	cl.SetMode(ctx, sr.ModeReadOnly, "t")
	cl.DeleteSchema(ctx, "s", 1, sr.SoftDelete)
	cl.DeleteSchema(ctx, "s", 1, sr.HardDelete)

	want := [][2]string{
		{`{"keytype":"NOOP","magic":0}`, ``},
		{`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`,
			`{"subject":"s","version":1,"id":1,"schemaType":"AVRO","references":[],"schema":"\"string\"","deleted":false}`},
		{`{"keytype":"CONFIG","subject":null,"magic":0}`, `{"compatibilityLevel":"FULL"}`},
		{`{"keytype":"CONFIG","subject":"s","magic":0}`, `{"compatibilityLevel":"NONE"}`},
		{`{"keytype":"MODE","subject":"t","magic":0}`, `{"mode":"READONLY"}`},
		{`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`,
			`{"subject":"s","version":1,"id":1,"schemaType":"AVRO","references":[],"schema":"\"string\"","deleted":true}`},
		{`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`, ``},
	}
	log.mu.Lock()
	var got [][2]string
	for _, r := range log.recs {
		got = append(got, [2]string{string(r.Key), string(r.Value)})
	}
	log.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("records:\n%q\nwant\n%q", got, want)
	}
}

// TestRecordsOfConfluent: a registry reads a _schemas log as Confluent's
// registry wrote it, older records included (no schemaType, no
// references), with DELETE_SUBJECT and CLEAR_SUBJECT records and a key
// type it does not know, which it skips.
func TestRecordsOfConfluent(t *testing.T) {
	ctx := context.Background()
	log := newMemLog()
	for _, r := range [][2]string{
		{`{"keytype":"SCHEMA","subject":"a-value","version":1,"magic":1}`,
			`{"subject":"a-value","version":1,"id":1,"schema":"{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}","deleted":false}`},
		{`{"keytype":"SCHEMA","subject":"a-value","version":2,"magic":1}`,
			`{"subject":"a-value","version":2,"id":3,"schemaType":"AVRO","references":[],"schema":"{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"x\",\"type\":\"long\"}]}","deleted":false}`},
		{`{"keytype":"SCHEMA","subject":"b-value","version":1,"magic":1}`,
			`{"subject":"b-value","version":1,"id":1,"schema":"{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}","deleted":false}`},
		{`{"keytype":"SCHEMA","subject":"c-value","version":1,"magic":1}`,
			`{"subject":"c-value","version":1,"id":4,"schema":"\"string\"","deleted":false}`},
		{`{"keytype":"CONFIG","subject":"a-value","magic":0}`, `{"compatibilityLevel":"FORWARD"}`},
		{`{"keytype":"DELETE_SUBJECT","subject":"b-value","magic":0}`, `{"subject":"b-value","version":1}`},
		{`{"keytype":"CLEAR_SUBJECT","subject":"c-value","magic":0}`, `{"subject":"c-value","version":1}`},
		{`{"keytype":"CONTEXT","tenant":"default","context":".x","magic":0}`, `{"tenant":"default","context":".x"}`},
	} {
		log.Append(ctx, []byte(r[0]), []byte(r[1]))
	}
	_, cl, _ := startMem(t, log)
	if subs, err := cl.Subjects(ctx); err != nil || !slices.Equal(subs, []string{"a-value"}) {
		t.Fatalf("subjects: %v, %v", subs, err)
	}
	if vs, err := cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), "b-value"); err != nil || !slices.Equal(vs, []int{1}) {
		t.Fatalf("b-value, soft-deleted by DELETE_SUBJECT: %v, %v", vs, err)
	}
	_, err := cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), "c-value")
	wantCode(t, err, codeSubjectNotFound)
	if s, err := cl.SchemaByVersion(ctx, "a-value", -1); err != nil || s.ID != 3 || s.Version != 2 {
		t.Fatalf("a-value latest: %+v, %v", s, err)
	}
	if res := cl.Compatibility(ctx, "a-value"); res[0].Err != nil || res[0].Level != sr.CompatForward {
		t.Fatalf("a-value level: %+v", res[0])
	}
	// Ids go on after the largest in the log; the same schema keeps its
	// id under a new subject.
	if s, err := cl.CreateSchema(ctx, "d-value", avro(`"int"`)); err != nil || s.ID != 5 {
		t.Fatalf("a new schema: %+v, %v; want id 5", s, err)
	}
	if s, err := cl.CreateSchema(ctx, "e-value", avro(`{"type":"record","name":"A","fields":[{"name":"x","type":"long"}]}`)); err != nil || s.ID != 3 {
		t.Fatalf("a known schema: %+v, %v; want id 3", s, err)
	}
}
