package runnel_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

// A stream-table join sees every table update earlier than the stream
// record, however the fetches split the two partitions: here the table
// holds several fetches' worth of bytes (6 MB of users, a fetch brings
// at most 1 MiB of a partition) and every click comes after every user in
// time but refers to the last users, which the first fetches do not
// bring. Processing each poll alone in timestamp order joined clicks with
// a table not yet read that far, and dropped them.
func TestAppJoinWaitsForEarlierRecordsOfTheOtherPartition(t *testing.T) {
	for _, g := range []runnel.Guarantee{runnel.ExactlyOnce, runnel.AtLeastOnce} {
		t.Run(g.String(), func(t *testing.T) {
			addr := startAppBroker(t)
			createTopics(t, addr, 1, "users", "clicks", "enriched")
			const users, clicks = 3000, 2000
			// Uncompressed: the pad would compress to nothing.
			cl := newTestClient(t, addr, kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
			t0 := time.UnixMilli(1_700_000_000_000)
			pad := strings.Repeat("x", 2000)
			var recs []*kgo.Record
			for i := range users {
				recs = append(recs, &kgo.Record{Topic: "users", Key: []byte(fmt.Sprintf("u%04d", i)),
					Value: []byte(fmt.Sprintf("name-%d %s", i, pad)), Timestamp: t0.Add(time.Duration(i) * time.Millisecond)})
			}
			for i := range clicks {
				u := users - 1 - i%500 // the last 500 users
				recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte(fmt.Sprintf("u%04d", u)),
					Value: []byte(fmt.Sprintf("click-%d", i)), Timestamp: t0.Add(time.Duration(users+i) * time.Millisecond)})
			}
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			topo := buildTopology(t, func(b *stream.Builder) {
				table := stream.TableOf(b, "users", serde.String, serde.String)
				in := stream.From(b, "clicks", serde.String, serde.String)
				stream.JoinTable(in, table, func(c, u string) string { return c + " by " + strings.Fields(u)[0] }).To("enriched")
			})
			app := runApp(t, topo, nil, runnel.ApplicationID("join-order-"+g.String()), runnel.Brokers(addr),
				runnel.StateDir(t.TempDir()), runnel.ProcessingGuarantee(g))
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			if err := app.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			out := readTopic(t, addr, "enriched")
			if len(out) != clicks {
				t.Fatalf("%d of %d clicks joined", len(out), clicks)
			}
			for _, r := range out {
				var i, u int
				if _, err := fmt.Sscanf(string(r.Value), "click-%d by name-%d", &i, &u); err != nil || u != users-1-i%500 {
					t.Fatalf("joined %s=%q", r.Key, r.Value)
				}
			}
		})
	}
}
