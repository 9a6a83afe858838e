package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/console"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Untrusted content the console must show as text: in record keys, values
// and headers, and in a group name (topic names cannot hold it).
const (
	evilKey    = `<script>alert("key")</script>`
	evilValue  = `<img src=x onerror=alert(1)>`
	evilHeader = `"><svg onload=alert(2)>`
	evilGroup  = `<script>alert("group")</script>`
)

var binaryValue = []byte{0x00, 0x01, 0xfe, 0xff, '<', 'b', '>'}

// cluster is a broker serving its console, holding known topics, records
// and groups.
type cluster struct {
	b    *broker.Broker
	addr string // Kafka
	web  string // http://host:port of the broker's console
	t0   time.Time
}

// startCluster starts a broker with its console on and writes:
//   - topic "orders", 3 partitions: 5 records in partition 0 (an HTML key,
//     value and header; a binary value; a JSON value; two plain), 1 in
//     partition 1;
//   - group "lagging", without members, committed at orders/0 offset 1
//     (lag 4) and orders/1 offset 1 (lag 0);
//   - group evilGroup, committed at orders/0 offset 0 (lag 5, and 1 in
//     orders/1 where it has no commit: kadm counts from the start).
func startCluster(t *testing.T) *cluster {
	t.Helper()
	return startClusterWith(t, nil)
}

// startClusterWith is startCluster with edit applied to the broker's
// config.
func startClusterWith(t *testing.T, edit func(*broker.Config)) *cluster {
	t.Helper()
	cfg := broker.Config{
		HTTPListen:                      "127.0.0.1:0",
		GroupInitialRebalanceDelay:      -1,
		OffsetsTopicPartitions:          3,
		TransactionStateTopicPartitions: 3,
	}
	if edit != nil {
		edit(&cfg)
	}
	b := testutil.StartBroker(t, cfg)
	c := &cluster{b: b, addr: b.Addr(), web: "http://" + b.HTTPAddr()}
	ctx := testContext(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	c.t0 = time.Now().Add(-time.Hour)
	recs := []*kgo.Record{
		{Partition: 0, Key: []byte(evilKey), Value: []byte(evilValue), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(evilHeader)}}, Timestamp: c.t0},
		{Partition: 0, Key: []byte("bin"), Value: binaryValue, Timestamp: c.t0.Add(time.Minute)},
		{Partition: 0, Key: []byte("json"), Value: []byte(`{"amount":42,"currency":"EUR"}`), Timestamp: c.t0.Add(2 * time.Minute)},
		{Partition: 0, Key: []byte("k3"), Value: []byte("plain three"), Timestamp: c.t0.Add(3 * time.Minute)},
		{Partition: 0, Key: []byte("k4"), Value: []byte("plain four"), Timestamp: c.t0.Add(4 * time.Minute)},
		{Partition: 1, Key: []byte("k5"), Value: []byte("other partition"), Timestamp: c.t0.Add(5 * time.Minute)},
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	commit := func(group string, at map[int32]int64) {
		os := kadm.Offsets{}
		for p, o := range at {
			os.Add(kadm.Offset{Topic: "orders", Partition: p, At: o, LeaderEpoch: -1})
		}
		if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
			t.Fatalf("commit %s: %v", group, err)
		}
	}
	commit("lagging", map[int32]int64{0: 1, 1: 1})
	commit(evilGroup, map[int32]int64{0: 0})
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// get fetches url and returns the status and body.
func get(t *testing.T, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// getJSON fetches url, wants 200, and decodes the body into v.
func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	status, body, _ := get(t, u)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", u, err, body)
	}
}

func post(t *testing.T, u, contentType, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(u, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAPI(t *testing.T) {
	c := startCluster(t)

	t.Run("overview", func(t *testing.T) {
		var ov console.Overview
		getJSON(t, c.web+"/api/overview", &ov)
		if ov.ClusterID == "" || len(ov.Brokers) != 1 || ov.Controller < 0 {
			t.Fatalf("overview %+v", ov)
		}
		// orders (3) and __consumer_offsets (3): all online, none
		// under-replicated at replication factor 1.
		p := ov.Partitions
		if p.Total < 6 || p.Online != p.Total || p.Offline != 0 || p.UnderReplicated != 0 {
			t.Fatalf("partitions %+v", p)
		}
		if br := ov.Brokers[0]; br.Leader != p.Total || br.Replicas != p.Total || br.Port == 0 {
			t.Fatalf("broker %+v, partitions %+v", br, p)
		}
		if ov.Records < 6 {
			t.Fatalf("records %d, want at least 6", ov.Records)
		}
	})

	t.Run("topics", func(t *testing.T) {
		var ts []console.TopicSummary
		getJSON(t, c.web+"/api/topics", &ts)
		var orders *console.TopicSummary
		for i := range ts {
			if ts[i].Name == "orders" {
				orders = &ts[i]
			}
		}
		if orders == nil {
			t.Fatalf("no orders in %+v", ts)
		}
		if orders.Partitions != 3 || orders.ReplicationFactor != 1 || orders.Records != 6 || orders.CleanupPolicy != "delete" || orders.Internal {
			t.Fatalf("orders %+v", *orders)
		}
	})

	t.Run("topic", func(t *testing.T) {
		var tp console.Topic
		getJSON(t, c.web+"/api/topics/orders", &tp)
		if len(tp.Partitions) != 3 {
			t.Fatalf("partitions %+v", tp.Partitions)
		}
		wantEnd := []int64{5, 1, 0}
		for i, p := range tp.Partitions {
			if p.Partition != int32(i) || p.StartOffset != 0 || p.EndOffset != wantEnd[i] || p.Leader != 0 || len(p.ISR) != 1 {
				t.Errorf("partition %d: %+v", i, p)
			}
		}
		found := false
		for _, cfg := range tp.Configs {
			found = found || cfg.Name == "cleanup.policy" && cfg.Value == "delete"
		}
		if !found {
			t.Fatalf("no cleanup.policy=delete in %+v", tp.Configs)
		}
		if status, body, _ := get(t, c.web+"/api/topics/nosuch"); status != http.StatusNotFound || !strings.Contains(body, `no topic \"nosuch\"`) {
			t.Fatalf("missing topic: %d %s", status, body)
		}
	})

	t.Run("groups", func(t *testing.T) {
		var gs []console.GroupSummary
		getJSON(t, c.web+"/api/groups", &gs)
		lags := map[string]int64{}
		for _, g := range gs {
			lags[g.Group] = g.Lag
			if g.State != "Empty" || g.Members != 0 {
				t.Errorf("group %+v", g)
			}
		}
		if lags["lagging"] != 4 || lags[evilGroup] != 6 {
			t.Fatalf("lags %v", lags)
		}
	})

	t.Run("group", func(t *testing.T) {
		var g console.Group
		getJSON(t, c.web+"/api/groups/lagging", &g)
		// kadm reports every partition of a topic the group committed
		// in: partition 2 has no commit and nothing to lag behind.
		if g.State != "Empty" || g.Lag != 4 || len(g.Offsets) != 3 {
			t.Fatalf("group %+v", g)
		}
		want := []console.PartitionLag{{Topic: "orders", Partition: 0, Committed: 1, End: 5, Lag: 4}, {Topic: "orders", Partition: 1, Committed: 1, End: 1, Lag: 0}, {Topic: "orders", Partition: 2, Committed: -1, End: 0, Lag: 0}}
		for i, w := range want {
			if g.Offsets[i] != w {
				t.Errorf("offsets[%d] = %+v, want %+v", i, g.Offsets[i], w)
			}
		}
		if status, _, _ := get(t, c.web+"/api/groups/nosuch"); status != http.StatusNotFound {
			t.Fatalf("missing group: %d", status)
		}
	})
}

// browse asks the message browser and returns its answer.
func browse(t *testing.T, c *cluster, query string) console.Messages {
	t.Helper()
	var m console.Messages
	getJSON(t, c.web+"/api/topics/orders/messages?"+query, &m)
	return m
}

func keys(m console.Messages) string {
	var ks []string
	for _, r := range m.Records {
		if r.Key == nil {
			ks = append(ks, "null")
		} else {
			ks = append(ks, fmt.Sprintf("%d/%d:%s", r.Partition, r.Offset, r.Key.Text))
		}
	}
	return strings.Join(ks, " ")
}

func TestMessageBrowser(t *testing.T) {
	c := startCluster(t)
	all := browse(t, c, "from=earliest")
	if got := keys(all); got != `0/0:`+evilKey+` 0/1:bin 0/2:json 0/3:k3 0/4:k4 1/0:k5` {
		t.Fatalf("earliest: %s", got)
	}
	r0 := all.Records[0]
	if r0.Value.Encoding != "text" || r0.Value.Text != evilValue || len(r0.Headers) != 1 || r0.Headers[0].Value.Text != evilHeader ||
		r0.Timestamp != c.t0.UnixMilli() {
		t.Fatalf("record 0: %+v", r0)
	}
	if v := all.Records[1].Value; v.Encoding != "binary" || v.Base64 != "AAH+/zxiPg==" || v.Size != len(binaryValue) {
		t.Fatalf("binary value: %+v", v)
	}
	if v := all.Records[2].Value; v.Encoding != "json" || !strings.Contains(v.Text, "\"amount\": 42") {
		t.Fatalf("json value: %+v", v)
	}

	cases := []struct{ query, want string }{
		{"from=latest&limit=2&partition=0", "0/3:k3 0/4:k4"},
		{"from=offset&offset=3", "0/3:k3 0/4:k4"},
		{"from=timestamp&timestamp=" + url.QueryEscape(c.t0.Add(150*time.Second).UTC().Format(time.RFC3339)), "0/3:k3 0/4:k4 1/0:k5"},
		{fmt.Sprintf("from=timestamp&timestamp=%d", c.t0.Add(4*time.Minute).UnixMilli()), "0/4:k4 1/0:k5"},
		{"from=earliest&key=json", "0/2:json"},
		{"from=earliest&q=plain", "0/3:k3 0/4:k4"},
		{"from=earliest&q=svg", "0/0:" + evilKey}, // in a header
		{"from=earliest&partition=1", "1/0:k5"},
		{"from=earliest&partition=2", ""},
		{"from=earliest&limit=1&partition=0", "0/0:" + evilKey},
	}
	for _, tc := range cases {
		if got := keys(browse(t, c, tc.query)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.query, got, tc.want)
		}
	}

	for _, bad := range []string{"from=sideways", "from=offset&offset=-1", "from=offset", "from=timestamp&timestamp=yesterday", "limit=0", "limit=5000", "partition=x"} {
		status, body, _ := get(t, c.web+"/api/topics/orders/messages?"+bad)
		if status != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s", bad, status, body)
		}
	}
	if status, _, _ := get(t, c.web+"/api/topics/orders/messages?partition=7"); status != http.StatusNotFound {
		t.Errorf("partition 7: %d", status)
	}
	if status, _, _ := get(t, c.web+"/api/topics/nosuch/messages"); status != http.StatusNotFound {
		t.Errorf("missing topic: %d", status)
	}
}

// TestPagesEscapeRecords renders every page over records, headers and a
// group name that hold HTML and script, and finds them only as text.
func TestPagesEscapeRecords(t *testing.T) {
	c := startCluster(t)
	pages := map[string][]string{
		"/":                                    {"Brokers", "Partitions online"},
		"/topics":                              {`href="/topics/orders"`},
		"/topics/orders?from=earliest":         {"&lt;script&gt;alert(&#34;key&#34;)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;", "&#34;&gt;&lt;svg onload=alert(2)&gt;", "00 01 fe ff 3c 62 3e", "&#34;amount&#34;: 42"},
		"/groups":                              {"/groups/%3cscript%3ealert%28%22group%22%29%3c/script%3e", "&lt;script&gt;alert(&#34;group&#34;)&lt;/script&gt;"},
		"/groups/lagging":                      {`<td class="lag warn">4</td>`, "Committed"},
		"/groups/" + url.PathEscape(evilGroup): {"&lt;script&gt;alert(&#34;group&#34;)&lt;/script&gt;"},
	}
	for path, wants := range pages {
		status, body, h := get(t, c.web+path)
		if status != http.StatusOK {
			t.Errorf("%s: %d\n%s", path, status, body)
			continue
		}
		if !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: headers %v", path, h)
		}
		for _, w := range wants {
			if !strings.Contains(body, w) {
				t.Errorf("%s: lacks %q\n%s", path, w, body)
			}
		}
		for _, raw := range []string{evilKey, evilValue, evilHeader, evilGroup, "<svg", "<img"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s: holds %q unescaped", path, raw)
			}
		}
		if n := strings.Count(body, "<script"); n != 1 { // the console's own
			t.Errorf("%s: %d <script elements", path, n)
		}
	}
	// A topic name from the URL is escaped in the error it gets.
	status, body, _ := get(t, c.web+"/topics/"+url.PathEscape("<b>x</b>"))
	if status != http.StatusNotFound || strings.Contains(body, "<b>x</b>") || !strings.Contains(body, "&lt;b&gt;x&lt;/b&gt;") {
		t.Errorf("missing topic page: %d\n%s", status, body)
	}
	// A live refresh of the topic page re-reads the partitions, not the
	// records.
	req, _ := http.NewRequest("GET", c.web+"/topics/orders?from=earliest", nil)
	req.Header.Set("X-Console-Refresh", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	refreshed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(refreshed), `id="partitions"`) || strings.Contains(string(refreshed), `class="record"`) {
		t.Errorf("refreshed topic page:\n%s", refreshed)
	}
	// The assets are embedded.
	for _, a := range []string{"/static/console.js", "/static/console.css"} {
		if status, body, _ := get(t, c.web+a); status != http.StatusOK || len(body) < 100 {
			t.Errorf("%s: %d", a, status)
		}
	}
}

// TestWrites: the broker's console is read-only by default; a console
// with writes allowed produces, alters configs and resets an empty group,
// each with its checks.
func TestWrites(t *testing.T) {
	c := startCluster(t)
	for _, u := range []string{"/api/topics/orders/produce", "/api/topics/orders/configs", "/api/groups/lagging/reset", "/api/topics", "/api/topics/orders/delete"} {
		status, body := post(t, c.web+u, "application/json", `{}`)
		if status != http.StatusForbidden || !strings.Contains(body, "read-only") {
			t.Errorf("read-only %s: %d %s", u, status, body)
		}
	}
	// Nothing was written.
	if got := keys(browse(t, c, "from=earliest&partition=2")); got != "" {
		t.Fatalf("partition 2 after a refused produce: %s", got)
	}

	con, err := console.New(console.Config{Brokers: []string{c.addr}, AllowWrites: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	t.Cleanup(func() { srv.Close(); con.Close() })

	status, body := post(t, srv.URL+"/api/topics/orders/produce", "text/plain", `{"value":"x"}`)
	if status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain produce: %d %s", status, body)
	}
	status, body = post(t, srv.URL+"/api/topics/orders/produce", "application/json", `{"key":"tk","value":"test <i>record</i>","partition":2,"headers":{"from":"console"}}`)
	var produced console.Produced
	if status != http.StatusOK || json.Unmarshal([]byte(body), &produced) != nil || produced != (console.Produced{Partition: 2, Offset: 0}) {
		t.Fatalf("produce: %d %s", status, body)
	}
	m := browse(t, c, "from=earliest&partition=2")
	if len(m.Records) != 1 || m.Records[0].Value.Text != "test <i>record</i>" || m.Records[0].Headers[0].Key != "from" {
		t.Fatalf("produced record: %+v", m.Records)
	}
	if status, body = post(t, srv.URL+"/api/topics/orders/produce", "application/json", `{"value":"x","bogus":1}`); status != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s", status, body)
	}

	status, body = post(t, srv.URL+"/api/topics/orders/configs", "application/json", `{"set":{"retention.ms":"3600000"}}`)
	if status != http.StatusOK {
		t.Fatalf("alter configs: %d %s", status, body)
	}
	var tp console.Topic
	getJSON(t, c.web+"/api/topics/orders", &tp)
	found := false
	for _, cfg := range tp.Configs {
		found = found || cfg.Name == "retention.ms" && cfg.Value == "3600000" && cfg.Source == "topic"
	}
	if !found {
		t.Fatalf("retention.ms not set: %+v", tp.Configs)
	}
	if status, body = post(t, srv.URL+"/api/topics/orders/configs", "application/json", `{"set":{"retention.ms":"soon"}}`); status != http.StatusBadRequest {
		t.Errorf("bad config value: %d %s", status, body)
	}

	// Reset: the confirmation must name the group.
	status, body = post(t, srv.URL+"/api/groups/lagging/reset", "application/json", `{"to":"earliest","confirm":"other"}`)
	if status != http.StatusBadRequest || !strings.Contains(body, "confirm") {
		t.Fatalf("unconfirmed reset: %d %s", status, body)
	}
	var g console.Group
	getJSON(t, c.web+"/api/groups/lagging", &g)
	// 4 in partition 0, and 1 in partition 2 since the test record.
	if g.Lag != 5 || g.Offsets[0].Committed != 1 {
		t.Fatalf("after an unconfirmed reset: %+v", g)
	}
	status, body = post(t, srv.URL+"/api/groups/lagging/reset", "application/json", `{"to":"latest","confirm":"lagging"}`)
	if status != http.StatusOK {
		t.Fatalf("reset: %d %s", status, body)
	}
	getJSON(t, c.web+"/api/groups/lagging", &g)
	// Only the partitions with a commit move; partition 2 has none.
	if g.Lag != 1 || g.Offsets[0].Committed != 5 || g.Offsets[1].Committed != 1 || g.Offsets[2].Committed != -1 {
		t.Fatalf("after reset to latest: %+v", g)
	}
	status, body = post(t, srv.URL+"/api/groups/lagging/reset", "application/json", `{"to":"offset","offset":2,"confirm":"lagging"}`)
	if status != http.StatusOK {
		t.Fatalf("reset to offset: %d %s", status, body)
	}
	getJSON(t, c.web+"/api/groups/lagging", &g)
	// Offset 2 in both partitions, clamped to partition 1's end (1).
	if g.Offsets[0].Committed != 2 || g.Offsets[1].Committed != 1 || g.Lag != 3+1 {
		t.Fatalf("after reset to offset 2: %+v", g.Offsets)
	}

	// Create and delete a topic; the delete must be confirmed.
	status, body = post(t, srv.URL+"/api/topics", "application/json", `{"name":"made","partitions":4,"configs":{"cleanup.policy":"compact"}}`)
	if status != http.StatusOK {
		t.Fatalf("create topic: %d %s", status, body)
	}
	getJSON(t, c.web+"/api/topics/made", &tp)
	policy := ""
	for _, cfg := range tp.Configs {
		if cfg.Name == "cleanup.policy" {
			policy = cfg.Value
		}
	}
	if len(tp.Partitions) != 4 || policy != "compact" {
		t.Fatalf("created topic: %d partitions, cleanup.policy %q; want 4, compact", len(tp.Partitions), policy)
	}
	if status, body = post(t, srv.URL+"/api/topics", "application/json", `{"name":"made"}`); status != http.StatusBadRequest || !strings.Contains(body, "TOPIC_ALREADY_EXISTS") {
		t.Errorf("create an existing topic: %d %s", status, body)
	}
	if status, body = post(t, srv.URL+"/api/topics", "application/json", `{"name":"bad/name"}`); status != http.StatusBadRequest {
		t.Errorf("create a topic with a bad name: %d %s", status, body)
	}
	if status, body = post(t, srv.URL+"/api/topics/made/delete", "application/json", `{"confirm":"other"}`); status != http.StatusBadRequest {
		t.Fatalf("unconfirmed delete: %d %s", status, body)
	}
	if status, body = post(t, srv.URL+"/api/topics/made/delete", "application/json", `{"confirm":"made"}`); status != http.StatusOK {
		t.Fatalf("delete topic: %d %s", status, body)
	}
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		status, _, _ := get(t, c.web+"/api/topics/made")
		return status == http.StatusNotFound, fmt.Sprintf("topic made still there (%d)", status)
	})
	if status, body = post(t, srv.URL+"/api/topics/never/delete", "application/json", `{"confirm":"never"}`); status != http.StatusNotFound {
		t.Errorf("delete an unknown topic: %d %s", status, body)
	}

	// A group with a member is not reset.
	ctx := testContext(t)
	member, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ConsumerGroup("active"), kgo.ConsumeTopics("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	testutil.Eventually(t, time.Minute, func() (bool, string) {
		member.PollRecords(ctx, 1) // joins the group
		var g console.Group
		getJSON(t, c.web+"/api/groups/active", &g)
		ok := g.State == "Stable" && g.ProtocolType == "consumer" && g.Protocol != "" && len(g.MemberList) == 1 &&
			len(g.MemberList[0].Assigned) == 1 && fmt.Sprint(g.MemberList[0].Assigned[0].Partitions) == "[0 1 2]"
		return ok, fmt.Sprintf("group active stable with one member assigned orders 0-2: %+v", g)
	})
	status, body = post(t, srv.URL+"/api/groups/active/reset", "application/json", `{"to":"earliest","confirm":"active"}`)
	if status != http.StatusConflict || !strings.Contains(body, "not Empty") {
		t.Fatalf("reset of an active group: %d %s", status, body)
	}
}

// TestLiveSeries: the console's sampler keeps, per scope, the record and
// byte rates, the lag of each group over time, and the sizes of topics and
// brokers from DescribeLogDirs. Without the broker's byte counters
// (Config.Traffic) the bytes-in rate is the logs' growth and there is no
// bytes-out series; with them both come from the counters.
func TestLiveSeries(t *testing.T) {
	c := startCluster(t)
	ctx := testContext(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	var mu sync.Mutex
	var in, out int64
	traffic := func() map[string]console.Traffic {
		mu.Lock()
		defer mu.Unlock()
		in, out = in+1000, out+500
		return map[string]console.Traffic{"orders": {In: in, Out: out}}
	}
	for _, counters := range []bool{false, true} {
		// The console's goroutines (its sampler, its clients) end with
		// Close.
		before := goleak.IgnoreCurrent()
		cfg := console.Config{Brokers: []string{c.addr}, SampleInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
		if counters {
			cfg.Traffic = traffic
		}
		con, err := console.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(con.Handler())
		last := func(s console.Series, name string) (float64, bool) {
			ps := s[name]
			if len(ps) == 0 {
				return 0, false
			}
			return ps[len(ps)-1].V, true
		}
		positive := func(s console.Series, name string) bool {
			for _, p := range s[name] {
				if p.V > 0 {
					return true
				}
			}
			return false
		}
		testutil.Eventually(t, time.Minute, func() (bool, string) {
			// Keep records coming, so that the rates are above zero.
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 2, Value: []byte("tick")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			var ov, topic, group console.Series
			getJSON(t, srv.URL+"/api/series/overview", &ov)
			getJSON(t, srv.URL+"/api/series/topics/orders", &topic)
			getJSON(t, srv.URL+"/api/series/groups/lagging", &group)
			lag, haveLag := last(group, "lag")
			_, haveOut := ov["bytesOutPerSec"]
			ok := positive(ov, "recordsPerSec") && positive(topic, "recordsPerSec") && positive(ov, "bytesInPerSec") &&
				positive(topic, "bytesInPerSec") && haveLag && lag >= 4 && haveOut == counters && (!counters || positive(topic, "bytesOutPerSec"))
			return ok, fmt.Sprintf("counters %v: overview %v, orders %v, lagging %v", counters, ov, topic, group)
		})
		var ts []console.TopicSummary
		getJSON(t, srv.URL+"/api/topics", &ts)
		for _, s := range ts {
			if s.Name == "orders" && (s.Size <= 0 || s.RecordsPerSec < 0) {
				t.Errorf("orders: size %d, records/s %v; want both known", s.Size, s.RecordsPerSec)
			}
		}
		var ov console.Overview
		getJSON(t, srv.URL+"/api/overview", &ov)
		if ov.Brokers[0].DiskBytes <= 0 {
			t.Errorf("broker disk bytes %d, want known", ov.Brokers[0].DiskBytes)
		}
		srv.Close()
		con.Close()
		http.DefaultClient.CloseIdleConnections()
		// The broker's side of the test's producer connection stays.
		goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("github.com/runnel-dev/runnel/broker.(*conn).serve"),
			goleak.IgnoreAnyFunction("github.com/runnel-dev/runnel/broker.(*conn).writeLoop"))
	}
}
