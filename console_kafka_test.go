package runnel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/console"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestConsoleAgainstKafka runs the web console against Apache Kafka 4.x:
// the overview, the topic list, a topic with its records, the group list,
// an empty group's lag and a live group's members and assignments come
// out as they do against Runnel's broker (package console's tests).
func TestConsoleAgainstKafka(t *testing.T) {
	addr := kafkaPeerAddr(t)
	ctx := t.Context()
	topic, group := "console-peer-"+time.Now().Format("150405.000000"), "console-peer-group"
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx,
		&kgo.Record{Key: []byte("<i>k0</i>"), Value: []byte(`{"n":0}`)},
		&kgo.Record{Key: []byte("k1"), Value: []byte{0, 0xff}},
		&kgo.Record{Key: []byte("k2"), Value: []byte("two")},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: topic, Partition: 1, At: 0, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, group+topic, os); err != nil {
		t.Fatal(err)
	}

	c, err := console.New(console.Config{Brokers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer func() { srv.Close(); c.Close() }()
	getJSON := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, v) != nil {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}

	var ov console.Overview
	getJSON("/api/overview", &ov)
	if ov.ClusterID == "" || len(ov.Brokers) != 1 || ov.Controller != 1 || ov.Partitions.Online != ov.Partitions.Total || ov.Partitions.Total < 2 {
		t.Fatalf("overview %+v", ov)
	}
	var tp console.Topic
	getJSON("/api/topics/"+topic, &tp)
	if len(tp.Partitions) != 2 || tp.Partitions[0].EndOffset != 3 || tp.Partitions[0].Leader != 1 {
		t.Fatalf("topic %+v", tp.Partitions)
	}
	var ts []console.TopicSummary
	getJSON("/api/topics", &ts)
	found := false
	for _, s := range ts {
		found = found || s.Name == topic && s.Records == 3 && s.CleanupPolicy == "delete" && s.ReplicationFactor == 1
	}
	if !found {
		t.Fatalf("topic list lacks %s with 3 records: %+v", topic, ts)
	}
	var m console.Messages
	getJSON("/api/topics/"+topic+"/messages?from=earliest", &m)
	if len(m.Records) != 3 || m.Records[0].Key.Text != "<i>k0</i>" || m.Records[0].Value.Encoding != "json" || m.Records[1].Value.Encoding != "binary" {
		t.Fatalf("messages %+v", m.Records)
	}
	var g console.Group
	getJSON("/api/groups/"+group+topic, &g)
	if g.State != "Empty" || g.Lag != 2 {
		t.Fatalf("group %+v", g)
	}
	var gs []console.GroupSummary
	getJSON("/api/groups", &gs)
	listed := false
	for _, s := range gs {
		listed = listed || s.Group == group+topic && s.State == "Empty" && s.Lag == 2
	}
	if !listed {
		t.Fatalf("group list lacks %s, Empty with lag 2: %+v", group+topic, gs)
	}
	// A group with a member: its protocol, the member and what it was
	// assigned.
	live := group + "-live-" + topic
	member, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(live), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		member.PollRecords(pctx, 10) // joins the group
		cancel()
		g = console.Group{}
		getJSON("/api/groups/"+live, &g)
		ok := g.State == "Stable" && g.ProtocolType == "consumer" && g.Protocol != "" && len(g.MemberList) == 1 &&
			len(g.MemberList[0].Assigned) == 1 && g.MemberList[0].Assigned[0].Topic == topic && len(g.MemberList[0].Assigned[0].Partitions) == 2
		return ok, fmt.Sprintf("group %s stable with one member assigned both partitions: %+v", live, g)
	})
	for _, b := range ov.Brokers {
		if !b.Alive {
			t.Errorf("broker %+v not alive", b)
		}
	}
	resp, err := http.Get(srv.URL + "/topics/" + topic + "?from=earliest")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "&lt;i&gt;k0&lt;/i&gt;") {
		t.Fatalf("topic page: %d\n%s", resp.StatusCode, page)
	}
}
