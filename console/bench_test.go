package console_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// BenchmarkOverview1000Partitions renders the overview page (metadata and
// the end offsets of every partition) of a broker holding 1,000
// partitions; the issue asks for under 200 ms.
func BenchmarkOverview1000Partitions(b *testing.B) {
	br := testutil.StartBroker(b, broker.Config{HTTPListen: "127.0.0.1:0", GroupInitialRebalanceDelay: -1,
		OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(b.Context(), 999, 1, nil, "wide"); err != nil {
		b.Fatal(err)
	}
	for _, path := range []string{"/", "/topics"} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				resp, err := http.Get("http://" + br.HTTPAddr() + path)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", path, resp.StatusCode)
				}
			}
		})
	}
}
