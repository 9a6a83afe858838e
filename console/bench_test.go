package console_test

import (
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

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

var onlineRE = regexp.MustCompile(`<dd id="partitions-online">(\d+) / (\d+)</dd>`)

// TestOverview1000Partitions: the overview page of a broker holding 1,000
// partitions renders in under 200 ms, as the issue asks. The fastest of a
// few renders is what is compared, so that a loaded machine (other tests,
// other builds) does not fail it: one render under the bound shows the
// console's own work fits in it.
func TestOverview1000Partitions(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 1,000 partitions")
	}
	br := testutil.StartBroker(t, broker.Config{HTTPListen: "127.0.0.1:0", GroupInitialRebalanceDelay: -1,
		OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(testContext(t), 999, 1, nil, "wide"); err != nil {
		t.Fatal(err)
	}
	const bound = 200 * time.Millisecond
	web := "http://" + br.HTTPAddr() + "/"
	fastest := time.Hour
	for range 10 {
		start := time.Now()
		status, body, _ := get(t, web)
		fastest = min(fastest, time.Since(start))
		// 999 in "wide" and those of __consumer_offsets.
		m := onlineRE.FindStringSubmatch(body)
		if status != http.StatusOK || m == nil || m[1] != m[2] || len(m[1]) < 4 {
			t.Fatalf("overview: %d, want 1,000 partitions or more, all online\n%s", status, body)
		}
	}
	if fastest > bound {
		t.Fatalf("the overview of 1,000 partitions took %v at best, over %v", fastest, bound)
	}
	t.Logf("fastest overview of 1,000 partitions: %v", fastest)
}
