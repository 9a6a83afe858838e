package broker_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"

	"github.com/runnel-dev/runnel/broker"
)

// TestMetricsFromStart scrapes a broker that has served nothing yet: the
// Go and process collectors are there, and so is every series a dashboard
// plots, at zero — per API, and per topic once the topic exists.
func TestMetricsFromStart(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{MetricsListen: "127.0.0.1:0"})
	createTopic(t, newAdmin(t, b.Addr()), "quiet", 2, nil)
	want := []string{
		"go_goroutines ",
		"go_memstats_alloc_bytes ",
		"process_cpu_seconds_total ",
		"process_open_fds ",
		`runnel_broker_requests_total{api="Produce"} 0`,
		`runnel_broker_request_duration_seconds_count{api="Fetch"} 0`,
		`runnel_broker_topic_bytes_in_total{topic="quiet"} 0`,
		`runnel_broker_topic_bytes_out_total{topic="quiet"} 0`,
		`runnel_broker_topic_records_in_total{topic="quiet"} 0`,
		`runnel_broker_topic_records_out_total{topic="quiet"} 0`,
		`runnel_broker_log_end_offset{partition="1",topic="quiet"} 0`,
	}
	// The topic's partitions open as the broker applies the metadata
	// change, just after CreateTopics returns.
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := scrape(t, b.MetricsAddr())
		var missing []string
		for _, w := range want {
			if !strings.Contains(body, "\n"+w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q", missing)
		}
		time.Sleep(20 * time.Millisecond) // polling the scrape
	}
}

// scrape returns the metrics endpoint's text.
func scrape(t testing.TB, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
