package appstatus

import (
	"errors"
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	s := Status{App: "wc", Process: "p1", State: "RUNNING", TimeMs: 1, IntervalMs: 5000, Workers: 2,
		Topology: "Topologies:\n", Topics: map[string]string{"r": "wc-r"}, Changelogs: map[string]string{"c": "wc-c-changelog"},
		Tasks: []Task{{ID: "0_1", Worker: 1, Processed: 3, RecordsPerSec: 1.5}, {ID: "1_0", Standby: true, Worker: -1}}}
	got, err := Decode(Encode(s))
	if err != nil {
		t.Fatal(err)
	}
	s.Version = Version
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("got %+v, want %+v", got, s)
	}
	app, process, err := ParseKey(Key("wc", "p1"))
	if err != nil || app != "wc" || process != "p1" {
		t.Fatalf("key: %q %q %v", app, process, err)
	}
}

// Bad values and keys are errors; a null value says the instance stopped.
func TestDecodeErrors(t *testing.T) {
	if _, err := Decode(nil); !errors.Is(err, ErrTombstone) {
		t.Errorf("nil: %v", err)
	}
	for _, v := range []string{"", "{", "[]", `{"v":0,"app":"a","process":"p"}`, `{"v":1,"process":"p"}`, `{"v":1,"app":"a"}`} {
		if _, err := Decode([]byte(v)); err == nil || errors.Is(err, ErrTombstone) {
			t.Errorf("%q: %v", v, err)
		}
	}
	// A newer runtime's fields are ignored.
	if s, err := Decode([]byte(`{"v":2,"app":"a","process":"p","future":[1]}`)); err != nil || s.App != "a" {
		t.Errorf("newer record: %+v %v", s, err)
	}
	for _, k := range []string{"", "a", "/p", "a/"} {
		if _, _, err := ParseKey([]byte(k)); err == nil {
			t.Errorf("key %q: no error", k)
		}
	}
}

// FuzzDecode: any bytes decode or fail, never panic.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(Status{App: "a", Process: "p", Tasks: []Task{{ID: "0_0"}}}))
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		Decode(b)
		ParseKey(b)
	})
}
