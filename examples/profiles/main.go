// Command profiles bootstraps a table from a compacted topic and serves it
// through interactive queries.
//
//	go run ./examples/profiles                          # on an embedded broker
//	go run ./examples/profiles -brokers host:9092       # on any Kafka-protocol cluster
//	go run ./examples/profiles -http 127.0.0.1:8080     # and serve GET /profiles/{id}
//
// It writes a few versions of each user's profile to the compacted topic
// "profiles" (cleanup.policy=compact: the log keeps at least the latest
// record per key), then starts a fresh instance, which reads the topic from
// offset 0 into its store. Once the store holds the latest profile of every
// user, it looks each one up through interactive queries and prints it
// with the instance and partition holding it. With -http it then answers GET /profiles/{id}
// until Ctrl-C or -timeout: from its own store, or with a redirect to the
// instance (application server) that holds the key.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	topicProfiles = "profiles"
	storeName     = "profiles"
)

func main() {
	brokers := flag.String("brokers", "", "bootstrap servers (comma-separated); default: an embedded broker")
	httpAddr := flag.String("http", "", "serve GET /profiles/{id} at this `host:port` (also the application server)")
	timeout := flag.Duration("timeout", 60*time.Second, "give up (or, with -http, stop serving) after this long")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, *brokers, *httpAddr); err != nil {
		fmt.Fprintln(os.Stderr, "profiles:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, brokers, httpAddr string) error {
	dir, err := os.MkdirTemp("", "runnel-profiles-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var addrs []string
	if brokers != "" {
		addrs = strings.Split(brokers, ",")
	} else {
		// The broker is started here, not by the App, because the profiles
		// are written before the application first starts.
		b, err := broker.Start(ctx, broker.Config{DataDir: filepath.Join(dir, "broker"), Listen: "127.0.0.1:0",
			GroupInitialRebalanceDelay: -1, OffsetsTopicPartitions: 1, TransactionStateTopicPartitions: 1})
		if err != nil {
			return err
		}
		defer b.Close()
		if err := b.WaitGroupsLoaded(ctx); err != nil {
			return err
		}
		addrs = []string{b.Addr()}
	}
	if err := WriteProfiles(ctx, addrs, Updates); err != nil {
		return err
	}
	fmt.Printf("wrote %d profile updates for %d users to the compacted topic %q\n", len(Updates), len(Latest(Updates)), topicProfiles)
	app, err := Start(ctx, addrs, filepath.Join(dir, "state"), httpAddr)
	if err != nil {
		return err
	}
	defer app.Close()
	if err := WaitBootstrapped(ctx, app, Latest(Updates)); err != nil {
		return err
	}
	fmt.Println("store bootstrapped: the latest profile of every user")
	for _, id := range slices.Sorted(maps.Keys(Latest(Updates))) {
		p, loc, err := Lookup(ctx, app, id)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %-16s %-10s (version %d)  held by %s, partition %d\n", id, p.Name, p.City, p.Version, holder(loc), loc.Partition)
	}
	if httpAddr == "" {
		return app.Close()
	}
	srv := &http.Server{Addr: httpAddr, Handler: Handler(app)}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Printf("serving http://%s/profiles/{id} until Ctrl-C\n", httpAddr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return app.Close()
}

func holder(loc runnel.KeyLocation) string {
	switch {
	case loc.Local && loc.Endpoint == "":
		return "this instance"
	case loc.Local:
		return loc.Endpoint + " (this instance)"
	}
	return loc.Endpoint
}

// Profile is a value of the profiles topic, keyed by user id.
type Profile struct {
	Name    string `json:"name"`
	City    string `json:"city"`
	Version int    `json:"version"`
}

// Update is one record of the profiles topic.
type Update struct {
	ID string
	Profile
}

// Updates are the records the example writes: several versions per user,
// interleaved, as users edit their profiles.
var Updates = func() []Update {
	names := []string{"Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth", "Frances Allen", "John Backus"}
	cities := []string{"London", "Paris", "Zurich", "Boston", "Lisbon", "Oslo", "Kyoto"}
	var out []Update
	for v := 1; v <= 3; v++ {
		for i, n := range names {
			if v == 3 && i%2 == 1 {
				continue // not everyone edits as often
			}
			out = append(out, Update{ID: fmt.Sprintf("u%d", i+1), Profile: Profile{Name: n, City: cities[(i+v)%len(cities)], Version: v}})
		}
	}
	return out
}()

// Latest is the newest profile of each user in updates: what a compacted
// topic keeps, and what the table holds once bootstrapped.
func Latest(updates []Update) map[string]Profile {
	out := map[string]Profile{}
	for _, u := range updates {
		out[u.ID] = u.Profile
	}
	return out
}

// WriteProfiles creates the compacted profiles topic and writes updates.
func WriteProfiles(ctx context.Context, brokers []string, updates []Update) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	compact := "compact"
	_, err = kadm.NewClient(cl).CreateTopic(ctx, 2, -1, map[string]*string{"cleanup.policy": &compact}, topicProfiles)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create %s: %w", topicProfiles, err)
	}
	var recs []*kgo.Record
	for _, u := range updates {
		v, err := json.Marshal(u.Profile)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: topicProfiles, Key: []byte(u.ID), Value: v})
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// Start starts an instance of the application, its state in dir, serving
// interactive queries at endpoint (may be empty). The profiles table is
// materialized in the store "profiles"; its changelog is the store's own
// compacted topic.
func Start(ctx context.Context, brokers []string, dir, endpoint string) (*runnel.App, error) {
	b := stream.NewBuilder()
	stream.TableOf(b, topicProfiles, serde.String, serde.JSON[Profile](), stream.Materialized(storeName))
	topo, err := b.Build()
	if err != nil {
		return nil, err
	}
	app, err := runnel.NewApp(topo, runnel.ApplicationID("profiles"), runnel.Brokers(brokers...),
		runnel.StateDir(dir), runnel.ApplicationServer(endpoint))
	if err != nil {
		return nil, err
	}
	return app, app.Start(ctx)
}

// WaitBootstrapped waits until the instance's store holds exactly want: a
// fresh instance reads the topic from offset 0.
func WaitBootstrapped(ctx context.Context, app *runnel.App, want map[string]Profile) error {
	view, err := runnel.QueryKeyValueStore(app, storeName, serde.String, serde.JSON[Profile]())
	if err != nil {
		return err
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := map[string]Profile{}
		var qerr error
		for kv, err := range view.All() {
			if err != nil {
				qerr = err
				break
			}
			got[kv.Key] = kv.Value
		}
		if qerr != nil && !errors.Is(qerr, runnel.ErrStoreUnavailable) {
			return qerr
		}
		if qerr == nil && maps.Equal(got, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store not bootstrapped (%d of %d profiles): %w", len(got), len(want), ctx.Err())
		case <-app.Done():
			return fmt.Errorf("application stopped: %w", app.Err())
		case <-tick.C:
		}
	}
}

// Lookup finds user id's profile: where it lives, and its value when this
// instance holds it.
func Lookup(ctx context.Context, app *runnel.App, id string) (Profile, runnel.KeyLocation, error) {
	loc, err := app.KeyInstance(ctx, storeName, []byte(id))
	if err != nil || !loc.Local {
		return Profile{}, loc, err
	}
	view, err := runnel.QueryKeyValueStore(app, storeName, serde.String, serde.JSON[Profile]())
	if err != nil {
		return Profile{}, loc, err
	}
	p, ok, err := view.Get(id)
	if err == nil && !ok {
		err = fmt.Errorf("%w: %s", ErrNoProfile, id)
	}
	return p, loc, err
}

// ErrNoProfile is returned by Lookup for a user with no profile.
var ErrNoProfile = errors.New("no profile")

// Handler serves GET /profiles/{id}: the profile as JSON when this
// instance holds it, a redirect to the instance that does otherwise, 404
// for a user with no profile, and 503 while the store is unavailable
// (rebalancing, restoring): retry.
func Handler(app *runnel.App) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /profiles/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		p, loc, err := Lookup(r.Context(), app, id)
		switch {
		case errors.Is(err, runnel.ErrStoreUnavailable):
			w.Header().Set("Retry-After", "1")
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case errors.Is(err, ErrNoProfile):
			http.Error(w, err.Error(), http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		case !loc.Local && loc.Endpoint == "":
			http.Error(w, "held by an instance with no application server", http.StatusBadGateway)
		case !loc.Local:
			w.Header().Set("Location", "http://"+loc.Endpoint+"/profiles/"+url.PathEscape(id))
			w.WriteHeader(http.StatusTemporaryRedirect)
			io.WriteString(w, "held by "+loc.Endpoint+"\n")
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(p)
		}
	})
	return mux
}
