// Package console is a web console for any Kafka-protocol cluster: an
// overview of the brokers and the health of their partitions, topics with
// their partitions, configs and a message browser, consumer groups with
// their members, assignments and lag, and stream applications with their
// topology drawn as a graph and their instances' tasks, live.
//
// Every page is server-rendered HTML (html/template, which escapes all it
// prints: record keys, values, headers and topic names are untrusted
// input) with a small script that refreshes it and draws live charts;
// every page has a JSON twin under /api that the script and tests read.
// The assets are embedded, so the console needs nothing from the network
// but the cluster.
//
// The data comes over the Kafka protocol through franz-go's kadm, so the
// console works against Apache Kafka as well as Runnel. The broker serves
// it on --http-listen; "runnel console" serves it for any cluster.
//
// The console is read-only unless Config.AllowWrites is set. The writes
// (create and delete a topic, produce a test record, reset an empty
// group's offsets, alter a topic's configs) are POSTs of a JSON body, which a page of another origin cannot
// send without a CORS preflight the console never grants.
//
// Concurrency: a Console holds one Kafka client, safe for concurrent use;
// handlers share it. The message browser opens a consuming client per
// request and closes it before returning. One sampling goroutine, started
// by the first request and stopped by Close, keeps what pages show over
// time (sampler.go): rates, lag, sizes and the stream applications'
// status records.
package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// Config configures a Console.
type Config struct {
	// Brokers are the seed brokers of the cluster. Required.
	Brokers []string
	// ClientOpts are more options for the console's Kafka clients (TLS,
	// SASL, client id); the seed brokers are set from Brokers.
	ClientOpts []kgo.Opt
	// RegistryURL, when set, is a schema registry (Confluent's REST API)
	// whose subjects, versions and compatibility levels the console
	// shows. Default: none, and no schema pages.
	RegistryURL string
	// AllowWrites enables the actions that change the cluster: create
	// and delete topics, produce a test record, reset an empty group's
	// offsets, alter topic configs.
	// Default false: the console is read-only.
	AllowWrites bool
	// RequestTimeout bounds the cluster requests behind one page.
	// Default 10s.
	RequestTimeout time.Duration
	// Logger receives errors serving pages. Default: slog.Default().
	Logger *slog.Logger
	// SampleInterval is how often the console samples the cluster for
	// its charts (rates, lag over time), the topic and broker sizes, and
	// the stream applications' status. Default 5s.
	SampleInterval time.Duration
	// Traffic, when set, returns the bytes each topic took in and gave
	// out since a fixed moment (the broker hosting the console sets it
	// from its counters). Without it the bytes-in rate is the growth of
	// the logs' sizes, and there is no bytes-out rate: the Kafka protocol
	// has no request for either.
	Traffic func() map[string]Traffic
}

// Console serves the console's pages and API.
type Console struct {
	cfg Config
	cl  *kgo.Client
	adm *kadm.Client
	sr  *sr.Client // nil without Config.RegistryURL
	mux *http.ServeMux
	smp *sampler
	// codecs caches the registry's schemas by id, for the message
	// browser (avro.go).
	codecs schemaCache
}

// ErrReadOnly is returned (as HTTP 403) for a write to a read-only console.
var ErrReadOnly = errors.New("console: read-only: start the console with writes allowed (--console-allow-writes)")

// New returns a console for the cluster at cfg.Brokers. It does not
// contact the cluster until a page is requested.
func New(cfg Config) (*Console, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("console: no seed brokers")
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = 5 * time.Second
	}
	cl, err := kgo.NewClient(append(cfg.ClientOpts, kgo.SeedBrokers(cfg.Brokers...))...)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c := &Console{cfg: cfg, cl: cl, adm: kadm.NewClient(cl), mux: http.NewServeMux()}
	c.smp = newSampler(c)
	if cfg.RegistryURL != "" {
		if c.sr, err = sr.NewClient(sr.URLs(cfg.RegistryURL)); err != nil {
			cl.Close()
			return nil, fmt.Errorf("console: schema registry: %w", err)
		}
	}
	c.routes()
	return c, nil
}

// Close stops the console's sampling and closes its Kafka clients. Close
// the HTTP server that serves the console first.
func (c *Console) Close() {
	c.smp.close()
	c.cl.Close()
}

// Handler returns the console's HTTP handler.
func (c *Console) Handler() http.Handler { return c.mux }

func (c *Console) routes() {
	c.mux.Handle("GET /static/", http.FileServerFS(staticFS))
	c.page("GET /{$}", "overview.html", c.overview)
	c.page("GET /topics", "topics.html", c.topics)
	c.page("GET /topics/{topic}", "topic.html", c.topic)
	c.page("GET /groups", "groups.html", c.groups)
	c.page("GET /groups/{group}", "group.html", c.group)
	c.page("GET /apps", "apps.html", c.apps)
	c.page("GET /apps/{app}", "app.html", c.app)
	c.page("GET /schemas", "schemas.html", c.schemas)
	c.page("GET /schemas/{subject}", "subject.html", c.subject)
	c.api("GET /api/overview", c.overview)
	c.api("GET /api/topics", c.topics)
	c.api("GET /api/topics/{topic}", c.topic)
	c.api("GET /api/topics/{topic}/messages", c.browse)
	c.api("GET /api/groups", c.groups)
	c.api("GET /api/groups/{group}", c.group)
	c.api("GET /api/apps", c.apps)
	c.api("GET /api/apps/{app}", c.app)
	c.api("GET /api/schemas", c.schemas)
	c.api("GET /api/schemas/{subject}", c.subject)
	c.api("GET /api/series/overview", c.overviewSeries)
	c.api("GET /api/series/topics/{topic}", c.topicSeries)
	c.api("GET /api/series/groups/{group}", c.groupSeries)
	c.write("POST /api/topics", c.createTopic)
	c.write("POST /api/topics/{topic}/delete", c.deleteTopic)
	c.write("POST /api/topics/{topic}/produce", c.produce)
	c.write("POST /api/topics/{topic}/configs", c.alterConfigs)
	c.write("POST /api/groups/{group}/reset", c.resetGroup)
}

// loader gathers the data of one page or API call.
type loader func(ctx context.Context, r *http.Request) (any, error)

// httpError is an error with the HTTP status to answer it with.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Errorf(format, args...)}
}

func statusOf(err error) int {
	if he, ok := errors.AsType[*httpError](err); ok {
		return he.status
	}
	if errors.Is(err, ErrReadOnly) {
		return http.StatusForbidden
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway // the cluster failed us
}

func (c *Console) api(pattern string, load loader) {
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c.smp.ensure()
		ctx, cancel := context.WithTimeout(r.Context(), c.cfg.RequestTimeout)
		defer cancel()
		v, err := load(ctx, r)
		if err != nil {
			c.jsonError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// write registers a loader that changes the cluster: refused unless
// writes are allowed, and only for a JSON body (see the package doc).
func (c *Console) write(pattern string, load loader) {
	c.api(pattern, func(ctx context.Context, r *http.Request) (any, error) {
		if !c.cfg.AllowWrites {
			return nil, ErrReadOnly
		}
		if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
			return nil, &httpError{http.StatusUnsupportedMediaType, fmt.Errorf("console: a write takes a JSON body (Content-Type: application/json), not %q", ct)}
		}
		r.Body = http.MaxBytesReader(nil, r.Body, 4<<20)
		return load(ctx, r)
	})
}

func (c *Console) jsonError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status >= 500 {
		c.cfg.Logger.Warn("console", "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// isJSON reports whether a Content-Type is JSON, parameters aside.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// decodeBody reads a JSON request body into v, refusing unknown fields.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("console: bad request body: %v", err)
	}
	return nil
}
