package pebblestore_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/state/memstore"
	"github.com/runnel-dev/runnel/state/pebblestore"
	"github.com/runnel-dev/runnel/state/storetest"
)

// TestEquivalence runs random operations against the Pebble stores and the
// in-memory ones, with commits and database reopens in between, and checks
// that every read, and every changelog record, is the same (Pebble's
// metamorphic tests in miniature; the in-memory stores are the model).
func TestEquivalence(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 4
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runEquivalence(t, uint64(seed)) })
	}
}

type storeSet struct {
	kv  state.KeyValueStore
	win state.WindowStore
	dup state.WindowStore
	ses state.SessionStore
	log *storetest.Recorder
}

var (
	eqWindow  = state.WindowOptions{Retention: 200 * time.Millisecond, SegmentInterval: 40 * time.Millisecond}
	eqDups    = state.WindowOptions{Retention: 200 * time.Millisecond, SegmentInterval: 40 * time.Millisecond, RetainDuplicates: true}
	eqSession = state.SessionOptions{Retention: 150 * time.Millisecond, SegmentInterval: 60 * time.Millisecond}
)

func openSet(t *testing.T, sup state.Supplier, now state.RecordTime) storeSet {
	t.Helper()
	var s storeSet
	var err error
	s.log = &storetest.Recorder{}
	s.kv, err = sup.KeyValueStore("kv")
	storetest.Must(t, err)
	s.win, err = sup.WindowStore("win", eqWindow)
	storetest.Must(t, err)
	s.dup, err = sup.WindowStore("dup", eqDups)
	storetest.Must(t, err)
	s.ses, err = sup.SessionStore("ses", eqSession)
	storetest.Must(t, err)
	for _, st := range []state.Store{s.kv, s.win, s.dup, s.ses} {
		st.(state.Logged).SetChangeLogger(s.log, now)
	}
	return s
}

func runEquivalence(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	fs := vfs.NewMem()
	var clock int64
	now := func() int64 { return clock }

	model := openSet(t, memstore.Supplier{}, now)
	db, err := pebblestore.Open("db", pebblestore.Options{FS: fs})
	storetest.Must(t, err)
	defer func() { db.Close() }()
	batch := db.NewBatch("0_0")
	real := openSet(t, batch, now)

	key := func() []byte {
		b := make([]byte, rng.IntN(3))
		for i := range b {
			b[i] = []byte{0, 1, 'a', 'b', 0xff}[rng.IntN(5)]
		}
		return b
	}
	maybeNil := func(b []byte) []byte {
		if rng.IntN(4) == 0 {
			return nil
		}
		return b
	}
	value := func() []byte {
		if rng.IntN(6) == 0 {
			return nil
		}
		return []byte(fmt.Sprint(rng.IntN(100)))
	}
	ts := func() int64 { return clock - 250 + rng.Int64N(300) }

	for step := range 3000 {
		clock += rng.Int64N(3)
		var op string
		var m, r any
		switch n := rng.IntN(100); {
		case n < 12:
			k, v := key(), value()
			op = fmt.Sprintf("kv.Put(%q, %q)", k, v)
			m, r = model.kv.Put(k, v), real.kv.Put(k, v)
		case n < 15:
			k, v := key(), value()
			op = fmt.Sprintf("kv.PutIfAbsent(%q, %q)", k, v)
			m, r = pair(model.kv.PutIfAbsent(k, v)), pair(real.kv.PutIfAbsent(k, v))
		case n < 18:
			k := key()
			op = fmt.Sprintf("kv.Delete(%q)", k)
			m, r = pair(model.kv.Delete(k)), pair(real.kv.Delete(k))
		case n < 21:
			k := key()
			op = fmt.Sprintf("kv.Get(%q)", k)
			m, r = pair(model.kv.Get(k)), pair(real.kv.Get(k))
		case n < 24:
			from, to := maybeNil(key()), maybeNil(key())
			rev := rng.IntN(2) == 0
			op = fmt.Sprintf("kv.Range(%q, %q, reverse=%t)", from, to, rev)
			if rev {
				m, r = pair(storetest.ReadAll(model.kv.ReverseRange(from, to))), pair(storetest.ReadAll(real.kv.ReverseRange(from, to)))
			} else {
				m, r = pair(storetest.ReadAll(model.kv.Range(from, to))), pair(storetest.ReadAll(real.kv.Range(from, to)))
			}
		case n < 26:
			p := key()
			op = fmt.Sprintf("kv.PrefixScan(%q)", p)
			m, r = pair(storetest.ReadAll(model.kv.PrefixScan(p))), pair(storetest.ReadAll(real.kv.PrefixScan(p)))
		case n < 27:
			op = "kv.ApproximateNumEntries"
			m, r = pair(model.kv.ApproximateNumEntries()), pair(real.kv.ApproximateNumEntries())
		case n < 40:
			k, start, v := key(), ts(), value()
			op = fmt.Sprintf("win.Put(%q, %d, %q)", k, start, v)
			m, r = model.win.Put(k, start, v), real.win.Put(k, start, v)
		case n < 46:
			k, start, v := key(), ts(), value()
			op = fmt.Sprintf("dup.Put(%q, %d, %q)", k, start, v)
			m, r = model.dup.Put(k, start, v), real.dup.Put(k, start, v)
		case n < 50:
			k, start := key(), ts()
			op = fmt.Sprintf("win.Fetch(%q, %d)", k, start)
			m, r = pair(model.win.Fetch(k, start)), pair(real.win.Fetch(k, start))
		case n < 60:
			ws := []state.WindowStore{model.win, real.win}
			name := "win"
			if rng.IntN(2) == 0 {
				ws, name = []state.WindowStore{model.dup, real.dup}, "dup"
			}
			k, kt, from, to := key(), maybeNil(key()), ts(), ts()
			switch rng.IntN(4) {
			case 0:
				op = fmt.Sprintf("%s.FetchRange(%q, %d, %d)", name, k, from, to)
				m, r = pair(storetest.ReadWindows(ws[0].FetchRange(k, from, to))), pair(storetest.ReadWindows(ws[1].FetchRange(k, from, to)))
			case 1:
				kf := maybeNil(k)
				op = fmt.Sprintf("%s.FetchKeyRange(%q, %q, %d, %d)", name, kf, kt, from, to)
				m, r = pair(storetest.ReadWindows(ws[0].FetchKeyRange(kf, kt, from, to))), pair(storetest.ReadWindows(ws[1].FetchKeyRange(kf, kt, from, to)))
			case 2:
				op = fmt.Sprintf("%s.FetchAll(%d, %d)", name, from, to)
				m, r = pair(storetest.ReadWindows(ws[0].FetchAll(from, to))), pair(storetest.ReadWindows(ws[1].FetchAll(from, to)))
			default:
				op = name + ".All"
				m, r = pair(storetest.ReadWindows(ws[0].All())), pair(storetest.ReadWindows(ws[1].All()))
			}
		case n < 72:
			k, end, v := key(), ts(), value()
			start := end - rng.Int64N(30)
			op = fmt.Sprintf("ses.Put(%q, %d, %d, %q)", k, start, end, v)
			m, r = model.ses.Put(k, start, end, v), real.ses.Put(k, start, end, v)
		case n < 75:
			k, end := key(), ts()
			start := end - rng.Int64N(30)
			op = fmt.Sprintf("ses.FetchSession(%q, %d, %d)", k, start, end)
			m, r = pair(model.ses.FetchSession(k, start, end)), pair(real.ses.FetchSession(k, start, end))
		case n < 86:
			k, kt, ee, ls := key(), maybeNil(key()), ts(), ts()
			switch rng.IntN(4) {
			case 0:
				op = fmt.Sprintf("ses.FindSessions(%q, %d, %d)", k, ee, ls)
				m, r = pair(storetest.ReadSessions(model.ses.FindSessions(k, ee, ls))), pair(storetest.ReadSessions(real.ses.FindSessions(k, ee, ls)))
			case 1:
				kf := maybeNil(k)
				op = fmt.Sprintf("ses.FindSessionsRange(%q, %q, %d, %d)", kf, kt, ee, ls)
				m, r = pair(storetest.ReadSessions(model.ses.FindSessionsRange(kf, kt, ee, ls))), pair(storetest.ReadSessions(real.ses.FindSessionsRange(kf, kt, ee, ls)))
			case 2:
				op = fmt.Sprintf("ses.Fetch(%q)", k)
				m, r = pair(storetest.ReadSessions(model.ses.Fetch(k))), pair(storetest.ReadSessions(real.ses.Fetch(k)))
			default:
				kf := maybeNil(k)
				op = fmt.Sprintf("ses.FetchRange(%q, %q)", kf, kt)
				m, r = pair(storetest.ReadSessions(model.ses.FetchRange(kf, kt))), pair(storetest.ReadSessions(real.ses.FetchRange(kf, kt)))
			}
		case n < 95:
			op = "commit"
			m, r = nil, batch.Commit(map[string]int64{"p": int64(step)})
		default:
			// Commit, close everything and reopen: committed state is all
			// the Pebble stores keep, and it must equal the model.
			op = "commit+reopen"
			storetest.Must(t, batch.Commit(map[string]int64{"p": int64(step)}))
			storetest.Must(t, db.Close())
			db, err = pebblestore.Open("db", pebblestore.Options{FS: fs})
			storetest.Must(t, err)
			batch = db.NewBatch("0_0")
			log := real.log
			real = openSet(t, batch, now)
			real.log = log
			for _, st := range []state.Store{real.kv, real.win, real.dup, real.ses} {
				st.(state.Logged).SetChangeLogger(log, now)
			}
			if off, ok, err := batch.Position("p"); err != nil || !ok || off != int64(step) {
				t.Fatalf("step %d: position after reopen %d, %t, %v", step, off, ok, err)
			}
			m, r = nil, nil
		}
		if !reflect.DeepEqual(m, r) {
			t.Fatalf("step %d: %s:\n model: %v\n pebble: %v", step, op, m, r)
		}
		if mc, rc := model.log.Take(), real.log.Take(); !changesEqual(mc, rc) {
			t.Fatalf("step %d: %s logged:\n model: %v\n pebble: %v", step, op, mc, rc)
		}
	}
}

// pair makes a two-result call comparable with reflect.DeepEqual.
func pair[T any](v T, err error) [2]any {
	if b, ok := any(v).([]byte); ok && b != nil {
		return [2]any{string(b) + "\x00non-nil", err}
	}
	return [2]any{v, err}
}

func changesEqual(a, b []storetest.Change) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Value, b[i].Value) || (a[i].Value == nil) != (b[i].Value == nil) || a[i].Timestamp != b[i].Timestamp {
			return false
		}
	}
	return true
}
