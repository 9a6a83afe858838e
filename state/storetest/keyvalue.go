package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/runnel-dev/runnel/state"
)

// TestKeyValueStore runs the key-value store suite against the stores open
// returns. open is called once per subtest and must return an empty store.
func TestKeyValueStore(t *testing.T, open func(t *testing.T) state.KeyValueStore) {
	TestKeyValueStoreData(t, open)
	t.Run("Changelog", func(t *testing.T) { kvChangelog(t, open(t)) })
}

// TestKeyValueStoreData is TestKeyValueStore without the changelog tests,
// for stores that buffer writes (a record cache) and so log them later and
// deduplicated.
func TestKeyValueStoreData(t *testing.T, open func(t *testing.T) state.KeyValueStore) {
	t.Run("GetPutDelete", func(t *testing.T) { kvGetPutDelete(t, open(t)) })
	t.Run("Copies", func(t *testing.T) { kvCopies(t, open(t)) })
	t.Run("Ranges", func(t *testing.T) { kvRanges(t, open(t)) })
	t.Run("PrefixScan", func(t *testing.T) { kvPrefixScan(t, open(t)) })
	t.Run("IteratorSnapshot", func(t *testing.T) { kvIteratorSnapshot(t, open(t)) })
	t.Run("Closed", func(t *testing.T) { kvClosed(t, open(t)) })
}

// Must fails t on err.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s state.KeyValueStore, key string) []byte {
	t.Helper()
	v, err := s.Get([]byte(key))
	Must(t, err)
	return v
}

func kvGetPutDelete(t *testing.T, s state.KeyValueStore) {
	if v := get(t, s, "a"); v != nil {
		t.Fatalf("Get of missing key = %q, want nil", v)
	}
	Must(t, s.Put([]byte("a"), []byte("1")))
	if v := get(t, s, "a"); string(v) != "1" {
		t.Fatalf("Get = %q, want 1", v)
	}
	Must(t, s.Put([]byte("a"), []byte("2")))
	if v := get(t, s, "a"); string(v) != "2" {
		t.Fatalf("Get after overwrite = %q, want 2", v)
	}

	// An empty value is a value; nil deletes.
	Must(t, s.Put([]byte("e"), []byte{}))
	if v := get(t, s, "e"); v == nil || len(v) != 0 {
		t.Fatalf("Get of empty value = %#v, want non-nil empty", v)
	}
	Must(t, s.Put([]byte("e"), nil))
	if v := get(t, s, "e"); v != nil {
		t.Fatalf("Get after Put(nil) = %q, want nil", v)
	}

	// The nil key is the empty key.
	Must(t, s.Put(nil, []byte("empty")))
	if v := get(t, s, ""); string(v) != "empty" {
		t.Fatalf("Get of empty key = %q", v)
	}

	old, err := s.PutIfAbsent([]byte("a"), []byte("3"))
	Must(t, err)
	if string(old) != "2" || string(get(t, s, "a")) != "2" {
		t.Fatalf("PutIfAbsent on present key returned %q and wrote", old)
	}
	old, err = s.PutIfAbsent([]byte("b"), []byte("4"))
	Must(t, err)
	if old != nil || string(get(t, s, "b")) != "4" {
		t.Fatalf("PutIfAbsent on absent key returned %q, did not write", old)
	}

	old, err = s.Delete([]byte("a"))
	Must(t, err)
	if string(old) != "2" || get(t, s, "a") != nil {
		t.Fatalf("Delete returned %q, key still there: %t", old, get(t, s, "a") != nil)
	}
	old, err = s.Delete([]byte("missing"))
	Must(t, err)
	if old != nil {
		t.Fatalf("Delete of missing key returned %q", old)
	}
	n, err := s.ApproximateNumEntries()
	Must(t, err)
	if n != 2 { // "" and "b"
		t.Fatalf("ApproximateNumEntries = %d, want 2", n)
	}
	Must(t, s.Flush())
}

func kvCopies(t *testing.T, s state.KeyValueStore) {
	k, v := []byte("k"), []byte("v")
	Must(t, s.Put(k, v))
	k[0], v[0] = 'x', 'x'
	got := get(t, s, "k")
	if string(got) != "v" {
		t.Fatalf("store kept the caller's slice: %q", got)
	}
	got[0] = 'y'
	if got := get(t, s, "k"); string(got) != "v" {
		t.Fatalf("Get returned the store's own slice: %q", got)
	}
}

// orderedKeys are keys whose byte order trips encodings that are not
// order-preserving: prefixes of each other, 0x00 and 0xff bytes.
var orderedKeys = []string{"", "\x00", "\x00\x00", "\x00\x01", "a", "a\x00", "a\x00b", "a\x01", "aa", "ab", "b", "\xfe", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}

func kvFill(t *testing.T, s state.KeyValueStore) {
	for i, k := range slices.Backward(orderedKeys) {
		Must(t, s.Put([]byte(k), []byte{byte('A' + i)}))
	}
}

func kvModel(from, to *string) []KV {
	var out []KV
	for i, k := range slices.Backward(orderedKeys) {
		if (from == nil || k >= *from) && (to == nil || k <= *to) {
			out = append(out, KV{k, string(rune('A' + i))})
		}
	}
	slices.SortFunc(out, func(a, b KV) int { return bytes.Compare([]byte(a.Key), []byte(b.Key)) })
	return out
}

func bound(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

func ptr(s string) *string { return &s }

func kvRanges(t *testing.T, s state.KeyValueStore) {
	kvFill(t, s)
	bounds := []*string{nil, ptr(""), ptr("\x00"), ptr("a"), ptr("a\x00"), ptr("aa"), ptr("ac"), ptr("\xff"), ptr("\xff\xff\xff"), ptr("\xff\xff\xff\xff")}
	for _, from := range bounds {
		for _, to := range bounds {
			want := kvModel(from, to)
			got, err := ReadAll(s.Range(bound(from), bound(to)))
			Must(t, err)
			if !slices.Equal(got, want) {
				t.Errorf("Range(%q, %q) = %q, want %q", bound(from), bound(to), got, want)
			}
			got, err = ReadAll(s.ReverseRange(bound(from), bound(to)))
			Must(t, err)
			slices.Reverse(want)
			if !slices.Equal(got, want) {
				t.Errorf("ReverseRange(%q, %q) = %q, want %q", bound(from), bound(to), got, want)
			}
		}
	}
	want := kvModel(nil, nil)
	got, err := ReadAll(s.All())
	Must(t, err)
	if !slices.Equal(got, want) {
		t.Errorf("All = %q, want %q", got, want)
	}
	got, err = ReadAll(s.ReverseAll())
	Must(t, err)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Errorf("ReverseAll = %q, want %q", got, want)
	}
	n, err := s.ApproximateNumEntries()
	Must(t, err)
	if n != int64(len(orderedKeys)) {
		t.Errorf("ApproximateNumEntries = %d, want %d", n, len(orderedKeys))
	}
}

func kvPrefixScan(t *testing.T, s state.KeyValueStore) {
	kvFill(t, s)
	for _, p := range []string{"", "\x00", "a", "a\x00", "ab", "abc", "b", "\xfe", "\xff", "\xff\xff", "\xff\xff\xff", "\xff\xff\xff\xff"} {
		var want []KV
		for _, kv := range kvModel(nil, nil) {
			if bytes.HasPrefix([]byte(kv.Key), []byte(p)) {
				want = append(want, kv)
			}
		}
		got, err := ReadAll(s.PrefixScan([]byte(p)))
		Must(t, err)
		if !slices.Equal(got, want) {
			t.Errorf("PrefixScan(%q) = %q, want %q", p, got, want)
		}
	}
}

func kvIteratorSnapshot(t *testing.T, s state.KeyValueStore) {
	for _, k := range []string{"a", "b", "c"} {
		Must(t, s.Put([]byte(k), []byte(k)))
	}
	it := s.All()
	if !it.Next() || string(it.Key()) != "a" {
		t.Fatalf("first key %q", it.Key())
	}
	// Writes while iterating do not show up in, or disturb, the iterator.
	Must(t, s.Put([]byte("b"), []byte("B")))
	Must(t, s.Put([]byte("bb"), []byte("bb")))
	_, err := s.Delete([]byte("c"))
	Must(t, err)
	rest, err := ReadAll(it)
	Must(t, err)
	if want := []KV{{"b", "b"}, {"c", "c"}}; !slices.Equal(rest, want) {
		t.Fatalf("iterator saw %q, want %q", rest, want)
	}
	got, err := ReadAll(s.All())
	Must(t, err)
	if want := []KV{{"a", "a"}, {"b", "B"}, {"bb", "bb"}}; !slices.Equal(got, want) {
		t.Fatalf("after writes All = %q, want %q", got, want)
	}
}

// logged returns s's state.Logged with a Recorder installed whose
// timestamps count up from 100.
func logged(t *testing.T, s state.Store) (state.Logged, *Recorder) {
	l, ok := s.(state.Logged)
	if !ok {
		t.Fatalf("%T is not a state.Logged", s)
	}
	r := &Recorder{}
	ts := int64(99)
	l.SetChangeLogger(r, func() int64 { ts++; return ts })
	return l, r
}

func kvChangelog(t *testing.T, s state.KeyValueStore) {
	l, r := logged(t, s)
	Must(t, s.Put([]byte("a"), []byte("1")))
	Must(t, s.Put([]byte("a"), nil))
	_, err := s.PutIfAbsent([]byte("b"), []byte("2"))
	Must(t, err)
	_, err = s.PutIfAbsent([]byte("b"), []byte("3")) // not a write
	Must(t, err)
	_, err = s.Delete([]byte("b"))
	Must(t, err)
	Must(t, s.Put([]byte("c"), []byte{}))
	want := []Change{{[]byte("a"), []byte("1"), 100}, {[]byte("a"), nil, 101}, {[]byte("b"), []byte("2"), 102}, {[]byte("b"), nil, 103}, {[]byte("c"), []byte{}, 104}}
	if got := r.Take(); !changesEqual(got, want) {
		t.Fatalf("logged %v, want %v", got, want)
	}

	Must(t, l.Restore([]byte("x"), []byte("restored")))
	Must(t, l.Restore([]byte("c"), nil))
	if got := r.Take(); len(got) != 0 {
		t.Fatalf("Restore logged %v", got)
	}
	if v := get(t, s, "x"); string(v) != "restored" {
		t.Fatalf("restored value %q", v)
	}
	if v := get(t, s, "c"); v != nil {
		t.Fatalf("restored tombstone left %q", v)
	}
}

func changesEqual(a, b []Change) bool {
	return slices.EqualFunc(a, b, func(x, y Change) bool {
		return bytes.Equal(x.Key, y.Key) && bytes.Equal(x.Value, y.Value) && (x.Value == nil) == (y.Value == nil) && x.Timestamp == y.Timestamp
	})
}

func kvClosed(t *testing.T, s state.KeyValueStore) {
	Must(t, s.Put([]byte("a"), []byte("1")))
	Must(t, s.Close())
	if _, err := s.Get([]byte("a")); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if err := s.Put([]byte("a"), nil); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Put after Close: %v, want ErrClosed", err)
	}
	if _, err := ReadAll(s.All()); !errors.Is(err, state.ErrClosed) {
		t.Errorf("All after Close: %v, want ErrClosed", err)
	}
}
