package runnel_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"
	"go.uber.org/goleak"
)

// TestCloseDuringStart: Close called while Start waits on a broker that
// never answers makes Start give up at once, and leaves no goroutine behind
// (Close used to return early, and the Start still under way then went on
// to start workers nobody would stop).
func TestCloseDuringStart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// A "broker" that accepts connections and never answers a request.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()

	app, err := runnel.NewApp(buildTopology(t, wordCount), runnel.ApplicationID("close-during-start"),
		runnel.Brokers(ln.Addr().String()), runnel.StateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- app.Start(context.Background()) }()
	select {
	case c := <-accepted: // Start is talking to the broker
		accepted <- c
	case <-time.After(30 * time.Second):
		t.Fatal("Start never connected")
	}
	closed := make(chan error, 1)
	go func() { closed <- app.Close() }()
	errs := map[string]error{}
	for name, ch := range map[string]chan error{"Start": started, "Close": closed} {
		select {
		case errs[name] = <-ch:
			t.Logf("%s: %v", name, errs[name])
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not return after Close", name)
		}
	}
	if errs["Start"] == nil {
		t.Fatal("Start succeeded against a broker that never answers")
	}
}
