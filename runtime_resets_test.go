package runnel

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFindReset: a fetch shows a reset when the task's position was below
// the partition's log start and reading resumed past it; a position moved
// back (an aborted transaction's rewind) or an unknown one is none.
func TestFindReset(t *testing.T) {
	fetched := func(logStart int64, offsets ...int64) kgo.FetchTopicPartition {
		p := kgo.FetchTopicPartition{Topic: "in", FetchPartition: kgo.FetchPartition{Partition: 0, LogStartOffset: logStart}}
		for _, o := range offsets {
			p.Records = append(p.Records, &kgo.Record{Topic: "in", Offset: o})
		}
		return p
	}
	for _, c := range []struct {
		name string
		was  int64
		p    kgo.FetchTopicPartition
		want offsetReset
		ok   bool
	}{
		{"position in the log", 10, fetched(0, 10, 11), offsetReset{}, false},
		{"position at the log start", 10, fetched(10, 10), offsetReset{}, false},
		{"position unknown", -1, fetched(10, 10), offsetReset{}, false},
		{"below the log start", 10, fetched(15, 15, 16), offsetReset{was: 10, resumed: 15}, true},
		{"resumed past the log start (aborted records skipped)", 10, fetched(15, 18), offsetReset{was: 10, resumed: 18}, true},
		{"below the log start, nothing fetched", 10, fetched(15), offsetReset{was: 10, resumed: 15}, true},
		{"rewound after an abort", 40, fetched(0, 30), offsetReset{}, false},
		{"no log start in the response", 10, fetched(-1, 12), offsetReset{}, false},
	} {
		got, ok := findReset(c.was, c.p)
		if ok != c.ok || got != c.want {
			t.Errorf("%s: findReset(%d, log start %d) = %+v, %v; want %+v, %v", c.name, c.was, c.p.LogStartOffset, got, ok, c.want, c.ok)
		}
	}
}
