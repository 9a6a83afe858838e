package storetest

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
)

// TestSessionStore runs the session store suite against the stores open
// returns. open is called once per subtest and must return an empty store
// with the given options.
func TestSessionStore(t *testing.T, open func(t *testing.T, opts state.SessionOptions) state.SessionStore) {
	opts := state.SessionOptions{Retention: 100 * time.Millisecond, SegmentInterval: 50 * time.Millisecond}
	t.Run("PutFetch", func(t *testing.T) { sesPutFetch(t, open(t, opts)) })
	t.Run("Find", func(t *testing.T) { sesFind(t, open(t, opts)) })
	t.Run("Retention", func(t *testing.T) { sesRetention(t, open(t, opts)) })
	t.Run("Changelog", func(t *testing.T) { sesChangelog(t, open(t, opts)) })
}

func fetchSession(t *testing.T, s state.SessionStore, key string, start, end int64) []byte {
	t.Helper()
	v, err := s.FetchSession([]byte(key), start, end)
	Must(t, err)
	return v
}

func sesPutFetch(t *testing.T, s state.SessionStore) {
	Must(t, s.Put([]byte("a"), 10, 20, []byte("1")))
	Must(t, s.Put([]byte("a"), 10, 20, []byte("2")))
	Must(t, s.Put([]byte("a"), 10, 30, []byte("3")))
	if v := fetchSession(t, s, "a", 10, 20); string(v) != "2" {
		t.Fatalf("FetchSession = %q, want 2", v)
	}
	if v := fetchSession(t, s, "a", 20, 10); v != nil {
		t.Fatalf("FetchSession with start and end swapped = %q", v)
	}
	Must(t, s.Remove([]byte("a"), 10, 20))
	Must(t, s.Put([]byte("a"), 10, 30, nil))
	if v := fetchSession(t, s, "a", 10, 20); v != nil {
		t.Fatalf("FetchSession after Remove = %q", v)
	}
	got, err := ReadSessions(s.Fetch([]byte("a")))
	Must(t, err)
	if len(got) != 0 {
		t.Fatalf("Fetch after removing all = %v", got)
	}
	Must(t, s.Flush())
}

func sesFind(t *testing.T, s state.SessionStore) {
	var all []Session
	spans := [][2]int64{{0, 0}, {0, 10}, {5, 49}, {20, 60}, {50, 50}, {70, 140}, {139, 140}}
	for i, k := range slices.Backward(windowKeys) {
		for j, sp := range spans {
			v := string(rune('A'+i)) + string(rune('a'+j))
			Must(t, s.Put([]byte(k), sp[0], sp[1], []byte(v)))
			all = append(all, Session{k, sp[0], sp[1], v})
		}
	}
	slices.SortFunc(all, func(a, b Session) int {
		if c := bytes.Compare([]byte(a.Key), []byte(b.Key)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.End, b.End); c != 0 {
			return c
		}
		return cmp.Compare(a.Start, b.Start)
	})
	model := func(kf, kt *string, earliestEnd, latestStart int64) []Session {
		var out []Session
		for _, s := range all {
			if (kf == nil || s.Key >= *kf) && (kt == nil || s.Key <= *kt) && s.End >= earliestEnd && s.Start <= latestStart {
				out = append(out, s)
			}
		}
		return out
	}
	bounds := [][2]int64{{math.MinInt64, math.MaxInt64}, {0, 0}, {10, 20}, {50, 50}, {51, 69}, {60, 10}, {141, 200}, {0, 1000}}
	for _, b := range bounds {
		for _, k := range append(windowKeys, "a\x00\x01", "zz") {
			want := model(&k, &k, b[0], b[1])
			got, err := ReadSessions(s.FindSessions([]byte(k), b[0], b[1]))
			Must(t, err)
			if !slices.Equal(got, want) {
				t.Errorf("FindSessions(%q, %d, %d) = %v, want %v", k, b[0], b[1], got, want)
			}
		}
		keyBounds := []*string{nil, ptr(""), ptr("a"), ptr("a\x00"), ptr("a\x00\x00\x00"), ptr("b"), ptr("\xff")}
		for _, kf := range keyBounds {
			for _, kt := range keyBounds {
				want := model(kf, kt, b[0], b[1])
				got, err := ReadSessions(s.FindSessionsRange(bound(kf), bound(kt), b[0], b[1]))
				Must(t, err)
				if !slices.Equal(got, want) {
					t.Errorf("FindSessionsRange(%q, %q, %d, %d) = %v, want %v", bound(kf), bound(kt), b[0], b[1], got, want)
				}
				if b[0] != math.MinInt64 {
					continue
				}
				got, err = ReadSessions(s.FetchRange(bound(kf), bound(kt)))
				Must(t, err)
				if !slices.Equal(got, want) {
					t.Errorf("FetchRange(%q, %q) = %v, want %v", bound(kf), bound(kt), got, want)
				}
			}
		}
	}
	for _, k := range windowKeys {
		got, err := ReadSessions(s.Fetch([]byte(k)))
		Must(t, err)
		if want := model(&k, &k, math.MinInt64, math.MaxInt64); !slices.Equal(got, want) {
			t.Errorf("Fetch(%q) = %v, want %v", k, got, want)
		}
	}
}

func sesRetention(t *testing.T, s state.SessionStore) {
	_, r := logged(t, s)
	Must(t, s.Put([]byte("k"), 0, 10, []byte("a")))
	Must(t, s.Put([]byte("k"), 20, 60, []byte("b")))
	Must(t, s.Put([]byte("k"), 100, 120, []byte("c")))
	got, err := ReadSessions(s.Fetch([]byte("k")))
	Must(t, err)
	if len(got) != 3 {
		t.Fatalf("before expiry Fetch = %v", got)
	}
	// Observed end 160: 60 is in segment 1, so sessions ending in segment 0
	// expire; the session [20, 60] ends in segment 1 and stays.
	Must(t, s.Put([]byte("k"), 150, 160, []byte("d")))
	got, err = ReadSessions(s.Fetch([]byte("k")))
	Must(t, err)
	want := []Session{{"k", 20, 60, "b"}, {"k", 100, 120, "c"}, {"k", 150, 160, "d"}}
	if !slices.Equal(got, want) {
		t.Fatalf("after expiry Fetch = %v, want %v", got, want)
	}
	r.Take()
	Must(t, s.Put([]byte("k"), 0, 30, []byte("late")))
	if v := fetchSession(t, s, "k", 0, 30); v != nil {
		t.Fatalf("late put stored %q", v)
	}
	if c := r.Take(); len(c) != 0 {
		t.Fatalf("late put logged %v", c)
	}
}

func sesChangelog(t *testing.T, s state.SessionStore) {
	l, r := logged(t, s)
	Must(t, s.Put([]byte("ab"), 1, 2, []byte("v")))
	Must(t, s.Remove([]byte("ab"), 1, 2))
	key := []byte("ab\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01")
	want := []Change{{key, []byte("v"), 100}, {key, nil, 101}}
	if got := r.Take(); !changesEqual(got, want) {
		t.Fatalf("logged %v, want %v", got, want)
	}
	Must(t, l.Restore(state.SessionChangelogKey([]byte("r"), 5, 40), []byte("restored")))
	Must(t, l.Restore(state.SessionChangelogKey([]byte("r"), 990, 1000), []byte("late")))
	if got := r.Take(); len(got) != 0 {
		t.Fatalf("Restore logged %v", got)
	}
	if v := fetchSession(t, s, "r", 990, 1000); string(v) != "late" {
		t.Fatalf("restored session = %q", v)
	}
	if v := fetchSession(t, s, "r", 5, 40); v != nil {
		t.Fatalf("restored session outlived retention: %q", v)
	}
	if err := l.Restore([]byte("short"), nil); err == nil {
		t.Fatal("Restore of a short key succeeded")
	}
	k, start, end, err := state.ParseSessionChangelogKey(key)
	if err != nil || string(k) != "ab" || start != 1 || end != 2 {
		t.Fatalf("ParseSessionChangelogKey = %q %d %d %v", k, start, end, err)
	}
}
