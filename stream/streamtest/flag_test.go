package streamtest

import (
	"flag"
	"testing"
)

// The package registers its flag under a qualified name, so importing it
// with another library that registers -rewrite (cockroachdb/datadriven)
// does not panic with "flag redefined".
func TestRewriteFlagQualified(t *testing.T) {
	if flag.Lookup("streamtest.rewrite") == nil {
		t.Fatal("no -streamtest.rewrite flag")
	}
	if flag.Lookup("rewrite") != nil {
		t.Fatal("-rewrite registered: collides with other libraries' flags")
	}
}
