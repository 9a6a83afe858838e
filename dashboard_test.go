package runnel_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// dashboardFile is the Grafana dashboard the README's Monitoring section
// points to.
const dashboardFile = "monitoring/grafana-dashboard.json"

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// metricName matches the Runnel series a PromQL expression reads.
var metricName = regexp.MustCompile(`\brunnel_[a-z0-9_]+`)

// TestGrafanaDashboard checks the shipped dashboard against the metrics a
// real broker and a real App export: every series a panel queries exists
// (so no panel is silently empty after a rename), every Runnel metric is on
// some panel, every $variable is defined, and the panels tile the grid
// without overlapping; and the README's Monitoring section names only
// metrics that exist and says how to scrape both.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Fatalf("dashboard uid %q title %q: both must be set", d.UID, d.Title)
	}
	checkDashboardLayout(t, d)

	exported := exportedMetrics(t)
	used := map[string]bool{}
	vars := map[string]bool{"__rate_interval": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	varRef := regexp.MustCompile(`\$\{?([A-Za-z_]+)`)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range varRef.FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q: $%s is not a dashboard variable", p.Title, m[1])
				}
			}
			for _, name := range metricName.FindAllString(tg.Expr, -1) {
				base, ok := seriesOf(name, exported)
				if !ok {
					t.Errorf("panel %q queries %s, which neither the broker nor the App exports", p.Title, name)
				}
				used[base] = true
			}
		}
	}
	for name := range exported {
		if !used[name] {
			t.Errorf("metric %s is on no panel of %s", name, dashboardFile)
		}
	}
	checkReadmeMonitoring(t, exported)
}

// checkReadmeMonitoring checks the README's Monitoring section: it says how
// to scrape the brokers and the applications, points to the dashboard, and
// every metric it names is exported.
func checkReadmeMonitoring(t *testing.T, exported map[string]string) {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Monitoring\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, want := range []string{"--metrics-listen", "runnel.MetricsAddr", "runnel.MetricsRegisterer", "scrape_configs:",
		"job_name: runnel-brokers", "job_name: runnel-apps", dashboardFile} {
		if !strings.Contains(section, want) {
			t.Errorf("README.md's Monitoring section does not mention %s", want)
		}
	}
	for _, name := range metricName.FindAllString(section, -1) {
		if strings.HasSuffix(name, "_") { // a family, as runnel_stream_*
			continue
		}
		if _, ok := seriesOf(name, exported); !ok {
			t.Errorf("README.md's Monitoring section names %s, which neither the broker nor the App exports", name)
		}
	}
}

// seriesOf maps a series name in an expression to the metric exporting it:
// itself, or the histogram whose _bucket, _sum or _count it is.
func seriesOf(name string, exported map[string]string) (string, bool) {
	if _, ok := exported[name]; ok {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, found := strings.CutSuffix(name, suffix)
		if found && exported[base] == "histogram" {
			return base, true
		}
	}
	return name, false
}

func checkDashboardLayout(t *testing.T, d dashboard) {
	t.Helper()
	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: grid position %+v outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap at (%d,%d)", other, p.Title, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
		}
	}
}

// exportedMetrics returns the Runnel metrics, name to type, that a broker
// serving a running word count exports at /metrics and that the App
// registers (families without series yet included: an App's error
// counters have none until an error).
func exportedMetrics(t *testing.T) map[string]string {
	t.Helper()
	b := testutil.StartBroker(t, broker.Config{
		GroupInitialRebalanceDelay: 10 * time.Millisecond,
		OffsetsTopicPartitions:     3, TransactionStateTopicPartitions: 3,
		MetricsListen: "127.0.0.1:0",
		// The authorizer on, open to all but one topic: its denial
		// counter gets a series.
		Security: broker.SecurityConfig{Authorizer: broker.AuthorizerConfig{Enabled: true, AllowEveryoneIfNoACLFound: true}},
	})
	addr := b.Addr()
	createTopics(t, addr, 3, "lines", "word-counts", "forbidden")
	cl := newTestClient(t, addr)
	reg := &describingRegisterer{Registerer: prometheus.NewRegistry(), types: map[string]string{}}
	startWordCountWith(t, addr, t.TempDir(), runnel.MetricsRegisterer(reg))
	lines := wordCountLines(3, 100)
	produceLines(t, cl, 0, lines)
	waitCounts(t, addr, countWords(lines))

	// A produce to a partition that does not exist: the broker's produce
	// error counter gets its first series.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "lines"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 99
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if _, err := req.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}

	deny := kadm.NewACLs().Deny("User:*").DenyHosts("*").Topics("forbidden").Operations(kadm.OpWrite).
		ResourcePatternType(kadm.ACLPatternLiteral)
	if _, err := kadm.NewClient(cl).CreateACLs(ctx, deny); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "forbidden", Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("a produce the ACL denies succeeded")
	}

	out := reg.types
	var scraped map[string]string
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		scraped = scrapeTypes(t, "http://"+b.MetricsAddr()+"/metrics")
		// The group collector reports the app's group once it committed.
		_, ok := scraped["runnel_broker_group_lag"]
		_, errs := scraped["runnel_broker_produce_errors_total"]
		_, denials := scraped["runnel_broker_authorization_denials_total"]
		return ok && errs && denials, fmt.Sprintf("group lag and produce errors exported; have %v", slices.Sorted(maps.Keys(scraped)))
	})
	for name, typ := range scraped {
		out[name] = typ
	}
	return out
}

// scrapeTypes reads the Prometheus text exposition at url and returns the
// runnel_* families' types.
func scrapeTypes(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	types := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "runnel_") {
			types[f[2]] = f[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return types
}

// describingRegisterer records the metrics registered through it, with
// their types, from the collectors' descriptions and a first gather.
type describingRegisterer struct {
	prometheus.Registerer
	types map[string]string
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *describingRegisterer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			r.types[m[1]] = collectorType(c)
		}
	}
	return r.Registerer.Register(c)
}

func (r *describingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// collectorType is the Prometheus type of an instrument.
func collectorType(c prometheus.Collector) string {
	switch c.(type) {
	case prometheus.Histogram, *prometheus.HistogramVec:
		return "histogram"
	case prometheus.Gauge, *prometheus.GaugeVec: // before Counter: a Gauge is one too
		return "gauge"
	case prometheus.Counter, *prometheus.CounterVec:
		return "counter"
	}
	return "untyped"
}
