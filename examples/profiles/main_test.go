package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"

	"github.com/runnel-dev/runnel/broker/brokertest"
)

// TestProfiles: a fresh instance bootstraps the compacted topic into its
// store with the latest profile per user and serves it over HTTP; once a
// second instance shares the work, each answers for its own users and
// redirects to the other for the rest.
func TestProfiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := t.TempDir()
	brokers := brokertest.Start(t)
	if err := WriteProfiles(ctx, brokers, Updates); err != nil {
		t.Fatal(err)
	}
	want := Latest(Updates)

	a, err := Start(ctx, brokers, filepath.Join(dir, "a"), "instance-a:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := WaitBootstrapped(ctx, a, want); err != nil {
		t.Fatal(err)
	}
	get := func(app *runnel.App, id string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		Handler(app).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/profiles/"+id, nil))
		return rec
	}
	for id, p := range want {
		rec := get(a, id)
		var got Profile
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got != p {
			t.Fatalf("GET /profiles/%s: %d %s; want %+v", id, rec.Code, rec.Body, p)
		}
	}
	if rec := get(a, "nobody"); rec.Code != http.StatusNotFound {
		t.Fatalf("GET /profiles/nobody: %d %s", rec.Code, rec.Body)
	}

	bApp, err := Start(ctx, brokers, filepath.Join(dir, "b"), "instance-b:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer bApp.Close()
	apps := map[string]*runnel.App{"instance-a:8080": a, "instance-b:8080": bApp}
	deadline := time.Now().Add(60 * time.Second)
	for {
		held, err := checkSplit(ctx, apps, want)
		if err == nil && len(held) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("users held %v: %v", held, err)
		}
		time.Sleep(50 * time.Millisecond) // polling the group and the stores
	}
	for id := range want {
		loc, err := a.KeyInstance(ctx, storeName, []byte(id))
		if err != nil {
			t.Fatal(err)
		}
		rec := get(a, id)
		if loc.Local {
			if rec.Code != http.StatusOK {
				t.Fatalf("GET /profiles/%s on its holder: %d %s", id, rec.Code, rec.Body)
			}
			continue
		}
		if rec.Code != http.StatusTemporaryRedirect || rec.Header().Get("Location") != "http://instance-b:8080/profiles/"+id ||
			!strings.Contains(rec.Body.String(), "held by instance-b:8080") {
			t.Fatalf("GET /profiles/%s held by b: %d %v %s", id, rec.Code, rec.Header(), rec.Body)
		}
	}
}

// checkSplit looks every user up on the instance KeyInstance names and
// returns how many users each instance holds.
func checkSplit(ctx context.Context, apps map[string]*runnel.App, want map[string]Profile) (map[string]int, error) {
	held := map[string]int{}
	for id, p := range want {
		loc, err := apps["instance-a:8080"].KeyInstance(ctx, storeName, []byte(id))
		if err != nil {
			return held, err
		}
		holder, ok := apps[loc.Endpoint]
		if !ok {
			return held, errors.New("held by unknown " + loc.Endpoint)
		}
		got, _, err := Lookup(ctx, holder, id)
		if err != nil {
			return held, err
		}
		if got != p {
			return held, errors.New("wrong profile for " + id)
		}
		held[loc.Endpoint]++
	}
	return held, nil
}
