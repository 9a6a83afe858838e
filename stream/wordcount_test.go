package stream_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/runnel-dev/runnel/stream/streamtest"
)

func wordCount(b *stream.Builder) {
	lines := stream.From(b, "lines", serde.String, serde.String)
	words := stream.FlatMapValues(lines, func(line string) []string { return strings.Fields(strings.ToLower(line)) })
	counts := stream.GroupBy(words, func(_, w string) string { return w }, stream.Named("words")).
		Count(stream.Materialized("counts"))
	counts.ToStream().To("word-counts")
}

// TestWordCountMatchesReference: the canonical word count gives the counts of a
// plain reference computation, whatever the partitioning and caching.
func TestWordCountMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 18))
	vocab := []string{"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Runnel", "kafka"}
	var lines []string
	for range 300 {
		var ws []string
		for range rng.IntN(8) {
			ws = append(ws, vocab[rng.IntN(len(vocab))])
		}
		lines = append(lines, strings.Join(ws, " "))
	}
	want := map[string]int64{}
	for _, l := range lines {
		for _, w := range strings.Fields(strings.ToLower(l)) {
			want[w]++
		}
	}
	for _, tc := range []struct {
		parts   int
		caching bool
	}{{1, false}, {3, false}, {4, true}} {
		t.Run(fmt.Sprintf("partitions=%d/caching=%t", tc.parts, tc.caching), func(t *testing.T) {
			b := stream.NewBuilder()
			wordCount(b)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := streamtest.New(topo, streamtest.DefaultPartitions(tc.parts), streamtest.Caching(tc.caching), streamtest.CommitEvery(7))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			in := streamtest.Input(d, "lines", serde.String, serde.String)
			for i, l := range lines {
				if err := in.Pipe(fmt.Sprint(i), l, int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Commit(); err != nil {
				t.Fatal(err)
			}
			got, err := streamtest.Latest(d, "word-counts", serde.String, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Fatalf("output counts\n got %v\nwant %v", got, want)
			}
			store, err := streamtest.KeyValues(d, "counts", serde.String, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(store, want) {
				t.Fatalf("store counts\n got %v\nwant %v", store, want)
			}
		})
	}
}
