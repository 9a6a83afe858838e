package console_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/console"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestOverviewCluster: against three brokers in racks, the overview lists
// each with its rack and the partitions it leads and holds; once one
// stops, it is still listed, as down, and the partitions it held count as
// under-replicated, on the API and on the page, and the topic pages still
// answer.
func TestOverviewCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	brokers := testutil.StartCluster(t, 3, func(i int, cfg *broker.Config) {
		cfg.Rack = fmt.Sprintf("rack-%c", 'a'+i)
		cfg.BrokerSessionTimeout, cfg.BrokerHeartbeatInterval = 3*time.Second, 300*time.Millisecond
		cfg.ReplicaLagTimeMax, cfg.ControlledShutdownTimeout = 4*time.Second, 10*time.Second
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		if i == 0 {
			cfg.HTTPListen = "127.0.0.1:0"
		}
	})
	ctx := testContext(t)
	web := "http://" + brokers[0].HTTPAddr()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 6, 3, nil, "spread"); err != nil {
		t.Fatal(err)
	}

	// overview waits until cond holds of the overview, and returns it.
	overview := func(what string, cond func(ov console.Overview) bool) console.Overview {
		t.Helper()
		var ov console.Overview
		testutil.Eventually(t, time.Minute, func() (bool, string) {
			ov = console.Overview{}
			getJSON(t, web+"/api/overview", &ov)
			return cond(ov), fmt.Sprintf("%s: %+v", what, ov)
		})
		return ov
	}
	ov := overview("three brokers alive, every partition replicated", func(ov console.Overview) bool {
		return len(ov.Brokers) == 3 && ov.BrokersAlive == 3 && ov.Partitions.Total >= 6 && ov.Partitions.UnderReplicated == 0
	})
	led := 0
	for i, b := range ov.Brokers {
		if b.NodeID != int32(i+1) || !b.Alive || b.Rack != fmt.Sprintf("rack-%c", 'a'+i) || b.Replicas < 6 {
			t.Errorf("broker %d: %+v", i+1, b)
		}
		led += b.Leader
	}
	if led != ov.Partitions.Total {
		t.Errorf("the brokers lead %d partitions, want %d", led, ov.Partitions.Total)
	}

	if err := brokers[2].Close(); err != nil {
		t.Fatal(err)
	}
	brokers[2] = nil
	ov = overview("broker 3 down, its partitions under-replicated", func(ov console.Overview) bool {
		return len(ov.Brokers) == 3 && ov.BrokersAlive == 2 && !ov.Brokers[2].Alive && ov.Partitions.UnderReplicated >= 6
	})
	if b := ov.Brokers[2]; b.NodeID != 3 || b.Leader != 0 {
		t.Errorf("stopped broker: %+v", b)
	}
	// The pages that list offsets show the partitions the live brokers
	// answer for rather than an error.
	for _, u := range []string{"/api/topics", "/api/topics/spread"} {
		if status, body, _ := get(t, web+u); status != http.StatusOK {
			t.Errorf("%s with a broker down: %d %s", u, status, body)
		}
	}
	status, body, _ := get(t, web+"/")
	for _, want := range []string{`<dd id="broker-count" class="bad">2 / 3</dd>`, `data-node="3"><td>3</td><td class="bad">down</td>`, "rack-b"} {
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("overview page (%d) lacks %s", status, want)
		}
	}
}
