package main

import (
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestSchemasCommand drives `runnel schemas` against a broker's registry.
func TestSchemasCommand(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{RegistryListen: "127.0.0.1:0"})
	url := "http://" + b.RegistryAddr()
	const (
		v1  = `{"type":"record","name":"U","fields":[{"name":"id","type":"long"}]}`
		v2  = `{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"n","type":"string","default":""}]}`
		bad = `{"type":"record","name":"U","fields":[{"name":"id","type":"string"}]}`
	)
	run := func(stdin string, args ...string) result {
		t.Helper()
		return cli(t, "", stdin, append(append([]string{"schemas"}, args...), "--schema-registry-url", url)...)
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		r := run(stdin, args...)
		if r.code != 0 {
			t.Fatalf("schemas %v: exit %d stderr %q", args, r.code, r.stderr)
		}
		return r.stdout
	}
	if out := must("", "register", "users-value", "--schema", v1); out != "id 1 version 1\n" {
		t.Fatalf("register: %q", out)
	}
	if out := must(v2, "register", "users-value", "--schema-file", "-"); out != "id 2 version 2\n" {
		t.Fatalf("register from stdin: %q", out)
	}
	if out := must("", "list"); out != "users-value\n" {
		t.Fatalf("list: %q", out)
	}
	if out := must("", "get", "users-value", "--version", "1"); !strings.Contains(out, `"id":1`) || !strings.Contains(out, `"version":1`) {
		t.Fatalf("get: %q", out)
	}
	if out := must("", "compat", "users-value", "--schema", v2); out != "compatible\n" {
		t.Fatalf("compat: %q", out)
	}
	if r := run("", "compat", "users-value", "--schema", bad); r.code != exitFailure || !strings.Contains(r.stderr, "incompatible") {
		t.Fatalf("compat of an incompatible schema: exit %d stderr %q", r.code, r.stderr)
	}
	if r := run("", "register", "users-value", "--schema", bad); r.code != exitFailure || !strings.Contains(r.stderr, "409") {
		t.Fatalf("register of an incompatible schema: exit %d stderr %q", r.code, r.stderr)
	}
	if out := must("", "config", "users-value", "--set", "none"); out != "NONE\n" {
		t.Fatalf("config --set: %q", out)
	}
	if out := must("", "config"); out != "BACKWARD\n" {
		t.Fatalf("global config: %q", out)
	}
	if out := must("", "delete", "users-value", "--version", "1"); out != "deleted version 1\n" {
		t.Fatalf("delete version: %q", out)
	}
	if out := must("", "delete", "users-value"); out != "deleted versions [2]\n" {
		t.Fatalf("delete subject: %q", out)
	}
	if out := must("", "list"); out != "" {
		t.Fatalf("list after a soft delete: %q", out)
	}
	if out := must("", "list", "--deleted"); out != "users-value\n" {
		t.Fatalf("list --deleted: %q", out)
	}
	if out := must("", "get", "users-value", "--version", "2", "--deleted"); !strings.Contains(out, `"version":2`) {
		t.Fatalf("get --deleted of a soft-deleted version: %q", out)
	}
	if out := must("", "delete", "users-value", "--permanent"); out != "deleted versions [1 2]\n" {
		t.Fatalf("delete permanently: %q", out)
	}
	if r := run("", "get", "users-value"); r.code != exitFailure || !strings.Contains(r.stderr, "40401") {
		t.Fatalf("get of a deleted subject: exit %d stderr %q", r.code, r.stderr)
	}
	if r := run("", "register", "x"); r.code != exitUsage {
		t.Fatalf("register without a schema: exit %d", r.code)
	}
}
