package runnel_test

import (
	"strings"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

// wordCount is the canonical word count the runtime tests run: lines in,
// counts per word out, through a repartition and a counting store.
func wordCount(b *stream.Builder) {
	lines := stream.From(b, "lines", serde.String, serde.String)
	words := stream.FlatMapValues(lines, func(line string) []string { return strings.Fields(strings.ToLower(line)) })
	counts := stream.GroupBy(words, func(_, w string) string { return w }, stream.Named("words")).
		Count(stream.Materialized("counts"))
	counts.ToStream().To("word-counts")
}
