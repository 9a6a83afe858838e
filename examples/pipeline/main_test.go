package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestPipeline: the program prints its topology and one final count per
// category and window.
func TestPipeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"Sub-topology: 0", "books: 1 orders", "toys: 1 orders"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, " orders\n"); n != 5 {
		t.Errorf("%d window results, want 5:\n%s", n, got)
	}
}

// TestREADMEShowsThisProgram: the README's "Writing a pipeline" code is
// this program's run function, as written here, so it runs as shown.
func TestREADMEShowsThisProgram(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	body := s[strings.Index(s, "// README begin\n")+len("// README begin\n") : strings.Index(s, "// README end")]
	body = strings.TrimSpace(body)
	if !strings.Contains(string(readme), body) {
		t.Errorf("README.md does not show examples/pipeline's run function as written; paste this into it:\n%s", body)
	}
}
