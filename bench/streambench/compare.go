package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Checking that Runnel and Kafka Streams computed the same thing: after
// both ran a query under a guarantee, each one's output topic is read in
// full (read_committed) and reduced to what the query means.
//
//   - q0, q1 and q2 output a stream: one record per selected bid, the same
//     records in any order (6 tasks write them). Each side is reduced to
//     its record count and an order-independent hash of the records.
//   - q3, q4, q5, q7 and q8 output a table's changes: how many updates a
//     key gets depends on what each engine's record cache absorbed, so
//     each side is reduced to the table the changes make (the last value
//     per key, a null value deleting it), and the tables compared.
//
// The two engines write JSON differently (field order, escaping, 2.0
// against 2), so every key and value is decoded and written again by
// encoding/json before it is compared: objects with their fields sorted,
// numbers as float64 (every number in the results is an integer under
// 2^53, or q4's average, which both compute as a double sum/count). q7
// keeps the bids tied for a window's highest price in the order it
// processed them, which depends on how the 6 tasks' writes to its
// repartition topic interleave: its bids are compared as a sorted list.

// tableQueries are the queries whose output is a table's changes.
var tableQueries = map[string]bool{"q3": true, "q4": true, "q5": true, "q7": true, "q8": true}

// queryOutput is one engine's output topic for a query, reduced.
type queryOutput struct {
	records int64 // records read, tombstones included
	// A stream's records: count and the sum of their hashes.
	sum uint64
	// A table's final content: key to value, both canonical JSON.
	table map[string]string
}

// hashSeed is the seed of every record hash, the same for both sides.
var hashSeed = maphash.MakeSeed()

// readOutput reads topic from its start to its end and reduces it as query
// outputs are compared.
func (b *bench) readOutput(query, topic string) (queryOutput, error) {
	out := queryOutput{}
	if tableQueries[query] {
		out.table = map[string]string{}
	}
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Minute)
	defer cancel()
	ends, err := b.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return out, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	// remaining: the partitions not read to their end yet, and the offset
	// of their last record (a transaction marker, under exactly-once,
	// which KeepControlRecords delivers so that the end can be seen).
	remaining := map[int32]int64{}
	start := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset - 1
			start[topic][o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(remaining) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.nexmarkAddr()), kgo.ConsumePartitions(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return out, err
	}
	defer cl.Close()
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("read %s: %d partitions not read to their end: %w", topic, len(remaining), err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = cmpOr(ferr, fmt.Errorf("read %s[%d]: %w", t, p, err)) })
		if ferr != nil {
			return out, ferr
		}
		var derr error
		fs.EachRecord(func(r *kgo.Record) {
			if last, ok := remaining[r.Partition]; ok && r.Offset >= last {
				delete(remaining, r.Partition)
			}
			if r.Attrs.IsControl() || derr != nil {
				return
			}
			out.records++
			key, err := canonicalKey(r.Key)
			if err != nil {
				derr = fmt.Errorf("%s[%d]@%d: key: %w", topic, r.Partition, r.Offset, err)
				return
			}
			if r.Value == nil {
				if out.table == nil {
					derr = fmt.Errorf("%s[%d]@%d: a null value in a stream", topic, r.Partition, r.Offset)
				}
				delete(out.table, key)
				return
			}
			value, err := canonicalValue(query, r.Value)
			if err != nil {
				derr = fmt.Errorf("%s[%d]@%d: value: %w", topic, r.Partition, r.Offset, err)
				return
			}
			if out.table != nil {
				out.table[key] = value
				return
			}
			out.sum += maphash.String(hashSeed, key+"\x00"+value)
		})
		if derr != nil {
			return out, derr
		}
	}
	return out, nil
}

// canonicalKey is an 8-byte id as its decimal, and any other key as
// canonical JSON.
func canonicalKey(k []byte) (string, error) {
	if len(k) == 8 {
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(k)), 10), nil
	}
	return canonicalJSON(k, nil)
}

// canonicalValue is v written again by encoding/json; for q7 with its
// bids sorted.
func canonicalValue(query string, v []byte) (string, error) {
	if query != "q7" {
		return canonicalJSON(v, nil)
	}
	return canonicalJSON(v, func(x any) error {
		m, ok := x.(map[string]any)
		if !ok {
			return fmt.Errorf("q7: not an object")
		}
		bids, _ := m["bids"].([]any)
		enc := make([][]byte, len(bids))
		for i, b := range bids {
			var err error
			if enc[i], err = json.Marshal(b); err != nil {
				return err
			}
		}
		slices.SortFunc(enc, bytes.Compare)
		for i := range bids {
			bids[i] = json.RawMessage(enc[i])
		}
		return nil
	})
}

// canonicalJSON decodes b, lets fix change the decoded value, and encodes
// it again.
func canonicalJSON(b []byte, fix func(any) error) (string, error) {
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return "", err
	}
	if fix != nil {
		if err := fix(x); err != nil {
			return "", err
		}
	}
	out, err := json.Marshal(x)
	return string(out), err
}

// compareOutputs says whether two engines' reduced outputs are the same,
// and if not, how they differ.
func compareOutputs(runnel, kstreams queryOutput) (same bool, how string) {
	if runnel.table == nil {
		if runnel.records == kstreams.records && runnel.sum == kstreams.sum {
			return true, fmt.Sprintf("same %d records", runnel.records)
		}
		return false, fmt.Sprintf("Runnel wrote %d records, Kafka Streams %d; the records differ", runnel.records, kstreams.records)
	}
	var onlyR, onlyK, differ []string
	for k, v := range runnel.table {
		kv, ok := kstreams.table[k]
		switch {
		case !ok:
			onlyR = append(onlyR, k)
		case kv != v:
			differ = append(differ, k)
		}
	}
	for k := range kstreams.table {
		if _, ok := runnel.table[k]; !ok {
			onlyK = append(onlyK, k)
		}
	}
	if len(onlyR)+len(onlyK)+len(differ) == 0 {
		return true, fmt.Sprintf("same %d keys (from %d updates in Runnel's output, %d in Kafka Streams')", len(runnel.table), runnel.records, kstreams.records)
	}
	how = fmt.Sprintf("of %d keys (Runnel) and %d (Kafka Streams): %d only in Runnel's, %d only in Kafka Streams', %d with different values",
		len(runnel.table), len(kstreams.table), len(onlyR), len(onlyK), len(differ))
	for _, ks := range [][]string{differ, onlyR, onlyK} {
		if len(ks) > 0 {
			slices.Sort(ks)
			k := ks[0]
			how += fmt.Sprintf("; e.g. key %s: Runnel %s, Kafka Streams %s", k, orNone(runnel.table, k), orNone(kstreams.table, k))
			break
		}
	}
	return false, how
}

func orNone(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return "(none)"
}
