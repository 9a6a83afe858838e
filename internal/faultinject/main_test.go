package faultinject_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel-dev/runnel/internal/faultinject"
)

// binDir holds the runnel binary, built once per test run by the first
// test that needs it.
var (
	binDir   string
	buildBin = sync.OnceValues(func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return faultinject.BuildRunnel(ctx, "", binDir)
	})
)

// runnelBin returns the path of the runnel binary under test.
func runnelBin(t *testing.T) string {
	t.Helper()
	bin, err := buildBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "runnel-faultinject-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	if code == 0 {
		// Every proxy, process watcher and client the tests started must
		// be gone once they are closed.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
